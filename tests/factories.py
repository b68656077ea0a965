"""Small builders for records used across test modules."""

from __future__ import annotations

from streams.records import WatchMatch


def mention(text: str, watch: str, surface: str, kind: str = "actor", how: str = "exact") -> WatchMatch:
    """The WatchMatch for the first place `surface` stands in `text`."""
    start = text.index(surface)
    return WatchMatch(
        watch=watch, kind=kind, text=surface, start=start, end=start + len(surface), how=how, score=1.0
    )
