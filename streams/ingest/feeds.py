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
from lxml import etree

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


def read_feed_list(path: Path) -> list[str]:
    """Feed URLs from a text file (one a line, '#' comments) or an OPML file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FeedListError(f"{path}: {exc.strerror or exc}") from exc
    if data.lstrip().startswith(b"<"):
        return _read_opml(path, data)
    urls: list[str] = []
    for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not is_web_url(text):
            raise FeedListError(f"{path} line {lineno}: not an http(s) URL: {text!r}")
        urls.append(text)
    return list(dict.fromkeys(urls))


def _read_opml(path: Path, data: bytes) -> list[str]:
    # No network, no entities: an OPML file is read as plain XML and nothing it references is opened.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedListError(f"{path}: not a valid OPML file: {exc}") from exc
    urls: list[str] = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl") or outline.get("xmlurl")
        if url is None:
            continue
        if not is_web_url(url):
            raise FeedListError(f"{path} line {outline.sourceline}: not an http(s) feed URL: {url!r}")
        urls.append(url.strip())
    if not urls:
        raise FeedListError(f"{path}: OPML file lists no feeds (no outline with xmlUrl)")
    return list(dict.fromkeys(urls))


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
    """Parse RSS or Atom bytes; raise BadFeed when the document is not a feed at all."""
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
