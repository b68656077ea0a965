"""Near-duplicate grouping: syndicated and edited copies are one story; different reports are not."""

from __future__ import annotations

import itertools
from pathlib import Path

import yaml

from streams.alerting.stories import THRESHOLD, band_keys, decode, encode, signature, similarity

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "articles.yaml"

ORIGINAL = [
    "Forces loyal to Khalifa Haftar pulled back from positions south of Tripoli on Thursday after a "
    "fourteen-month offensive, leaving behind armoured vehicles and ammunition, according to residents "
    "and two officials of the Tripoli-based government.",
    "The withdrawal followed weeks of air strikes by drones operated by the Government of National Accord, "
    "which retook the airport and the town of Tarhuna, a supply hub for the eastern forces, officials said.",
    "A spokesman for the Libyan National Army described the move as a humanitarian truce to allow "
    "negotiations in Geneva, while diplomats said the retreat reflected a shift in foreign support.",
    "Residents of the southern suburbs said families who fled last year had begun to return to inspect "
    "their homes, although engineers warned that mines and booby traps remained in several districts.",
]

#: Five outlets' copies of the same story: datelines, credits, a reworded sentence, a dropped paragraph,
#: machine-translated punctuation, a correction appended.
COPIES = [
    [
        "TRIPOLI (Desert Wire) - " + ORIGINAL[0],
        *ORIGINAL[1:],
        "Reporting by Amal Benghazi; editing by Staff.",
    ],
    [p.replace("on Thursday", "on Thursday, 4 June") for p in ORIGINAL],
    [*ORIGINAL[:3], "This story has been corrected to show that the airport was retaken on Wednesday."],
    [ORIGINAL[0], ORIGINAL[1].replace("officials said", "two officials told reporters"), *ORIGINAL[2:]],
    [p.replace(",", " ,").replace("Haftar", "Hafter") for p in ORIGINAL],
]


def test_syndicated_and_edited_copies_are_one_story() -> None:
    original = signature("\n\n".join(ORIGINAL))
    for copy in COPIES:
        sig = signature("\n\n".join(copy))
        assert similarity(original, sig) >= THRESHOLD, copy[0][:60]
        assert set(band_keys(original)) & set(band_keys(sig))  # the index finds it as a candidate


def test_no_two_corpus_articles_are_one_story() -> None:
    # 43 different reports, many on the same people and places: none may be folded into another's story.
    docs = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))["articles"]
    sigs = {d["id"]: signature("\n\n".join(d["body"])) for d in docs}
    worst = max((similarity(a, b), x, y) for (x, a), (y, b) in itertools.combinations(sigs.items(), 2))
    assert worst[0] < THRESHOLD, worst


def test_signatures_survive_encoding_and_are_stable() -> None:
    sig = signature("\n\n".join(ORIGINAL))
    assert (decode(encode(sig)) == sig).all()
    assert (signature("\n\n".join(ORIGINAL)) == sig).all()
    assert similarity(signature("short text"), signature("")) < 1.0
