"""Scoring a matcher on a labelled corpus: article-level precision and recall, and the misses."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template

import yaml

from streams.ingest.clean import clean_html, drop_teasers
from streams.names.analysis import analyse
from streams.names.gazetteer import Place
from streams.names.match import VariantMatcher
from streams.names.watchlist import Watch
from streams.settings import EntitiesMode
from streams.site import Page, Site, render_page


@dataclass(frozen=True)
class LabelledArticle:
    """One article of the corpus, how it is served, and the watches it must raise."""

    id: str
    layout: str
    title: str
    body: tuple[str, ...]
    sidebar: tuple[str, ...]
    comments: tuple[str, ...]
    expect: frozenset[str]


@dataclass
class Report:
    """Article-level results: a (article, watch) pair is a hit, a false alarm or a miss."""

    hits: int = 0
    false_alarms: list[tuple[str, str]] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        found = self.hits + len(self.false_alarms)
        return self.hits / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.hits + len(self.misses)
        return self.hits / expected if expected else 1.0


def load_corpus(path: Path) -> list[LabelledArticle]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        LabelledArticle(
            id=a["id"],
            layout=a.get("layout", "text"),
            title=a["title"],
            body=tuple(a["body"]),
            sidebar=tuple(a.get("sidebar") or ()),
            comments=tuple(a.get("comments") or ()),
            expect=frozenset(a.get("expect") or ()),
        )
        for a in doc["articles"]
    ]


# How each page layout writes its sidebar items and comments; the rest is in streams/demo_site/<layout>.html.
_PARTS = {
    "blog": (
        '<li><a href="/p/{i}">{text}</a></li>',
        '<li class="comment"><div class="comment-content"><p>{text}</p></div></li>',
    ),
    "portal": (
        '<div class="newsline"><a href="/n/{i}">{text}</a></div>',
        '<div class="comm"><b>user{i}:</b> {text}</div>',
    ),
}


def _render(a: LabelledArticle) -> str:
    side, comment = _PARTS[a.layout]
    template = resources.files("streams.demo_site").joinpath(f"{a.layout}.html").read_text(encoding="utf-8")
    e = html.escape
    return Template(template).substitute(
        title=e(a.title),
        paragraphs="\n".join(f"<p>{e(p)}</p>" for p in a.body),
        sidebar="\n".join(side.format(i=i, text=e(t)) for i, t in enumerate(a.sidebar)),
        comments="\n".join(comment.format(i=i, text=e(t)) for i, t in enumerate(a.comments)),
    )


def article_text(a: LabelledArticle) -> str:
    """The text the pipeline would see: served as HTML and cleaned, or taken as plain text."""
    if a.layout == "text":
        return drop_teasers(a.title + "\n" + "\n".join(a.body))
    if a.layout == "news":
        site = Site("Desert Wire", "Most read", list(a.sidebar), [])
        page = Page(a.id, a.title, "2021-03-02T10:00:00Z", "By staff", a.body, a.comments)
        markup = render_page(site, page, "https://corpus.example")
    elif a.layout in _PARTS:
        markup = _render(a)
    else:
        raise ValueError(f"{a.id}: unknown layout {a.layout!r}")
    return clean_html(markup, f"https://corpus.example/{a.id}").text


@dataclass(frozen=True)
class Ner:
    """How spaCy runs while a corpus is scored: a model, and which articles it reads (Settings.entities)."""

    model: str
    mode: EntitiesMode = "all"


def evaluate(
    articles: Sequence[LabelledArticle],
    watches: Sequence[Watch],
    ner: Ner | None,
    places: Mapping[str, Place] | None = None,
) -> Report:
    """Clean each article, then analyse it as the extractor does (NER when given) and score the watch ids."""
    matcher = VariantMatcher(watches, places)
    report = Report()
    for a in articles:
        text = article_text(a)
        _, matches = analyse(text, matcher, ner.model if ner else None, ner.mode if ner else "all")
        found = {m.watch for m in matches}
        report.hits += len(found & a.expect)
        report.false_alarms += [(a.id, w) for w in sorted(found - a.expect)]
        report.misses += [(a.id, w) for w in sorted(a.expect - found)]
    return report


def spacy_ner(model: str) -> Ner:
    """spaCy over every whole article."""
    return Ner(model, "all")


def candidate_ner(model: str) -> Ner:
    """spaCy as the extractor runs it with `entities: candidates`: only the sentences holding candidates."""
    return Ner(model, "candidates")
