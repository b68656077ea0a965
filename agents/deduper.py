"""deduper: drops exact duplicates and gives every article its story (near-duplicates share one)."""

from __future__ import annotations

from streams.alerting import stories
from streams.alerting.alert import alert_id
from streams.kafka.state import PendingStories
from streams.pipeline.progress import Finished
from streams.pipeline.runtime import Runtime
from streams.records import CleanArticle

STAGE = "deduper"


async def handle(rt: Runtime, articles: list[CleanArticle]) -> list[str]:
    """The articles that arrived together, in order: one acknowledgement and one state write for all."""
    pending = PendingStories(rt.dedupe)
    outcomes: list[str] = []
    unique: list[tuple[str, CleanArticle]] = []
    for article in articles:
        outcome = "dead-lettered"
        async with rt.guard(STAGE, article.url, article.item_url):
            outcome = assign(pending, article, unique)
        outcomes.append(outcome)
    await rt.send_many(rt.topics.articles_clean, unique)
    # Recorded once the broker has the articles: a crash in between publishes them again, never loses them.
    pending.flush()
    return outcomes


def assign(pending: PendingStories, article: CleanArticle, unique: list[tuple[str, CleanArticle]]) -> str:
    """Finished for a duplicate of an article already seen (in this batch or before); else the article
    with its story is added to `unique`, and recorded in `pending`."""
    duplicate = pending.duplicate_of(article.url, article.text_hash)
    if duplicate is not None:
        return Finished(f"duplicate: {duplicate}")
    sig = stories.signature(article.text)
    bands = stories.band_keys(sig)
    story_id = story_of(pending, sig, bands) or alert_id(article.url)
    unique.append((story_id, article.derive(story_id=story_id)))
    pending.record_article(article.url, article.text_hash)
    pending.record_story_member(story_id, bands, stories.encode(sig))
    return "unique"


def story_of(index: PendingStories, sig: stories.Signature, bands: list[str]) -> str | None:
    """The known story most similar to the signature, if any is similar enough."""
    best, best_score = None, stories.THRESHOLD
    for candidate in index.story_candidates(bands):
        known = index.story_signature(candidate)
        score = stories.similarity(sig, stories.decode(known)) if known else 0.0
        if score >= best_score:
            best, best_score = candidate, score
    return best
