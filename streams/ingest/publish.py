"""A feed document to the items the poller (or a WebSub push) publishes on wirewatch.feed-items."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from streams.ingest.feeds import ParsedFeed, parse_feed
from streams.records import FeedItem, utcnow

if TYPE_CHECKING:
    from streams.pipeline.runtime import Runtime


async def parse_in_cpu(rt: Runtime, feed_url: str, body: bytes) -> ParsedFeed:
    """The feed parsed in a CPU process with a deadline: feedparser's regexes can be made to backtrack
    for minutes."""
    return await rt.run_cpu(
        rt.settings.feed_parse_timeout, f"parsing the feed {feed_url}", "bad_feed", parse_feed, body, feed_url
    )


async def publish_items(rt: Runtime, feed_url: str, feed: ParsedFeed, now: float) -> list[float]:
    """Publish the feed's items this worker has not seen (polled or pushed alike: the fetcher's table
    stops any another worker saw); when each new one appeared."""
    for title in feed.rejected:
        await rt.dead_letter("poller", feed_url, "bad_item", f"feed entry without an http(s) link: {title!r}")
    fresh = set(rt.state.unseen([item.url for item in feed.items]))
    # A YAML feed list may name the source and the language of a feed's items itself.
    spec = rt.feed_specs.get(feed_url)
    source = (spec.source if spec else None) or feed.title
    language = (spec.language if spec else None) or feed.language
    new_times: list[float] = []
    records: list[tuple[str, FeedItem]] = []
    for item in feed.items:
        if item.url not in fresh:
            continue
        fresh.discard(item.url)  # a feed may list one link twice
        record = FeedItem(
            url=item.url,
            feed_url=feed_url,
            source=source,
            title=item.title,
            published=item.published,
            summary=item.summary,
            guid=item.guid,
            seen_at=utcnow(),
            declared_language=language,
            tags=list(spec.tags) if spec else [],
        )
        rt.progress.expect(item.url)
        records.append((item.url, record))
        new_times.append(_epoch(item.published) or now)
    await rt.send_many(rt.topics.feed_items, records)
    # Marked seen only once the broker has every item: a crash in between re-sends, never loses.
    rt.state.mark_seen([(r.url, feed_url, r.seen_at) for _, r in records])
    return new_times


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
