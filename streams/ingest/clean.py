"""Main-text extraction with trafilatura: title, text, date, language and canonical URL of a page."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urljoin

import trafilatura

from streams.ingest.language import identify
from streams.ingest.urls import canonical_url, is_web_url


class ExtractionFailed(ValueError):
    """A page from which no article text could be extracted."""

    reason_class = "extraction_failed"


@dataclass(frozen=True)
class Cleaned:
    """What the cleaner keeps of a page."""

    canonical_url: str
    title: str
    text: str
    published: str | None
    language: str | None
    text_hash: str


# Below this many characters a "main text" is a cookie notice or an error page, not an article.
MIN_TEXT_CHARS = 200

_CANONICAL = re.compile(
    r"""<link\b(?=[^>]*\brel\s*=\s*["']?canonical\b)[^>]*\bhref\s*=\s*["']([^"'>]+)["']""", re.IGNORECASE
)
_HTML_LANG = re.compile(r"""<html\b[^>]*\blang\s*=\s*["']?([A-Za-z]{2,3})\b""", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
# A line inside the body that headlines another story ("Read also: ...", "Lire aussi : ...", "Читайте
# также: ..."): sites set them between paragraphs, and the story they name is not this article's.
_TEASER = re.compile(
    r"^[\W_]*(?:read (?:also|more)|also read|see also|related(?: stories| articles?| coverage)?"
    r"|more(?: on this)?"
    r"|recommended|lire aussi|à lire aussi|voir aussi|leggi anche|lee también|leia também|lesen sie auch"
    r"|mehr zum thema|читайте также|читайте також|اقرأ أيضا|اقرأ أيضاً|اقرأ ايضا|ayr\u0131ca okuyun)"
    r"\s*[:\-\u2013\u2014|>»]",
    re.IGNORECASE,
)
_TEASER_MAX_CHARS = 300


def text_hash(text: str) -> str:
    """SHA-256 of the text with Unicode, case and white space normalised, so re-encodings collide."""
    norm = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return hashlib.sha256(norm.encode("utf-8")).hexdigest()


def drop_teasers(text: str) -> str:
    """The text without lines that headline other stories (see _TEASER)."""
    lines = text.split("\n")
    kept = [ln for ln in lines if not (len(ln) <= _TEASER_MAX_CHARS and _TEASER.match(ln.strip()))]
    return text if len(kept) == len(lines) else "\n".join(kept)


def _head(html: str) -> str:
    end = _HEAD_END.search(html, 0, 200_000)
    return html[: end.start()] if end else html[:20_000]


def find_canonical(html: str, page_url: str) -> str:
    """The page's rel=canonical URL, resolved and canonicalised; the page URL when there is none."""
    found = _CANONICAL.search(_head(html))
    if found:
        try:
            candidate = urljoin(page_url, found.group(1).strip())
        except ValueError:  # a canonical link no URL parser accepts is no canonical link
            candidate = ""
        if is_web_url(candidate):
            return canonical_url(candidate)
    return canonical_url(page_url)


def clean_html(html: str, page_url: str, fallback_title: str = "", hint: str | None = None) -> Cleaned:
    """Extract the article from a page; raise ExtractionFailed when it holds no article text."""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=page_url,
            include_comments=False,
            include_tables=False,
            include_links=False,
            with_metadata=True,
            deduplicate=False,
        )
    except Exception as exc:
        # The page is a stranger's bytes: whatever the extractor raises on it means no article here.
        raise ExtractionFailed(f"the extractor gave up: {type(exc).__name__}: {exc}") from exc
    text = drop_teasers((getattr(doc, "text", None) or "").strip() if doc is not None else "")
    if len(text) < MIN_TEXT_CHARS:
        raise ExtractionFailed(f"no article text found ({len(text)} characters after cleaning)")
    lang_match = _HTML_LANG.search(_head(html))
    declared = getattr(doc, "language", None) or (lang_match.group(1) if lang_match else None)
    title = (getattr(doc, "title", None) or fallback_title or "").strip()
    return Cleaned(
        canonical_url=find_canonical(html, page_url),
        title=title,
        text=text,
        published=getattr(doc, "date", None),
        # What the page declares is a hint: templates say "en" on pages in every language.
        language=identify(f"{title}\n{text}", hint=declared or hint),
        text_hash=text_hash(text),
    )


def warm() -> None:
    """Do once what the first page would do lazily (trafilatura's parsers, the language model: about half
    a second), so that no page's deadline pays for it."""
    paragraph = "Officials said on Monday that the road between the two towns had reopened to traffic. " * 4
    clean_html(f"<html><body><article><p>{paragraph}</p></article></body></html>", "https://warm.example/")
