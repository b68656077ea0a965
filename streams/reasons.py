"""The reason classes of dead letters by the stage writing them: one typed set for code, schema and README."""

from __future__ import annotations

from typing import Literal, get_args

ReasonClass = Literal[
    "bad_feed",
    "bad_item",
    "bad_url",
    "blocked_address",
    "extraction_failed",
    "fetch_failed",
    "http_error",
    "ner_failed",
    "not_feed",
    "not_html",
    "rate_limited",
    "refused",
    "robots_disallowed",
    "smtp_error",
    "timeout",
    "too_large",
    "too_many_redirects",
    "undecodable",
    "unknown_destination",
    "unreachable",
]

_FETCH: tuple[ReasonClass, ...] = (
    "blocked_address",
    "bad_url",
    "too_many_redirects",
    "timeout",
    "too_large",
    "http_error",
    "rate_limited",
    "fetch_failed",
)

#: What each stage dead-letters with; "any stage" for what every stage may write. A failure of no known
#: class carries its exception's name.
BY_STAGE: dict[str, tuple[ReasonClass, ...]] = {
    "poller": (*_FETCH, "not_feed", "bad_feed", "bad_item"),
    "fetcher": (*_FETCH, "not_html", "robots_disallowed"),
    "cleaner": ("extraction_failed", "timeout"),
    "extractor": ("ner_failed", "timeout"),
    "deliverer": (
        "refused",
        "rate_limited",
        "http_error",
        "smtp_error",
        "unreachable",
        "unknown_destination",
    ),
    "any stage": ("undecodable",),
}

REASON_CLASSES: frozenset[str] = frozenset(get_args(ReasonClass))
