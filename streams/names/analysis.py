"""The one analysis of an article's text: what spaCy reads of it, then the matcher's decision."""

from __future__ import annotations

from dataclasses import dataclass

from streams.names.match import Matcher, sentences_around
from streams.names.ner import entities, entities_in_spans
from streams.records import Entity, WatchMatch, as_records
from streams.settings import EntitiesMode

Found = list[tuple[str, str, int, int]]


@dataclass(frozen=True)
class NerJob:
    """What spaCy is to read of one text: a model, and the spans (None: the whole text). Picklable, so a
    worker runs `run` in a CPU process under a deadline, and the CLI and the benches in their own."""

    text: str
    model: str
    spans: tuple[tuple[int, int], ...] | None

    def run(self) -> Found:
        if self.spans is None:
            return entities(self.text, self.model)
        return entities_in_spans(self.text, list(self.spans), self.model)


def ner_job(text: str, model: str | None, mode: EntitiesMode, matcher: Matcher) -> NerJob | None:
    """The spaCy work an article needs: none without a model for its language, or in "candidates" mode
    when it names no candidate (spaCy's label can decide nothing there)."""
    if model is None:
        return None
    if mode == "all":
        return NerJob(text, model, None)
    spans = sentences_around(text, matcher.candidate_offsets(text))
    return NerJob(text, model, tuple(spans)) if spans else None


def decide(text: str, matcher: Matcher, found: Found) -> tuple[list[Entity], list[WatchMatch]]:
    """spaCy's entities as records, and the matches they help decide (the borderline spellings)."""
    ents = as_records(found)
    return ents, matcher.match(text, ents)


def analyse(
    text: str, matcher: Matcher, model: str | None, mode: EntitiesMode = "all"
) -> tuple[list[Entity], list[WatchMatch]]:
    """The whole analysis in this process (the CLI, replay's tests, the benches)."""
    job = ner_job(text, model, mode, matcher)
    return decide(text, matcher, job.run() if job else [])
