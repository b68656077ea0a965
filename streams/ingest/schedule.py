"""When each feed is polled next: its own publishing pace, the publisher's hints, backoff, and jitter."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    """What one successful poll tells of a feed: the median gap between its items (None until two are
    seen) and how often the publisher asks to be read (Cache-Control max-age, RSS ttl, sy:updatePeriod)."""

    median_gap: float | None = None
    hint: float | None = None


@dataclass(frozen=True)
class Intervals:
    """The poll settings: `start` until a feed's pace is known, then half its median gap within `least` and
    `most`; a publisher's hint lengthens that up to `most`; `overrides` (by feed URL) win over all."""

    start: float = 300.0
    least: float = 30.0
    most: float = 3600.0
    backoff_max: float = 6 * 3600.0
    overrides: Mapping[str, float] | None = None
    #: Each next poll comes up to this fraction of its interval later, so feeds polled together drift apart.
    jitter: float = 0.1


class Schedule:
    """When each feed is next due. The first round is spread over `spread` seconds (none for run --once)."""

    def __init__(
        self,
        feeds: Sequence[str],
        intervals: Intervals,
        spread: float = 0.0,
        rng: random.Random | None = None,
        now: float = 0.0,
    ) -> None:
        self.intervals = intervals
        self._rng = rng or random.Random()
        self.due = {feed: now + self._rng.uniform(0.0, spread) for feed in feeds}
        self.failures = dict.fromkeys(feeds, 0)
        self.pace: dict[str, Pace] = {}
        self._started: dict[str, float] = {}
        self._floors: dict[str, float] = {}

    def floor(self, feed: str, seconds: float | None) -> None:
        """Poll the feed no more often than this (a feed its WebSub hub pushes); None lifts it."""
        if seconds is None:
            self._floors.pop(feed, None)
        else:
            self._floors[feed] = seconds

    def interval(self, feed: str) -> float:
        """The time between two successful polls of the feed."""
        i = self.intervals
        override = (i.overrides or {}).get(feed)
        if override is not None:
            return max(1.0, override)
        if feed in self._floors:
            return self._floors[feed]
        pace = self.pace.get(feed, Pace())
        base = pace.median_gap / 2.0 if pace.median_gap else i.start
        base = min(max(base, i.least), i.most)
        if pace.hint:
            base = max(base, min(pace.hint, i.most))
        return base

    def take_due(self, now: float) -> list[str]:
        """The feeds due now; each is next due an interval (and its jitter) after this poll starts."""
        ready = [f for f, at in self.due.items() if at <= now]
        for feed in ready:
            self._started[feed] = now
            self.due[feed] = now + self._later(self.interval(feed))
        return ready

    def succeeded(self, feed: str, pace: Pace | None = None) -> None:
        self.failures[feed] = 0
        if pace is not None:
            self.pace[feed] = pace
            started = self._started.get(feed)
            if started is not None:
                self.due[feed] = started + self._later(self.interval(feed))

    def failed(self, feed: str, now: float, retry_after: float | None = None) -> None:
        """Back off: the interval doubled per failure in a row, up to backoff_max, never before a
        Retry-After the server asked for."""
        self.failures[feed] = failures = self.failures.get(feed, 0) + 1
        cap = max(self.intervals.backoff_max, self.interval(feed))
        delay = min(self.interval(feed) * 2.0 ** min(failures, 30), cap)
        self.due[feed] = now + max(delay, retry_after or 0.0)

    def _later(self, interval: float) -> float:
        return interval * (1.0 + self._rng.uniform(0.0, self.intervals.jitter))
