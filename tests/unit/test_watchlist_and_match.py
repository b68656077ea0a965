"""The watchlist file checks and the first matcher: whole words, aliases, acronyms, surnames."""

from __future__ import annotations

import pytest

from streams.names.match import VariantMatcher
from streams.names.watchlist import Watch, WatchlistError, parse_watchlist

WATCHES = [
    Watch("khalifa-haftar", "actor", "Khalifa Haftar", ("Field Marshal Haftar",)),
    Watch("fayez-al-sarraj", "actor", "Fayez al-Sarraj"),
    Watch("gna", "actor", "Government of National Accord", ("GNA",)),
    Watch("wagner-group", "actor", "Wagner Group"),
    Watch("derna", "location", "Derna"),
    Watch("jufra", "location", "Jufra", ("al-Jufra",)),
]


def found(text: str) -> list[tuple[str, str, str]]:
    return [(m.watch, m.text, m.how) for m in VariantMatcher(WATCHES).match(text)]


def test_offsets_index_the_text() -> None:
    text = "On Friday, forces of KHALIFA  HAFTAR moved toward Derna."
    matches = VariantMatcher(WATCHES).match(text)
    assert [(m.watch, text[m.start : m.end], m.how) for m in matches] == [
        ("khalifa-haftar", "KHALIFA  HAFTAR", "exact"),
        ("derna", "Derna", "exact"),
    ]


def test_whole_words_only() -> None:
    assert found("A modern port, not Dernawi or underneath.") == []
    assert found("Derna's port") == [("derna", "Derna", "exact")]


def test_alias_longest_wins() -> None:
    assert found("Field Marshal Haftar spoke.") == [("khalifa-haftar", "Field Marshal Haftar", "alias")]
    assert found("the al-Jufra base") == [("jufra", "al-Jufra", "exact")]


def test_acronym_is_case_sensitive() -> None:
    assert found("The GNA said in Derna") == [("gna", "GNA", "alias"), ("derna", "Derna", "exact")]
    assert found("gna gna in Derna") == [("derna", "Derna", "exact")]


def test_surname_alone_for_people_not_organisations() -> None:
    assert found("Sarraj met Haftar.") == [
        ("fayez-al-sarraj", "Sarraj", "surname"),
        ("khalifa-haftar", "Haftar", "surname"),
    ]
    # "Group" is no surname, and a lower-case word is not a name.
    assert found("The group met; sarraj is a word here.") == []
    assert found("Wagner Group fighters") == [("wagner-group", "Wagner Group", "exact")]


def test_names_split_by_punctuation_do_not_match() -> None:
    assert found("Khalifa. Haftar in Derna") == [
        ("khalifa-haftar", "Haftar", "surname"),
        ("derna", "Derna", "exact"),
    ]


WATCHLIST_OK = """\
watches:
  - id: khalifa-haftar
    kind: actor
    name: Khalifa Haftar
    aliases: [Field Marshal Haftar]
  - id: sirte
    kind: location
    name: Sirte
"""


def test_watchlist_parses() -> None:
    assert parse_watchlist(WATCHLIST_OK) == [
        Watch("khalifa-haftar", "actor", "Khalifa Haftar", ("Field Marshal Haftar",)),
        Watch("sirte", "location", "Sirte"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            WATCHLIST_OK + "  - id: sirte\n    kind: location\n    name: Surt\n",
            "line 9: duplicate id 'sirte' (first used on line 6)",
        ),
        (WATCHLIST_OK + "  - id: tobruk\n    kind: city\n    name: Tobruk\n", "line 9: unknown kind 'city'"),
        (WATCHLIST_OK + "  - id: tobruk\n    kind: location\n    name: '  '\n", "line 9: empty name"),
        (WATCHLIST_OK + "  - id: Tobruk!\n    kind: location\n    name: Tobruk\n", "line 9: id 'Tobruk!'"),
        ("watch:\n  - id: x\n", "line 1: unknown key 'watch'"),
    ],
)
def test_watchlist_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(WatchlistError) as info:
        parse_watchlist(text, "w.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("w.yaml")


def test_context_words_per_watch_and_for_the_whole_list() -> None:
    text = "context: [Libya, Tripoli]\nwatches:\n  - {id: gna, kind: actor, name: GNA, context: [Sarraj, Libya]}\n"
    (gna,) = parse_watchlist(text)
    assert gna.context == ("Sarraj", "Libya", "Tripoli")  # its own first, each word once
    with pytest.raises(WatchlistError, match="line 1: context must be a list"):
        parse_watchlist("context: Libya\nwatches:\n  - {id: gna, kind: actor, name: GNA}\n")
    with pytest.raises(WatchlistError, match="line 2: context of 'gna' must be a list"):
        parse_watchlist("watches:\n  - {id: gna, kind: actor, name: GNA, context: Libya}\n")
