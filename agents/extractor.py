"""extractor: spaCy entities and watchlist matches for each clean article."""

from __future__ import annotations

from streams.names.analysis import decide, ner_job
from streams.pipeline.runtime import Runtime
from streams.records import ArticleEntities, CleanArticle, carried, utcnow

STAGE = "extractor"


async def extract(rt: Runtime, article: CleanArticle) -> ArticleEntities:
    """Entities from a CPU process, then the (cheap) watchlist matcher on this one."""
    s = rt.settings
    model = s.ner_model(article.language)
    job = ner_job(article.text, model, s.entities, rt.matcher)
    what = f"entity recognition of {article.url}"
    found = await rt.run_cpu(s.ner_timeout, what, "ner_failed", job.run) if job else []
    ents, matches = decide(article.text, rt.matcher, found)
    return carried(
        article, ArticleEntities, model=model or "", entities=ents, matches=matches, extracted_at=utcnow()
    )


async def handle(rt: Runtime, article: CleanArticle) -> str:
    result = await extract(rt, article)
    # Keyed by story, so all articles of a story reach the same alerter partition and its story state.
    await rt.send(rt.topics.articles_entities, article.story_id or article.url, result)
    return "extracted"
