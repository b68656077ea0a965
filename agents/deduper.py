"""deduper: drops exact duplicates and gives every article its story (near-duplicates share one)."""

from __future__ import annotations

from streams.alerting import stories
from streams.alerting.alert import alert_id
from streams.pipeline.progress import Finished
from streams.pipeline.runtime import Runtime
from streams.records import CleanArticle

STAGE = "deduper"


async def handle(rt: Runtime, article: CleanArticle) -> str:
    duplicate = rt.dedupe.duplicate_of(article.url, article.text_hash)
    if duplicate is not None:
        return Finished(f"duplicate: {duplicate}")
    sig = stories.signature(article.text)
    bands = stories.band_keys(sig)
    story_id = story_of(rt, sig, bands) or alert_id(article.url)
    await rt.send(rt.topics.articles_clean, story_id, article.derive(story_id=story_id))
    # Recorded once the broker has the article: a crash in between publishes it again, never loses it.
    rt.dedupe.record_article(article.url, article.text_hash)
    rt.dedupe.record_story_member(story_id, bands, stories.encode(sig))
    return "unique"


def story_of(rt: Runtime, sig: stories.Signature, bands: list[str]) -> str | None:
    """The known story most similar to the signature, if any is similar enough."""
    best, best_score = None, stories.THRESHOLD
    for candidate in rt.dedupe.story_candidates(bands):
        known = rt.dedupe.story_signature(candidate)
        score = stories.similarity(sig, stories.decode(known)) if known else 0.0
        if score >= best_score:
            best, best_score = candidate, score
    return best
