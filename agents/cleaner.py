"""cleaner: extracts the main text with trafilatura and hands it to the deduper."""

from __future__ import annotations

from streams.ingest.clean import clean_html
from streams.pipeline.runtime import Runtime
from streams.records import CleanArticle, RawArticle, carried, utcnow

STAGE = "cleaner"


async def clean_article(rt: Runtime, raw: RawArticle) -> CleanArticle:
    """Clean one raw page in a CPU process (ExtractionFailed when it holds no article)."""
    cleaned = await rt.run_cpu(
        rt.settings.extract_timeout,
        f"extraction of {raw.url}",
        "extraction_failed",
        clean_html,
        raw.html,
        raw.url,
        raw.title,
        raw.declared_language,
    )
    return carried(
        raw,
        CleanArticle,
        url=cleaned.canonical_url,
        title=cleaned.title or raw.title,
        published=cleaned.published or raw.published,
        language=cleaned.language,
        text=cleaned.text,
        text_hash=cleaned.text_hash,
        cleaned_at=utcnow(),
    )


async def handle(rt: Runtime, raw: RawArticle) -> str:
    article = await clean_article(rt, raw)
    await rt.send(rt.topics.articles_dedupe, article.text_hash, article)
    return "cleaned"
