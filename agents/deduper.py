"""deduper: drops articles already published under the same canonical URL or with the same text."""

from __future__ import annotations

from streams.app import Runtime
from streams.records import CleanArticle

STAGE = "deduper"


async def handle(rt: Runtime, article: CleanArticle) -> str:
    duplicate = rt.dedupe.duplicate_of(article.url, article.text_hash)
    if duplicate is not None:
        rt.progress.finish(article.item_url, f"duplicate: {duplicate}")
        return "duplicate"
    await rt.send(rt.topics.articles_clean, article.url, article)
    # Recorded once the broker has the article: a crash in between publishes it again, never loses it.
    rt.dedupe.record_article(article.url, article.text_hash)
    return "unique"


def attach(rt: Runtime) -> None:
    rt.stage_agent(rt.topics.articles_dedupe, STAGE, handle, key=lambda article: article.url)
