"""extractor: spaCy entities and watchlist matches for each clean article."""

from __future__ import annotations

from streams.app import Runtime
from streams.records import ArticleEntities, CleanArticle, as_records, utcnow
from streams.stages.match import sentences_around
from streams.stages.ner import entities, entities_in_spans

STAGE = "extractor"


async def extract(rt: Runtime, article: CleanArticle) -> ArticleEntities:
    """Entities from a CPU process, then the (cheap) watchlist matcher on this one."""
    s = rt.settings
    what = f"entity recognition of {article.url}"
    model = s.ner_model(article.language)
    if model is None:
        found = []  # no pipeline for this language: the matcher decides on its own rules
    elif s.entities == "candidates":
        # spaCy only where its label can decide something: an article naming no candidate skips it.
        spans = sentences_around(article.text, rt.matcher.candidate_offsets(article.text))
        found = (
            await rt.run_cpu(s.ner_timeout, what, "ner_failed", entities_in_spans, article.text, spans, model)
            if spans
            else []
        )
    else:
        found = await rt.run_cpu(s.ner_timeout, what, "ner_failed", entities, article.text, model)
    ents = as_records(found)
    # spaCy's labels decide the borderline spellings the matcher is unsure of.
    matches = rt.matcher.match(article.text, ents)
    return ArticleEntities(
        url=article.url,
        item_url=article.item_url,
        feed_url=article.feed_url,
        source=article.source,
        title=article.title,
        published=article.published,
        language=article.language,
        text=article.text,
        model=model or "",
        entities=ents,
        matches=matches,
        extracted_at=utcnow(),
        story_id=article.story_id,
    )


async def handle(rt: Runtime, article: CleanArticle) -> str:
    result = await extract(rt, article)
    # Keyed by story, so all articles of a story reach the same alerter partition and its story state.
    await rt.send(rt.topics.articles_entities, article.story_id or article.url, result)
    return "extracted"


def attach(rt: Runtime) -> None:
    rt.stage_agent(
        rt.topics.articles_clean,
        STAGE,
        handle,
        key=lambda article: article.url,
        concurrency=rt.cpu_concurrency,
    )
