"""extractor: spaCy entities and watchlist matches for each clean article."""

from __future__ import annotations

from collections.abc import AsyncIterator

from faust.types import StreamT

from streams.app import Runtime
from streams.records import ArticleEntities, CleanArticle, Entity, WatchMatch, utcnow
from streams.stages.ner import entities

STAGE = "extractor"


async def extract(rt: Runtime, article: CleanArticle) -> ArticleEntities:
    """Entities from a CPU process, then the (cheap) watchlist matcher on this one."""
    found = await rt.run_cpu(entities, article.text, rt.settings.spacy_model)
    matches = rt.matcher.match(article.text)
    return ArticleEntities(
        url=article.url,
        item_url=article.item_url,
        feed_url=article.feed_url,
        source=article.source,
        title=article.title,
        published=article.published,
        language=article.language,
        text=article.text,
        model=rt.settings.spacy_model,
        entities=[Entity(text=t, label=label, start=s, end=e) for t, label, s, e in found],
        matches=[
            WatchMatch(
                watch=m.watch, kind=m.kind, text=m.text, start=m.start, end=m.end, how=m.how, score=m.score
            )
            for m in matches
        ],
        extracted_at=utcnow(),
    )


async def handle(rt: Runtime, article: CleanArticle) -> str:
    async with rt.guard(STAGE, article.url, article.item_url):
        result = await extract(rt, article)
        await rt.send(rt.topics.articles_entities, article.url, result)
        return "extracted"
    return "dead-lettered"


def attach(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.articles_clean, name="wirewatch.extractor")
    async def extractor(stream: StreamT[CleanArticle]) -> AsyncIterator[str]:
        async for article in stream:
            yield await handle(rt, article)
