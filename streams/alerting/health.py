"""Feed health as data: successes, failures, items and their rhythm, and when a feed needs a human."""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from streams.records import iso_utc

# Item times kept per feed: enough for a stable median, small enough to store on every poll.
KEEP_TIMES = 50
# A median needs this many items; below it a feed has no usual rhythm to fall silent from.
MIN_ITEMS_FOR_RHYTHM = 4


@dataclass(frozen=True)
class FeedHealth:
    """One feed's record, replaced on every poll."""

    feed_url: str
    source: str = ""
    polls: int = 0
    last_success: float | None = None
    last_error: str = ""
    last_error_class: str = ""
    last_error_at: float | None = None
    consecutive_failures: int = 0
    items_seen: int = 0
    #: When the newest items appeared (their published time, or when first seen), oldest first.
    item_times: tuple[float, ...] = field(default_factory=tuple)
    #: The condition a health alert was raised for and not yet cleared: "", "failing" or "silent".
    alerted: str = ""

    def median_interval(self) -> float | None:
        """Median seconds between consecutive items, once the feed has shown a rhythm."""
        if len(self.item_times) < MIN_ITEMS_FOR_RHYTHM:
            return None
        gaps = [b - a for a, b in itertools.pairwise(self.item_times) if b > a]
        return statistics.median(gaps) if gaps else None

    def last_item(self) -> float | None:
        return self.item_times[-1] if self.item_times else None

    def as_json(self) -> dict[str, Any]:
        """The public record (wirewatch.feeds.health, `wirewatch feeds --json`): times as ISO 8601."""
        median = self.median_interval()
        last_item = self.last_item()
        return {
            "feed_url": self.feed_url,
            "source": self.source,
            "polls": self.polls,
            "last_success": iso_utc(self.last_success) if self.last_success else None,
            "last_error": self.last_error or None,
            "last_error_class": self.last_error_class or None,
            "last_error_at": iso_utc(self.last_error_at) if self.last_error_at else None,
            "consecutive_failures": self.consecutive_failures,
            "items_seen": self.items_seen,
            "last_item_at": iso_utc(last_item) if last_item else None,
            "median_interval_seconds": round(median, 1) if median is not None else None,
            "alerted": self.alerted or None,
        }


def succeeded(health: FeedHealth, now: float, source: str, new_item_times: list[float]) -> FeedHealth:
    """The record after a poll that read the feed (a 304 counts, with no new items)."""
    # A publication date in the future is a feed's mistake, not the time the item appeared.
    times = sorted({*health.item_times, *(min(t, now) for t in new_item_times)})[-KEEP_TIMES:]
    return dataclasses.replace(
        health,
        source=source or health.source,
        polls=health.polls + 1,
        last_success=now,
        consecutive_failures=0,
        items_seen=health.items_seen + len(new_item_times),
        item_times=tuple(times),
    )


def failed(health: FeedHealth, now: float, reason_class: str, message: str) -> FeedHealth:
    """The record after a poll that could not read the feed."""
    return dataclasses.replace(
        health,
        polls=health.polls + 1,
        last_error=message,
        last_error_class=reason_class,
        last_error_at=now,
        consecutive_failures=health.consecutive_failures + 1,
    )


def condition(health: FeedHealth, now: float, failures_alert: int, silence_factor: float) -> str:
    """ "failing", "silent" or "" (healthy) by the thresholds; a zero threshold turns its check off."""
    if failures_alert > 0 and health.consecutive_failures >= failures_alert:
        return "failing"
    median = health.median_interval()
    last = health.last_item()
    if (
        silence_factor > 0
        and median is not None
        and last is not None
        and now - last > silence_factor * median
    ):
        return "silent"
    return ""


@dataclass(frozen=True)
class HealthChange:
    """A health alert to raise: the feed entered a bad condition, or left one."""

    kind: Literal["feed_failing", "feed_silent", "feed_recovered"]
    title: str
    message: str


def _span(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


def change(
    health: FeedHealth, now: float, failures_alert: int, silence_factor: float
) -> tuple[FeedHealth, HealthChange | None]:
    """The record with its alert state brought up to date, and the alert to raise if that changed it."""
    state = condition(health, now, failures_alert, silence_factor)
    if state == health.alerted:
        return health, None
    name = health.source or health.feed_url
    updated = dataclasses.replace(health, alerted=state)
    if state == "failing":
        return updated, HealthChange(
            "feed_failing",
            f"Feed failing: {name}",
            f"{health.consecutive_failures} polls in a row failed; the last: "
            f"{health.last_error_class}: {health.last_error}",
        )
    if state == "silent":
        median = health.median_interval() or 0.0
        last = health.last_item() or now
        return updated, HealthChange(
            "feed_silent",
            f"Feed silent: {name}",
            f"nothing new for {_span(now - last)}; it usually publishes every {_span(median)}",
        )
    return updated, HealthChange(
        "feed_recovered", f"Feed back: {name}", f"the feed is healthy again after being {health.alerted}"
    )


def status_of(record: dict[str, Any]) -> str:
    """One word for a feed's state in a public record: ok, erring (failed lately), failing or silent."""
    if record.get("alerted"):
        return str(record["alerted"])
    return "erring" if record.get("consecutive_failures") else "ok"


def _ago(iso: str | None, now: float) -> str:
    if not iso:
        return "never"
    seconds = max(0.0, now - datetime.fromisoformat(iso).timestamp())
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    return _span(seconds) + " ago"


def render_table(records: list[dict[str, Any]], now: float) -> str:
    """`wirewatch feeds`: one line per feed, the worst first, with why it is not ok."""
    order = {"failing": 0, "silent": 1, "erring": 2, "ok": 3}
    rows = sorted(records, key=lambda r: (order.get(status_of(r), 4), str(r["feed_url"])))
    head = ("STATUS", "FEED", "LAST OK", "FAILS", "ITEMS", "USUAL GAP", "LAST ITEM", "LAST ERROR")
    lines = [head]
    for r in rows:
        median = r.get("median_interval_seconds")
        error = f"{r['last_error_class']}: {r['last_error']}" if r.get("consecutive_failures") else ""
        lines.append(
            (
                status_of(r),
                str(r["feed_url"]),
                _ago(r.get("last_success"), now),
                str(r.get("consecutive_failures", 0)),
                str(r.get("items_seen", 0)),
                _span(float(median)) if median else "-",
                _ago(r.get("last_item_at"), now),
                error[:80],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
        for line in lines
    ).rstrip()
