"""The one analysis path the extractor, replay, `wirewatch match` and the corpus scores share."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

from streams.names.analysis import analyse, ner_job
from streams.names.match import VariantMatcher
from streams.names.watchlist import Watch
from streams.settings import DEFAULT_MODEL

MATCHER = VariantMatcher([Watch("sirte", "location", "Sirte"), Watch("haftar", "actor", "Khalifa Haftar")])
TEXT = "Markets were calm.\n\nForces loyal to Khalifa Haftar shelled Sirte. Prices held."


def test_what_spacy_reads_follows_the_entities_setting() -> None:
    whole = ner_job(TEXT, DEFAULT_MODEL, "all", MATCHER)
    assert whole is not None and whole.spans is None
    some = ner_job(TEXT, DEFAULT_MODEL, "candidates", MATCHER)
    assert some is not None and some.spans is not None
    assert [TEXT[s:e] for s, e in some.spans] == ["Forces loyal to Khalifa Haftar shelled Sirte."]
    assert ner_job("Markets were calm.", DEFAULT_MODEL, "candidates", MATCHER) is None  # nothing to decide
    assert ner_job(TEXT, None, "all", MATCHER) is None  # no pipeline for the article's language
    assert pickle.loads(pickle.dumps(some)) == some  # it crosses to a CPU process


def test_the_analysis_gives_entities_and_matches() -> None:
    ents, matches = analyse(TEXT, MATCHER, DEFAULT_MODEL, "candidates")
    assert {e.text for e in ents} >= {"Khalifa Haftar", "Sirte"}
    assert [m.watch for m in matches] == ["haftar", "sirte"]
    assert [m.watch for m in analyse(TEXT, MATCHER, None)[1]] == ["haftar", "sirte"]


def test_no_other_module_runs_spacy_or_the_matcher_on_an_article_itself() -> None:
    """The extractor, replay, the CLI and the corpus scores call streams.names.analysis; none calls the NER
    functions itself, so they cannot drift apart again (replay once ignored `entities: candidates`)."""
    root = Path(__file__).resolve().parents[2]
    for path in [*root.glob("streams/**/*.py"), *root.glob("agents/*.py")]:
        if path.name == "analysis.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "streams.names.ner":
                names = {a.name for a in node.names}
                assert not names & {"entities", "entities_in_spans"}, path
