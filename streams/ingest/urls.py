"""Canonical article URLs: the key every article record is stored under."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that only say where a reader came from; they would make one article look like many.
_TRACKING_PREFIXES = ("utm_", "mc_", "fbclid", "gclid", "ocid", "cmpid", "_ga")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, default ports, no fragment, no tracking parameters, sorted query."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets, or the URL no longer parses
    port = parts.port
    netloc = host
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        netloc = f"{host}:{port}"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(_TRACKING_PREFIXES)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def is_web_url(url: str) -> bool:
    """True for well-formed http and https URLs with a host: the only ones wirewatch fetches."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:  # an unclosed IPv6 bracket, a bad port: found by fuzzing feeds
        return False
    return parts.scheme.lower() in {"http", "https"} and bool(parts.hostname) and not _CONTROL.search(url)
