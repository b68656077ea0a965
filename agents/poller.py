"""poller: polls each feed on its interval with conditional GET and publishes items never seen before."""

from __future__ import annotations

import asyncio
import time

from streams.app import Runtime
from streams.records import FeedItem, utcnow
from streams.stages.feeds import BadFeed, parse_feed
from streams.stages.fetch import FetchError, fetch

STAGE = "poller"


async def poll_feed(rt: Runtime, feed_url: str) -> int:
    """Poll one feed; publish its unseen items; return how many were published."""
    etag, modified = rt.state.validators(feed_url)
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    try:
        resp = await fetch(rt.http(), feed_url, rt.limits(rt.settings.max_feed_bytes), headers)
        if resp.status == 304:
            return 0
        feed = parse_feed(resp.body, feed_url)
    except (FetchError, BadFeed) as exc:
        reason_class = exc.reason_class if isinstance(exc, FetchError) else "bad_feed"
        await rt.dead_letter(STAGE, feed_url, reason_class, str(exc))
        return 0
    for title in feed.rejected:
        await rt.dead_letter(STAGE, feed_url, "bad_item", f"feed entry without an http(s) link: {title!r}")
    fresh = set(rt.state.unseen([item.url for item in feed.items]))
    published = 0
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
        )
        rt.progress.expect(item.url)
        await rt.send(rt.topics.feed_items, item.url, record)
        # Marked seen only once the broker has the item: a crash in between re-sends, never loses.
        rt.state.mark_seen(item.url, feed_url, seen_at)
        published += 1
    rt.state.set_validators(feed_url, resp.etag, resp.last_modified)
    return published


class Schedule:
    """When each feed is next due; each feed keeps its own interval."""

    def __init__(self, feeds: list[str], interval: float) -> None:
        self.interval = interval
        self.due = dict.fromkeys(feeds, 0.0)

    def take_due(self, now: float) -> list[str]:
        ready = [f for f, at in self.due.items() if at <= now]
        for feed in ready:
            self.due[feed] = now + self.interval
        return ready


def attach(rt: Runtime) -> None:
    schedule = Schedule(rt.feeds, rt.settings.poll_interval)
    polled_once: set[str] = set()
    busy = asyncio.Lock()

    # On the leader only: with several workers, one polls and the others process.
    @rt.app.timer(interval=1.0, on_leader=True, name="wirewatch.poller")  # type: ignore[untyped-decorator]
    async def poller() -> None:
        if busy.locked():
            return
        async with busy:
            due = schedule.take_due(time.monotonic())
            if rt.once:
                due = [f for f in due if f not in polled_once]
            await asyncio.gather(*(poll_feed(rt, feed) for feed in due))
            polled_once.update(due)
            if len(polled_once) >= len(rt.feeds):
                rt.progress.polling_done.set()
