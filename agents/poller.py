"""poller: polls each feed on its interval with conditional GET and publishes items never seen before."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from streams import metrics
from streams.alerting.alert import health_alert
from streams.alerting.health import FeedHealth, change, failed, succeeded
from streams.alerting.routes import health_deliveries
from streams.ingest.feeds import BadFeed
from streams.ingest.fetch import FetchError, check_feed_type, link_targets
from streams.ingest.publish import parse_in_cpu, publish_items
from streams.ingest.schedule import Intervals, Pace, Schedule
from streams.pipeline.cpuproc import WorkFailed
from streams.pipeline.runtime import Runtime
from streams.records import FeedHealthRecord

log = logging.getLogger("wirewatch")

STAGE = "poller"


@dataclass(frozen=True)
class _Read:
    """What one poll of a feed gave."""

    published: int = 0
    title: str = ""
    new_times: tuple[float, ...] = ()
    #: How often the publisher asks to be read (Cache-Control max-age, <ttl>, sy:updatePeriod).
    hint: float | None = None
    #: WebSub: the hub the feed advertises and its topic there.
    hub: str | None = None
    topic: str = ""


async def poll_feed(rt: Runtime, feed_url: str, schedule: Schedule | None = None) -> int:
    """Poll one feed; publish its unseen items and its health; return how many items were published."""
    now = time.time()
    health = rt.state.feed_health(feed_url)
    try:
        read = await _read_feed(rt, feed_url, now)
    except (FetchError, BadFeed, WorkFailed) as exc:
        reason_class = getattr(exc, "reason_class", "bad_feed")
        await rt.dead_letter(STAGE, feed_url, reason_class, str(exc))
        rt.progress.feed_failures[feed_url] = (reason_class, str(exc))
        metrics.FEED_POLLS.labels("failed").inc()
        health = failed(health, now, reason_class, str(exc))
        if schedule is not None:
            schedule.failed(feed_url, time.monotonic(), getattr(exc, "retry_after", None))
        read = _Read()
    else:
        rt.progress.feed_failures.pop(feed_url, None)
        health = succeeded(health, now, read.title, list(read.new_times))
        if rt.websub is not None and read.hub:
            await rt.websub.ensure(feed_url, read.hub, read.topic, rt.limits(rt.settings.max_feed_bytes))
        if schedule is not None:
            # A feed its hub pushes is polled only as a safety net.
            pushed = rt.websub is not None and rt.websub.subscribed(feed_url)
            schedule.floor(feed_url, rt.settings.websub_poll_interval if pushed else None)
            schedule.succeeded(feed_url, Pace(health.median_interval(), read.hint))
    await _publish_health(rt, health, now)
    return read.published


async def _read_feed(rt: Runtime, feed_url: str, now: float) -> _Read:
    """Fetch and parse the feed, publish its unseen items; raises on any failure."""
    etag, modified = rt.state.validators(feed_url)
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    spec = rt.feed_specs.get(feed_url)
    if spec is not None:
        headers.update(spec.headers)
        if spec.user_agent:
            headers["User-Agent"] = spec.user_agent
    resp = await rt.web(feed_url).get(feed_url, rt.limits(rt.settings.max_feed_bytes), headers)
    links = link_targets(resp.link)
    if resp.status == 304:
        metrics.FEED_POLLS.labels("not_modified").inc()
        return _Read(hint=resp.max_age, hub=links.get("hub"), topic=links.get("self") or feed_url)
    check_feed_type(resp)
    feed = await parse_in_cpu(rt, feed_url, resp.body)
    new_times = await publish_items(rt, feed_url, feed, now)
    rt.state.set_validators(feed_url, resp.etag, resp.last_modified)
    metrics.FEED_POLLS.labels("new_items" if new_times else "no_new_items").inc()
    hints = [h for h in (resp.max_age, feed.refresh_hint) if h]
    return _Read(
        published=len(new_times),
        title=feed.title,
        new_times=tuple(new_times),
        hint=max(hints, default=None),
        hub=links.get("hub") or feed.hub,
        topic=links.get("self") or feed.self_url or feed_url,
    )


async def _publish_health(rt: Runtime, health: FeedHealth, now: float) -> None:
    s = rt.settings
    health, health_change = change(health, now, s.feed_failures_alert, s.feed_silence_factor)
    rt.state.set_feed_health(health)
    await rt.send(rt.topics.feeds_health, health.feed_url, FeedHealthRecord(**health.as_json()))
    if health_change is not None:
        log.warning("feed health: %s: %s", health_change.title, health_change.message)
        alert = health_alert(health.feed_url, health.source, health_change, now)
        await rt.publish_alert(alert, health_deliveries(rt.routing, alert))


def start(rt: Runtime) -> None:
    """The poller's timer: each due feed polled, on the group's leader only."""
    st = rt.settings
    intervals = Intervals(
        start=st.poll_interval,
        least=st.min_interval,
        most=max(st.max_interval, st.min_interval),
        backoff_max=st.feed_backoff_max,
        overrides={
            **st.interval_overrides(),
            **{url: spec.interval for url, spec in rt.feed_specs.items() if spec.interval},
        },
    )
    # The first round spread at twenty feeds a second, over a minute at most (not for --once): a thousand
    # feeds are not asked at once, and a handful are asked at once.
    spread = 0.0 if rt.once else min(60.0, st.poll_interval, len(rt.feeds) / 20.0)
    schedule = Schedule(rt.feeds, intervals, spread=spread, now=time.monotonic())
    polled_once: set[str] = set()
    busy = asyncio.Lock()

    # On the leader only: with several workers, one polls and the others process.
    @rt.app.timer(interval=1.0, on_leader=True, name="wirewatch.poller")  # type: ignore[untyped-decorator]
    async def poller() -> None:
        if busy.locked():
            return
        async with busy:
            if rt.websub is not None and not polled_once:
                await rt.websub.drop_removed(rt.limits(rt.settings.max_feed_bytes))
            if not polled_once and not rt.once:
                log.info("this worker leads the group: it polls the %d feed(s)", len(rt.feeds))
            due = schedule.take_due(time.monotonic())
            if rt.once:
                due = [f for f in due if f not in polled_once]
            await asyncio.gather(*(poll_feed(rt, feed, schedule) for feed in due))
            polled_once.update(due)
            if len(polled_once) >= len(rt.feeds):
                rt.progress.polling_done.set()
