"""The cleaner against stored pages and their expected extraction (WIREWATCH_UPDATE_GOLDEN=1 rewrites)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streams.ingest.clean import ExtractionFailed, clean_html

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
PAGES = sorted(
    p
    for p in GOLDEN.glob("*.html")
    if (p.with_suffix(".json")).exists() or os.environ.get("WIREWATCH_UPDATE_GOLDEN")
)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_extracts_as_stored(page: Path) -> None:
    url = f"https://golden.example/{page.stem}"
    expected_path = page.with_suffix(".json")
    try:
        cleaned = clean_html(page.read_text(encoding="utf-8"), url)
        got = {
            "canonical_url": cleaned.canonical_url,
            "title": cleaned.title,
            "published": cleaned.published,
            "language": cleaned.language,
            "text": cleaned.text,
        }
    except ExtractionFailed as exc:
        got = {"error": "extraction_failed", "reason": str(exc)}
    if os.environ.get("WIREWATCH_UPDATE_GOLDEN"):
        old = json.loads(expected_path.read_text()) if expected_path.exists() else {}
        got_out = {**got, **{k: v for k, v in old.items() if k in ("absent",)}}
        expected_path.write_text(json.dumps(got_out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    absent = expected.pop("absent", [])
    assert got == expected
    # Clutter that must never reach the text: nav, sidebars, related lists, comments.
    for phrase in absent:
        assert phrase not in got.get("text", ""), phrase


def test_long_texts_are_read_in_chunks_with_offsets_into_the_whole() -> None:
    from streams.names.ner import CHUNK_CHARS, entities, load_nlp
    from streams.settings import DEFAULT_MODEL

    filler = "The weather in the capital stayed mild for most of the week. " * 2000
    text = filler + "Khalifa Haftar met officials in Benghazi on Monday.\n" + filler[:5000]
    assert len(text) > CHUNK_CHARS and load_nlp(DEFAULT_MODEL).max_length > CHUNK_CHARS
    found = entities(text, DEFAULT_MODEL)
    assert ("Khalifa Haftar", "PERSON") in {(t, label) for t, label, _, _ in found}
    for surface, _, start, end in found:
        assert text[start:end] == surface


def test_numpy_matmul_finds_the_same_entities() -> None:
    from thinc.api import get_current_ops, set_current_ops

    from streams.names.ner import entities, load_nlp, use_numpy_matmul
    from streams.settings import DEFAULT_MODEL
    from tests.synthetic import report

    texts = ["\n\n".join(report(i, place, 400).body) for i, place in enumerate(["Sirte", "Jufra", "Derna"])]
    texts += [
        (GOLDEN / f"{name}.json").read_text()
        for name in ("libya-observer-ceasefire", "machine-translated-jufra")
    ]
    before = [entities(t, DEFAULT_MODEL) for t in texts]
    previous = get_current_ops()
    try:
        use_numpy_matmul()
        assert type(load_nlp(DEFAULT_MODEL).get_pipe("ner").model.ops).__name__ == "NumpyOps"
        assert not load_nlp(DEFAULT_MODEL).get_pipe("ner").model.ops.use_blis
        after = [entities(t, DEFAULT_MODEL) for t in texts]
    finally:
        set_current_ops(previous)
        load_nlp.cache_clear()
    assert after == before
    assert sum(map(len, before)) > 20


def test_lines_that_headline_other_stories_are_dropped() -> None:
    from streams.ingest.clean import drop_teasers

    text = "\n".join(
        [
            "Haftar's forces withdrew.",
            "Read also: Wagner leaves Sirte",
            "More: Goita receives the governor",
            "Lire aussi : le GNA à Tripoli",
            "Читайте также: Хафтар в Москве",
            "Reading also the statement, officials said more.",
        ]
    )
    assert drop_teasers(text) == "Haftar's forces withdrew.\nReading also the statement, officials said more."
