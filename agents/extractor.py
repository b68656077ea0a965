"""extractor: spaCy entities and watchlist matches for each clean article."""

from __future__ import annotations

from streams.names.analysis import analyse_here
from streams.pipeline.runtime import Runtime
from streams.records import ArticleEntities, CleanArticle, carried, utcnow

STAGE = "extractor"


async def extract(rt: Runtime, article: CleanArticle) -> ArticleEntities:
    """Entities and watchlist matches, all found in a CPU process: the candidate search and the matcher
    cost as much as spaCy on the spans they pick, and the event loop has records to move."""
    s = rt.settings
    model = s.ner_model(article.language)
    what = f"entity recognition of {article.url}"
    ents, matches = await rt.run_cpu(
        s.ner_timeout, what, "ner_failed", analyse_here, article.text, model, s.entities
    )
    return carried(
        article, ArticleEntities, model=model or "", entities=ents, matches=matches, extracted_at=utcnow()
    )


async def handle(rt: Runtime, article: CleanArticle) -> str:
    result = await extract(rt, article)
    # Keyed by story, so all articles of a story reach the same alerter partition and its story state.
    await rt.send(rt.topics.articles_entities, article.story_id or article.url, result)
    return "extracted"
