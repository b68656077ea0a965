"""fetcher: downloads each new item's page into wirewatch.articles.raw."""

from __future__ import annotations

from collections.abc import AsyncIterator

from faust.types import StreamT

from streams.app import Runtime
from streams.records import FeedItem, RawArticle, utcnow
from streams.stages.fetch import decode_html, fetch

STAGE = "fetcher"


async def fetch_article(rt: Runtime, item: FeedItem) -> RawArticle:
    """Download and decode the page of one feed item (FetchError on any refusal)."""
    resp = await fetch(
        rt.http(), item.url, rt.limits(rt.settings.max_page_bytes), {"Accept": "text/html,*/*;q=0.5"}
    )
    html = decode_html(resp)
    return RawArticle(
        url=resp.url,
        item_url=item.url,
        feed_url=item.feed_url,
        source=item.source,
        title=item.title,
        published=item.published,
        status=resp.status,
        content_type=resp.content_type,
        html=html,
        fetched_at=utcnow(),
    )


async def handle(rt: Runtime, item: FeedItem) -> str:
    async with rt.guard(STAGE, item.url, item.url):
        raw = await fetch_article(rt, item)
        await rt.send(rt.topics.articles_raw, item.url, raw)
        return "fetched"
    return "dead-lettered"


def attach(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.feed_items, name="wirewatch.fetcher")
    async def fetcher(stream: StreamT[FeedItem]) -> AsyncIterator[str]:
        # Yielding the outcome lets Faust's test context wait until a record is fully handled.
        async for item in stream:
            yield await handle(rt, item)
