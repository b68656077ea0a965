"""Guarded HTTP downloads of feeds and pages: public addresses only, bounded in time, bytes and redirects."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from streams.alerting.deliver import retry_after_seconds
from streams.ingest.netguard import (
    AddressPolicy,
    BlockedAddress,
    GuardedResolver,
    Lookup,
    literal_address,
    system_lookup,
)
from streams.reasons import ReasonClass

MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}
# A 429 or 503 without Retry-After still keeps wirewatch off the host for this long.
DEFAULT_HOLD = 30.0


_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_LINK = re.compile(r"<([^>]*)>\s*;([^,]*(?:,(?!\s*<)[^,]*)*)")


def max_age(cache_control: str | None) -> float | None:
    """Cache-Control's max-age in seconds; None without one (or with no-cache / no-store)."""
    if not cache_control or re.search(r"no-(?:cache|store)", cache_control, re.IGNORECASE):
        return None
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None


def link_targets(header: str | None) -> dict[str, str]:
    """A Link header's targets by rel ('<https://hub>; rel="hub", <...>; rel=self')."""
    out: dict[str, str] = {}
    for target, params in _LINK.findall(header or ""):
        rel = re.search(r"rel\s*=\s*\"?([^\";]+)", params, re.IGNORECASE)
        for name in rel.group(1).split() if rel else []:
            out.setdefault(name.lower(), target.strip())
    return out


class FetchError(Exception):
    """A download that failed, with the reason class published on the dead-letter topic."""

    def __init__(
        self,
        reason_class: ReasonClass,
        message: str,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason_class = reason_class
        self.retry_after = retry_after
        self.status = status


@dataclass(frozen=True)
class Limits:
    """How long and how much one download may take."""

    connect_timeout: float
    read_timeout: float
    # The whole download, redirects included, however slowly the bytes trickle in.
    total_timeout: float
    # Both on the wire and after decompression: a small gzip body may expand a thousandfold.
    max_bytes: int


@dataclass(frozen=True)
class Response:
    """A complete, size-checked response."""

    url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes
    etag: str | None
    last_modified: str | None
    #: Cache-Control: max-age, in seconds, when the server gives one.
    max_age: float | None = None
    #: The Link header (WebSub's rel="hub" and rel="self" may come there instead of in the feed).
    link: str | None = None


@dataclass
class HostGate:
    """Per-host politeness: at most `concurrency` requests at once, starts `delay` seconds apart, and
    nothing before a host's Retry-After has passed."""

    concurrency: int = 2
    delay: float = 1.0
    # A wait longer than this fails at once (rate_limited) instead of holding a fetcher slot.
    max_wait: float = 120.0
    clock: Callable[[], float] = time.monotonic
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    _next: dict[str, float] = field(default_factory=dict)

    def hold(self, host: str, seconds: float) -> None:
        """No request to host for the next `seconds` (a 429 or 503 asked for it)."""
        self._next[host] = max(self._next.get(host, 0.0), self.clock() + seconds)

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        semaphore = self._slots.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            now = self.clock()
            start = max(now, self._next.get(host, 0.0))
            if start - now > self.max_wait:
                raise FetchError(
                    "rate_limited",
                    f"{host} asked for no requests for another {start - now:.0f} s",
                    start - now,
                )
            self._next[host] = start + self.delay
            if start > now:
                await asyncio.sleep(start - now)  # the politeness delay itself, not a synchronisation
            yield


def _decoder(encoding: str, url: str) -> zlib._Decompress | None:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # zlib-wrapped; raw deflate is retried below
    raise FetchError("fetch_failed", f"{url} is sent with content encoding {encoding!r}, not gzip or deflate")


async def _read_body(resp: aiohttp.ClientResponse, url: str, cap: int) -> bytes:
    """The body, decompressed here rather than by aiohttp so that both caps hold chunk by chunk."""
    declared = resp.content_length
    if declared is not None and declared > cap:
        raise FetchError("too_large", f"{url} declares {declared} bytes, over the cap of {cap}")
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    decoder = _decoder(encoding, url)
    body = bytearray()
    wire = 0
    async for chunk in resp.content.iter_chunked(65536):
        wire += len(chunk)
        if wire > cap:
            raise FetchError("too_large", f"{url} sent more than the cap of {cap} bytes")
        if decoder is None:
            body.extend(chunk)
            continue
        pending = chunk
        while pending:
            try:
                # max_length bounds what one call may produce: a bomb never materialises past the cap.
                body.extend(decoder.decompress(pending, cap + 1 - len(body)))
            except zlib.error:
                if encoding != "deflate" or body or wire > len(chunk):
                    raise FetchError("fetch_failed", f"{url}: corrupt {encoding} body") from None
                decoder = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send it
                continue
            if len(body) > cap:
                raise FetchError("too_large", f"{url} decompresses to more than the cap of {cap} bytes")
            pending = decoder.unconsumed_tail
    if decoder is not None:
        body.extend(decoder.flush())
        if not decoder.eof:
            raise FetchError("fetch_failed", f"{url}: truncated or corrupt {encoding} body")
        if len(body) > cap:
            raise FetchError("too_large", f"{url} decompresses to more than the cap of {cap} bytes")
    return bytes(body)


class SafeClient:
    """The one way wirewatch downloads what feeds point at.

    Every hop of a redirect chain is checked: scheme, literal address, and (through GuardedResolver) every
    address its name resolves to, which is then the address connected to.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        gate: HostGate,
        user_agent: str,
        lookup: Lookup = system_lookup,
        proxy: str | None = None,
    ) -> None:
        self.policy = policy
        self.gate = gate
        self.user_agent = user_agent
        self.lookup = lookup
        # A feed's own HTTP proxy: the guard then checks the proxy's address, and the target's literal
        # address; the names the proxy resolves are its own business.
        self.proxy = proxy
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
                connector=aiohttp.TCPConnector(
                    resolver=GuardedResolver(self.policy, self.lookup), limit=64, use_dns_cache=False
                ),
                auto_decompress=False,
                # No proxies from the environment and no cookies: a feed must not steer either.
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(self, url: str, limits: Limits, headers: dict[str, str] | None = None) -> Response:
        """GET url within the limits; 304 is returned as is, other non-2xx statuses raise FetchError."""
        budget = limits.total_timeout
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            target = self._target(current)
            host = target.host or ""
            async with self.gate.slot(host):
                started = time.monotonic()
                try:
                    async with asyncio.timeout(budget):
                        resp_or_next = await self._hop(target, limits, headers)
                except TimeoutError:
                    raise FetchError(
                        "timeout", f"{url} was not fully downloaded within {limits.total_timeout:g} s"
                    ) from None
                budget -= time.monotonic() - started
            if isinstance(resp_or_next, Response):
                return resp_or_next
            current = resp_or_next
        raise FetchError("too_many_redirects", f"{url} redirected more than {MAX_REDIRECTS} times")

    async def post_form(self, url: str, form: dict[str, str], limits: Limits) -> int:
        """POST a form (a WebSub subscription request) under the same guard, following no redirect; the
        answer's status. FetchError when it cannot be sent."""
        target = self._target(url)
        timeout = aiohttp.ClientTimeout(
            total=limits.total_timeout, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
        )
        with _as_fetch_errors(url):
            async with self.session().post(target, data=form, timeout=timeout, allow_redirects=False) as resp:
                await resp.content.read(64 * 1024)  # a hub's answer is a few words; the rest is not read
                return resp.status

    def _target(self, url: str) -> URL:
        try:
            target = URL(url)
        except (ValueError, TypeError):
            raise FetchError("bad_url", f"invalid URL {url!r}") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise FetchError("bad_url", f"only http and https URLs are fetched, not {url!r}")
        # The target's literal address, and a proxy's (a proxy's name goes through the guarded resolver).
        for host in (target.host, *([URL(self.proxy).host or ""] if self.proxy else [])):
            literal = literal_address(host)
            if literal is not None:
                try:
                    self.policy.check(host, literal)
                except BlockedAddress as exc:
                    raise FetchError("blocked_address", f"{url}: {exc}") from None
        return target

    async def _hop(self, target: URL, limits: Limits, headers: dict[str, str] | None) -> Response | str:
        """One request: the Response, or the URL a redirect points to."""
        url = str(target)
        timeout = aiohttp.ClientTimeout(sock_connect=limits.connect_timeout, sock_read=limits.read_timeout)
        with _as_fetch_errors(url):
            async with self.session().get(
                target, headers=headers, timeout=timeout, allow_redirects=False, proxy=self.proxy
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in _REDIRECTS and location:
                    return urljoin(url, location)
                if resp.status in (429, 503):
                    wait = retry_after_seconds(resp.headers.get("Retry-After"))
                    self.gate.hold(target.host or "", DEFAULT_HOLD if wait is None else wait)
                    raise FetchError("rate_limited", f"HTTP {resp.status} for {url}", wait, resp.status)
                if resp.status != 304 and not 200 <= resp.status < 300:
                    message = f"HTTP {resp.status} {resp.reason or ''} for {url}".strip()
                    raise FetchError("http_error", message, status=resp.status)
                body = await _read_body(resp, url, limits.max_bytes)
                return Response(
                    url=url,
                    status=resp.status,
                    content_type=(resp.content_type or "").lower(),
                    charset=resp.charset,
                    body=body,
                    etag=resp.headers.get("ETag"),
                    last_modified=resp.headers.get("Last-Modified"),
                    max_age=max_age(resp.headers.get("Cache-Control")),
                    link=resp.headers.get("Link"),
                )
        raise AssertionError("unreachable")  # for mypy: the with block returns or raises


@contextlib.contextmanager
def _as_fetch_errors(url: str) -> Iterator[None]:
    """aiohttp's failures as FetchError with a reason class: a refused address, a timeout, a bad URL."""
    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        cause = exc.os_error
        if isinstance(cause, BlockedAddress) or isinstance(cause.__cause__, BlockedAddress):
            raise FetchError("blocked_address", f"{url}: {cause}") from None
        raise FetchError("fetch_failed", f"{url}: cannot connect: {cause}") from None
    except aiohttp.ServerTimeoutError:
        raise FetchError("timeout", f"{url}: no answer within the connect or read timeout") from None
    except aiohttp.InvalidURL:
        raise FetchError("bad_url", f"invalid URL {url!r}") from None
    except aiohttp.ClientError as exc:
        raise FetchError("fetch_failed", f"{url}: {type(exc).__name__}: {exc}") from None


_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def decode_html(resp: Response) -> str:
    """The body of an HTML page as text; FetchError('not_html') for anything else."""
    if resp.content_type and resp.content_type not in _HTML_TYPES:
        raise FetchError("not_html", f"{resp.url} is {resp.content_type}, not an HTML page")
    head = resp.body[:4096]
    if not resp.content_type and not re.search(rb"<(html|body|head|p|div)\b", head, re.IGNORECASE):
        raise FetchError("not_html", f"{resp.url} has no content type and does not look like HTML")
    charset = resp.charset
    if charset is None:
        found = _META_CHARSET.search(head)
        charset = found.group(1).decode("ascii") if found else "utf-8"
    try:
        return resp.body.decode(charset, errors="replace")
    except LookupError:
        return resp.body.decode("utf-8", errors="replace")


# Never a feed: what a feed link pointing at a video, an archive or an image sends.
_NOT_FEED_PREFIXES = ("image/", "audio/", "video/", "font/", "multipart/")
_NOT_FEED_TYPES = {"application/pdf", "application/zip", "application/gzip", "application/x-tar"}


def check_feed_type(resp: Response) -> None:
    """FetchError('not_feed') for a content type no feed is served as; mislabelled text passes."""
    kind = resp.content_type
    if kind.startswith(_NOT_FEED_PREFIXES) or kind in _NOT_FEED_TYPES:
        raise FetchError("not_feed", f"{resp.url} is {kind}, not a feed")


# What a page needs none of to have its text found: scripts, styles, inline images and comments.
_INERT_OPEN = re.compile(r"<(script|style|svg|noscript|template)\b|<!--", re.IGNORECASE)


def strip_inert(html: str) -> str:
    """The page without its scripts, styles, inline SVG and comments: often a fraction of its size.

    A scan, not one regular expression: a lazy match to a closing tag that never comes would make a page
    of many unclosed <script> tags cost quadratic time. An element left open drops the rest of the page.
    """
    lower = html.lower()
    out: list[str] = []
    pos = 0
    while (found := _INERT_OPEN.search(html, pos)) is not None:
        out.append(html[pos : found.start()])
        tag = found.group(1)
        close = "-->" if tag is None else f"</{tag.lower()}"
        end = lower.find(close, found.end())
        if end == -1:
            return "".join(out)
        pos = end + len(close)
        if tag is not None:
            gt = html.find(">", pos)
            pos = len(html) if gt == -1 else gt + 1
    out.append(html[pos:])
    return "".join(out)
