"""poller: polls each feed on its interval with conditional GET and publishes items never seen before."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from streams import metrics
from streams.alerting.alert import health_alert
from streams.alerting.health import FeedHealth, change, failed, succeeded
from streams.alerting.routes import health_deliveries
from streams.ingest.feeds import BadFeed, parse_feed
from streams.ingest.fetch import FetchError, check_feed_type
from streams.pipeline.cpuproc import WorkFailed
from streams.pipeline.runtime import Runtime
from streams.records import FeedHealthRecord, FeedItem, utcnow

log = logging.getLogger("wirewatch")

STAGE = "poller"


async def poll_feed(rt: Runtime, feed_url: str, schedule: Schedule | None = None) -> int:
    """Poll one feed; publish its unseen items and its health; return how many items were published."""
    now = time.time()
    health = rt.state.feed_health(feed_url)
    try:
        published, source, new_times = await _read_feed(rt, feed_url, now)
    except (FetchError, BadFeed, WorkFailed) as exc:
        reason_class = getattr(exc, "reason_class", "bad_feed")
        await rt.dead_letter(STAGE, feed_url, reason_class, str(exc))
        rt.progress.feed_failures[feed_url] = (reason_class, str(exc))
        metrics.FEED_POLLS.labels("failed").inc()
        health = failed(health, now, reason_class, str(exc))
        if schedule is not None:
            schedule.failed(feed_url, time.monotonic(), getattr(exc, "retry_after", None))
        published = 0
    else:
        rt.progress.feed_failures.pop(feed_url, None)
        health = succeeded(health, now, source, new_times)
        if schedule is not None:
            schedule.succeeded(feed_url)
    await _publish_health(rt, health, now)
    return published


async def _read_feed(rt: Runtime, feed_url: str, now: float) -> tuple[int, str, list[float]]:
    """(items published, feed title, when each new item appeared); raises on any failure."""
    etag, modified = rt.state.validators(feed_url)
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    resp = await rt.web().get(feed_url, rt.limits(rt.settings.max_feed_bytes), headers)
    if resp.status == 304:
        metrics.FEED_POLLS.labels("not_modified").inc()
        return 0, "", []
    check_feed_type(resp)
    # In a CPU process with a deadline: feedparser's regexes can be made to backtrack for minutes.
    feed = await rt.run_cpu(
        rt.settings.feed_parse_timeout,
        f"parsing the feed {feed_url}",
        "bad_feed",
        parse_feed,
        resp.body,
        feed_url,
    )
    for title in feed.rejected:
        await rt.dead_letter(STAGE, feed_url, "bad_item", f"feed entry without an http(s) link: {title!r}")
    fresh = set(rt.state.unseen([item.url for item in feed.items]))
    new_times: list[float] = []
    for item in feed.items:
        if item.url not in fresh:
            continue
        fresh.discard(item.url)  # a feed may list one link twice
        seen_at = utcnow()
        record = FeedItem(
            url=item.url,
            feed_url=feed_url,
            source=feed.title,
            title=item.title,
            published=item.published,
            summary=item.summary,
            guid=item.guid,
            seen_at=seen_at,
            declared_language=feed.language,
        )
        rt.progress.expect(item.url)
        await rt.send(rt.topics.feed_items, item.url, record)
        # Marked seen only once the broker has the item: a crash in between re-sends, never loses.
        rt.state.mark_seen(item.url, feed_url, seen_at)
        new_times.append(_epoch(item.published) or now)
    rt.state.set_validators(feed_url, resp.etag, resp.last_modified)
    metrics.FEED_POLLS.labels("new_items" if new_times else "no_new_items").inc()
    return len(new_times), feed.title, new_times


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


async def _publish_health(rt: Runtime, health: FeedHealth, now: float) -> None:
    s = rt.settings
    health, health_change = change(health, now, s.feed_failures_alert, s.feed_silence_factor)
    rt.state.set_feed_health(health)
    await rt.send(rt.topics.feeds_health, health.feed_url, FeedHealthRecord(**health.as_json()))
    if health_change is not None:
        log.warning("feed health: %s: %s", health_change.title, health_change.message)
        alert = health_alert(health.feed_url, health.source, health_change, now)
        await rt.publish_alert(alert, health_deliveries(rt.routing, alert))


class Schedule:
    """When each feed is next due: its interval after a success, doubling per failure up to a cap, and
    never before a Retry-After the feed's server asked for."""

    def __init__(self, feeds: list[str], interval: float, backoff_max: float = 6 * 3600.0) -> None:
        self.interval = interval
        self.backoff_max = max(backoff_max, interval)
        self.due = dict.fromkeys(feeds, 0.0)
        self.failures = dict.fromkeys(feeds, 0)

    def take_due(self, now: float) -> list[str]:
        ready = [f for f, at in self.due.items() if at <= now]
        for feed in ready:
            self.due[feed] = now + self.interval
        return ready

    def succeeded(self, feed: str) -> None:
        self.failures[feed] = 0

    def failed(self, feed: str, now: float, retry_after: float | None = None) -> None:
        self.failures[feed] = failures = self.failures.get(feed, 0) + 1
        delay = min(self.interval * 2.0 ** min(failures, 30), self.backoff_max)
        self.due[feed] = now + max(delay, retry_after or 0.0)


def start(rt: Runtime) -> None:
    """The poller's timer: each due feed polled, on the group's leader only."""
    schedule = Schedule(rt.feeds, rt.settings.poll_interval, rt.settings.feed_backoff_max)
    polled_once: set[str] = set()
    busy = asyncio.Lock()

    # On the leader only: with several workers, one polls and the others process.
    @rt.app.timer(interval=1.0, on_leader=True, name="wirewatch.poller")  # type: ignore[untyped-decorator]
    async def poller() -> None:
        if busy.locked():
            return
        async with busy:
            if not polled_once and not rt.once:
                log.info("this worker leads the group: it polls the %d feed(s)", len(rt.feeds))
            due = schedule.take_due(time.monotonic())
            if rt.once:
                due = [f for f in due if f not in polled_once]
            await asyncio.gather(*(poll_feed(rt, feed, schedule) for feed in due))
            polled_once.update(due)
            if len(polled_once) >= len(rt.feeds):
                rt.progress.polling_done.set()
