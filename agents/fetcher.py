"""fetcher: downloads each new item's page into wirewatch.articles.raw."""

from __future__ import annotations

from streams.ingest.fetch import FetchError, Response, decode_html, strip_inert
from streams.pipeline.progress import Finished
from streams.pipeline.runtime import Runtime
from streams.records import FeedItem, RawArticle, carried, utcnow

# A host that answers 429 or 503 with a Retry-After up to this long is waited for, once.
MAX_RETRY_AFTER = 60.0

STAGE = "fetcher"


async def download_page(rt: Runtime, url: str, feed_url: str | None = None) -> Response:
    """The page, waiting out one short Retry-After (the host gate holds the host until then), through
    its feed's own proxy and networks if it has them."""
    limits = rt.limits(rt.settings.max_page_bytes)
    headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}
    web = rt.web(feed_url)
    try:
        return await web.get(url, limits, headers)
    except FetchError as exc:
        if exc.reason_class != "rate_limited" or (exc.retry_after or 0.0) > MAX_RETRY_AFTER:
            raise
    return await web.get(url, limits, headers)


async def fetch_article(rt: Runtime, item: FeedItem) -> RawArticle:
    """Download and decode the page of one feed item (FetchError on any refusal)."""
    robots = rt.robots()
    if robots is not None:
        await robots.check(item.url)
    resp = await download_page(rt, item.url, item.feed_url)
    raw = carried(
        item,
        RawArticle,
        url=resp.url,
        item_url=item.url,
        status=resp.status,
        content_type=resp.content_type,
        html=decode_html(resp),
        fetched_at=utcnow(),
    )
    limit = rt.settings.max_record_bytes
    # Serialised here only when it could be over the limit (send serialises it again): JSON turns no
    # character into more than 6 bytes, so most pages are known to fit without it.
    text_chars = sum(len(v) for v in raw.asdict().values() if isinstance(v, str))
    if 6 * text_chars + 1024 <= limit:
        return raw
    size = len(raw.dumps())
    if size <= limit:
        return raw
    # Over what the broker takes in one record: the page's scripts and styles are what usually go.
    slim = RawArticle(**{**raw.asdict(), "html": strip_inert(raw.html)})
    if len(slim.dumps()) <= limit:
        return slim
    raise FetchError(
        "too_large",
        f"{item.url}: {size} bytes as a record, over max_record_bytes ({limit}) even without scripts",
    )


async def handle(rt: Runtime, item: FeedItem) -> str:
    # A new poller (another worker became leader, or one with an empty data dir) publishes items again.
    if rt.dedupe.item_fetched(item.url):
        return Finished("already fetched")
    raw = await fetch_article(rt, item)
    await rt.send(rt.topics.articles_raw, item.url, raw)
    rt.dedupe.record_item_fetched(item.url)
    return "fetched"
