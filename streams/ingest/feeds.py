"""Feed lists and feed documents: from bytes to the items the poller publishes."""

from __future__ import annotations

import calendar
import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import orjson
import yaml
from lxml import etree

from streams.ingest.netguard import parse_allowed
from streams.ingest.urls import canonical_url, is_web_url


class BadFeed(ValueError):
    """A feed document that is not RSS or Atom, or has no usable items."""

    reason_class = "bad_feed"


class FeedListError(ValueError):
    """A feed list that cannot be read, with the line or element at fault."""


@dataclass(frozen=True)
class ParsedItem:
    """One feed entry reduced to what the pipeline needs."""

    url: str
    title: str
    published: str | None
    summary: str
    guid: str


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed: its title and its items with a usable web link."""

    title: str
    items: list[ParsedItem]
    # Entries dropped because their link was missing or not http(s), for the dead-letter topic.
    rejected: list[str]
    # What the feed declares (RSS <language>, Atom xml:lang): a hint for telling an article's language.
    language: str | None = None
    # How often the publisher says to look, in seconds: RSS <ttl>, or sy:updatePeriod / updateFrequency.
    refresh_hint: float | None = None
    # WebSub: the hub the feed advertises (<link rel="hub">) and its own URL there (rel="self").
    hub: str | None = None
    self_url: str | None = None


@dataclass(frozen=True)
class FeedSpec:
    """One feed of a YAML feed list, with the settings that are its own."""

    url: str
    #: Seconds between polls, whatever the feed's pace (see streams/ingest/schedule.py).
    interval: float | None = None
    #: Extra request headers (an API key a publisher asks for, a cookie consent), and a User-Agent.
    headers: tuple[tuple[str, str], ...] = ()
    user_agent: str | None = None
    #: The source name its items carry, instead of the feed's own title; the language hint of its items.
    source: str | None = None
    language: str | None = None
    #: Tags its items carry, for routes to choose by (`tags:` in a route).
    tags: tuple[str, ...] = ()
    #: An HTTP proxy for this feed and its pages (http://HOST:PORT), and networks this feed only may reach.
    proxy: str | None = None
    allow_networks: tuple[str, ...] = ()


_SPEC_KEYS = {
    "url",
    "interval",
    "headers",
    "user_agent",
    "source",
    "language",
    "tags",
    "proxy",
    "allow_networks",
}
_TAG_WORD = re.compile(r"[^\w-]+")


def tag(name: str) -> str:
    """A category or tag as routes name it: lower case, words joined by hyphens ("Libya / Arabic" is
    "libya-arabic")."""
    return _TAG_WORD.sub("-", name.strip().lower()).strip("-")


def read_feed_specs(path: Path) -> list[FeedSpec]:
    """The feeds of a list: a YAML file (`feeds:` of URLs or of mappings with their own settings), a text
    file (one URL a line, '#' comments) or an OPML file."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise FeedListError(f"{path}: {exc.strerror or exc}") from exc
        if data.lstrip().startswith(b"<"):
            return _opml_specs(path, data)
        return [FeedSpec(url) for url in _text_urls(path, data)]
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FeedListError(f"{path}: {exc}") from exc
    entries = doc.get("feeds") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise FeedListError(f"{path}: expected 'feeds:' with a list of URLs or of mappings with a url")
    specs: dict[str, FeedSpec] = {}
    for k, entry in enumerate(entries, start=1):
        where = f"{path}: feed {k}"
        raw = {"url": entry} if isinstance(entry, str) else entry
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("url"), str)
            or not is_web_url(raw["url"].strip())
        ):
            raise FeedListError(f"{where}: needs an http(s) url")
        unknown = set(raw) - _SPEC_KEYS
        if unknown:
            known = ", ".join(sorted(_SPEC_KEYS))
            raise FeedListError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {known}")
        interval = raw.get("interval")
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
        ):
            raise FeedListError(f"{where}: interval must be a number of seconds above 0")
        headers = raw.get("headers") or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str | int) for v in headers.values()):
            raise FeedListError(f"{where}: headers must be a mapping of names to values")
        url = raw["url"].strip()
        proxy = str(raw["proxy"]).strip() if raw.get("proxy") else None
        if proxy is not None and not proxy.startswith("http://"):
            raise FeedListError(f"{where}: proxy must be an http:// proxy URL")
        networks = tuple(str(n) for n in _listed(raw.get("allow_networks"), where))
        try:
            parse_allowed(networks)
        except ValueError as exc:
            raise FeedListError(f"{where}: allow_networks: {exc}") from exc
        specs[url] = FeedSpec(
            url=url,
            interval=float(interval) if interval is not None else None,
            headers=tuple((str(n), str(v)) for n, v in headers.items()),
            user_agent=str(raw["user_agent"]) if raw.get("user_agent") else None,
            source=str(raw["source"]) if raw.get("source") else None,
            language=str(raw["language"]) if raw.get("language") else None,
            tags=tuple(dict.fromkeys(tag(str(t)) for t in _listed(raw.get("tags"), where) if tag(str(t)))),
            proxy=proxy,
            allow_networks=networks,
        )
    return list(specs.values())


def _listed(raw: Any, where: str) -> list[Any]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list):
        raise FeedListError(f"{where}: tags must be a list of words")
    return raw


def read_feed_list(path: Path) -> list[str]:
    """Feed URLs from a YAML feed list, a text file (one a line, '#' comments) or an OPML file."""
    return [spec.url for spec in read_feed_specs(path)]


def _text_urls(path: Path, data: bytes) -> list[str]:
    urls: list[str] = []
    for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not is_web_url(text):
            raise FeedListError(f"{path} line {lineno}: not an http(s) URL: {text!r}")
        urls.append(text)
    return list(dict.fromkeys(urls))


def _opml_specs(path: Path, data: bytes) -> list[FeedSpec]:
    """The feeds of an OPML file, each tagged with the categories it sits in (outlines without a feed
    URL around it) and those its `category` attribute names ("/Libya/Arabic,Wires")."""
    # No network, no entities: an OPML file is read as plain XML and nothing it references is opened.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{path}: not a valid OPML file: {exc}") from exc
    specs: dict[str, FeedSpec] = {}
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl") or outline.get("xmlurl")
        if url is None:
            continue
        if not is_web_url(url):
            raise FeedListError(f"{path} line {outline.sourceline}: not an http(s) feed URL: {url!r}")
        names = [
            str(parent.get("text") or parent.get("title") or "")
            for parent in outline.iterancestors("outline")
            if not (parent.get("xmlUrl") or parent.get("xmlurl"))
        ][::-1]  # the outermost category first
        names += re.split(r"[,/]", outline.get("category") or "")
        tags = tuple(dict.fromkeys(t for n in names if (t := tag(n))))
        specs.setdefault(url.strip(), FeedSpec(url.strip(), tags=tags))
    if not specs:
        raise FeedListError(f"{path}: OPML file lists no feeds (no outline with xmlUrl)")
    return list(specs.values())


def _iso(parsed: Any) -> str | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError):
        return None


_TAG = re.compile(r"<[^>]*>")
_ENTITY_DECLARATION = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def _text(value: Any) -> str:
    """Feed fields as plain text: tags dropped, entities decoded, white space folded."""
    return " ".join(html.unescape(_TAG.sub(" ", str(value or ""))).split())


def _wide_as_utf8(data: bytes) -> bytes:
    """A UTF-16 or UTF-32 document re-encoded as UTF-8 (feedparser reads those too), else nothing."""
    head = data[:4]
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if head.startswith(bom):
            return data.decode(codec, errors="replace").encode("utf-8")
    if b"\x00" in head:
        for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
            text = data.decode(codec, errors="replace")
            if text.lstrip("\ufeff").startswith("<"):
                return text.encode("utf-8")
    return b""


def parse_feed(data: bytes, feed_url: str) -> ParsedFeed:
    """Parse RSS, Atom or JSON Feed bytes; raise BadFeed when the document is not a feed at all."""
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return parse_json_feed(data, feed_url)
    if _ENTITY_DECLARATION.search(data) or _ENTITY_DECLARATION.search(_wide_as_utf8(data)):
        # Nothing in RSS or Atom needs its own entities; declaring them is how expansion bombs and
        # external-entity reads start, so such a feed is refused before any parser sees it.
        raise BadFeed("the feed declares XML entities (<!ENTITY>), which wirewatch refuses to expand")
    try:
        parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    except Exception as exc:
        # feedparser on hostile bytes raises more than its documented errors (fuzzing found ValueError
        # from a NUL inside the encoding declaration); whatever it raises, the bytes are no usable feed.
        raise BadFeed(f"the feed parser gave up: {type(exc).__name__}: {exc}") from exc
    version = parsed.get("version") or ""
    entries = parsed.get("entries") or []
    if not version and not entries:
        problem = parsed.get("bozo_exception")
        detail = f": {problem}" if problem else ""
        raise BadFeed(f"not an RSS or Atom feed{detail}")
    feed_meta = parsed.get("feed") or {}
    title = _text(feed_meta.get("title")) or (urlsplit(feed_url).hostname or feed_url)
    items: list[ParsedItem] = []
    rejected: list[str] = []
    for entry in entries:
        link = str(entry.get("link") or "").strip()
        if link:
            try:
                link = urljoin(feed_url, link)
            except ValueError:  # "http://[::1" and the like
                link = ""
        if not link or not is_web_url(link):
            rejected.append(_text(entry.get("title")) or link or "(entry without link)")
            continue
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        items.append(
            ParsedItem(
                url=canonical_url(link),
                title=_text(entry.get("title")),
                published=_iso(when),
                summary=_text(entry.get("summary"))[:2000],
                guid=str(entry.get("id") or link),
            )
        )
    language = _text(feed_meta.get("language")) or None
    links = {str(link.get("rel")): str(link.get("href") or "") for link in feed_meta.get("links") or []}
    hub, self_url = links.get("hub") or None, links.get("self") or None
    return ParsedFeed(
        title=title,
        items=items,
        rejected=rejected,
        language=language,
        refresh_hint=_refresh_hint(feed_meta),
        hub=hub if hub and is_web_url(hub) else None,
        self_url=self_url if self_url and is_web_url(self_url) else None,
    )


_PERIODS = {
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 604800.0,
    "monthly": 2592000.0,
    "yearly": 31536000.0,
}


def _refresh_hint(meta: Any) -> float | None:
    """Seconds between looks the feed asks for: RSS <ttl> (minutes), else sy:updatePeriod over
    sy:updateFrequency; None when it says nothing usable."""
    try:
        ttl = float(str(meta.get("ttl") or "").strip() or "nan")
    except ValueError:
        ttl = float("nan")
    if ttl > 0:
        return ttl * 60.0
    period = _PERIODS.get(str(meta.get("sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    try:
        frequency = max(1, int(str(meta.get("sy_updatefrequency") or "1").strip()))
    except ValueError:
        frequency = 1
    return period / frequency


def parse_json_feed(data: bytes, feed_url: str) -> ParsedFeed:
    """A JSON Feed (1.0 or 1.1, jsonfeed.org): items with a url (or external_url), title, summary or
    content, dates; the feed's title, language and WebSub hub."""
    try:
        doc = orjson.loads(data.lstrip(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise BadFeed(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise BadFeed("JSON, but no JSON Feed (its version must be https://jsonfeed.org/version/...)")
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise BadFeed("a JSON Feed without an items list")
    items: list[ParsedItem] = []
    rejected: list[str] = []
    for entry in raw_items:
        if not isinstance(entry, dict):
            continue
        link = str(entry.get("url") or entry.get("external_url") or "").strip()
        try:
            link = urljoin(feed_url, link) if link else ""
        except ValueError:
            link = ""
        title = _text(entry.get("title"))
        if not link or not is_web_url(link):
            rejected.append(title or link or "(entry without link)")
            continue
        summary = entry.get("summary") or entry.get("content_text") or entry.get("content_html") or ""
        items.append(
            ParsedItem(
                url=canonical_url(link),
                title=title,
                published=_iso_text(entry.get("date_published") or entry.get("date_modified")),
                summary=_text(summary)[:2000],
                guid=str(entry.get("id") or link),
            )
        )
    hubs: list[Any] = doc["hubs"] if isinstance(doc.get("hubs"), list) else []
    hub = next(
        (
            str(h.get("url"))
            for h in hubs
            if isinstance(h, dict) and str(h.get("type", "")).lower() == "websub"
        ),
        None,
    )
    self_url = str(doc.get("feed_url") or "") or None
    return ParsedFeed(
        title=_text(doc.get("title")) or (urlsplit(feed_url).hostname or feed_url),
        items=items,
        rejected=rejected,
        language=_text(doc.get("language")) or None,
        hub=hub if hub and is_web_url(hub) else None,
        self_url=self_url if self_url and is_web_url(self_url) else None,
    )


def _iso_text(value: object) -> str | None:
    """An RFC 3339 date of a JSON Feed as wirewatch writes times (UTC, seconds); None if it is none."""
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None
    if when is None:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def opml_export(records: list[dict[str, Any]], now_iso: str) -> str:
    """An OPML 2.0 subscription list of the feeds with their health (wirewatch's own attributes, which
    readers ignore): what `wirewatch feeds --opml` prints, and what a feed list may be read from again."""
    root = etree.Element("opml", version="2.0", nsmap=None)
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = "wirewatch feeds"
    etree.SubElement(head, "dateCreated").text = now_iso
    body = etree.SubElement(root, "body")
    for record in sorted(records, key=lambda r: str(r.get("feed_url"))):
        outline = etree.SubElement(body, "outline", type="rss")
        outline.set("text", str(record.get("source") or record.get("feed_url")))
        outline.set("xmlUrl", str(record.get("feed_url")))
        for key in ("last_success", "consecutive_failures", "items_seen", "last_error_class", "alerted"):
            value = record.get(key)
            if value is not None:
                outline.set("wirewatch_" + key, str(value))
    return str(etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8").decode())
