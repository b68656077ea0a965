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
    """The whole analysis in this process (the CLI, the benches, and each CPU process by `analyse_here`)."""
    job = ner_job(text, model, mode, matcher)
    return decide(text, matcher, job.run() if job else [])


#: The matcher of this CPU process, given once by its initializer (streams/pipeline/cpuproc.py).
_process_matcher: Matcher | None = None


def use_matcher(matcher: Matcher) -> None:
    """Make `matcher` the one `analyse_here` uses in this process."""
    global _process_matcher
    _process_matcher = matcher


def analyse_here(text: str, model: str | None, mode: EntitiesMode) -> tuple[list[Entity], list[WatchMatch]]:
    """`analyse` with this process's matcher: what a worker sends to a CPU process, so that the candidate
    search and the matcher run there too, off the event loop, and only the text crosses the pipe."""
    if _process_matcher is None:
        raise RuntimeError("this process was started without a matcher (cpuproc.Slots(matcher=...))")
    return analyse(text, _process_matcher, model, mode)
