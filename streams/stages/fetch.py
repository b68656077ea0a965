"""Bounded HTTP downloads of feeds and pages: timeouts, a size cap, http(s) only."""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiohttp

from streams.stages.urls import is_web_url


class FetchError(Exception):
    """A download that failed, with the reason class published on the dead-letter topic."""

    def __init__(self, reason_class: str, message: str) -> None:
        super().__init__(message)
        self.reason_class = reason_class


@dataclass(frozen=True)
class Limits:
    """How long and how much one download may take."""

    connect_timeout: float
    read_timeout: float
    total_timeout: float
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


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    limits: Limits,
    headers: dict[str, str] | None = None,
) -> Response:
    """GET url within the limits; 304 is returned as is, other non-2xx statuses raise FetchError."""
    if not is_web_url(url):
        raise FetchError("bad_url", f"only http and https URLs are fetched, not {url!r}")
    timeout = aiohttp.ClientTimeout(
        total=limits.total_timeout, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
    )
    try:
        async with session.get(url, headers=headers, timeout=timeout, max_redirects=5) as resp:
            if resp.status != 304 and not 200 <= resp.status < 300:
                raise FetchError("http_error", f"HTTP {resp.status} {resp.reason or ''} for {url}".strip())
            declared = resp.content_length
            if declared is not None and declared > limits.max_bytes:
                raise FetchError(
                    "too_large", f"{url} declares {declared} bytes, over the cap of {limits.max_bytes}"
                )
            body = bytearray()
            # aiohttp decodes gzip and deflate as it reads, so the cap applies to decoded bytes.
            async for chunk in resp.content.iter_chunked(65536):
                body.extend(chunk)
                if len(body) > limits.max_bytes:
                    raise FetchError("too_large", f"{url} is over the cap of {limits.max_bytes} bytes")
            return Response(
                url=str(resp.url),
                status=resp.status,
                content_type=(resp.content_type or "").lower(),
                charset=resp.charset,
                body=bytes(body),
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
            )
    except FetchError:
        raise
    except TimeoutError as exc:
        raise FetchError("timeout", f"{url} did not answer within the time limits") from exc
    except aiohttp.TooManyRedirects as exc:
        raise FetchError("too_many_redirects", f"{url} redirected more than 5 times") from exc
    except aiohttp.InvalidURL as exc:
        raise FetchError("bad_url", f"invalid URL {url!r}") from exc
    except aiohttp.ClientError as exc:
        raise FetchError("fetch_failed", f"{url}: {type(exc).__name__}: {exc}") from exc


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
