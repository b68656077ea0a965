"""Spelling variants the matcher must catch, and look-alikes it must not, each written once in a watch."""

from __future__ import annotations

import dataclasses
import functools

import pytest

from streams.names.match import VariantMatcher, explain
from streams.names.watchlist import Watch
from streams.records import Entity

WATCHES = [
    Watch("khalifa-haftar", "actor", "Khalifa Haftar"),
    Watch("saif-al-islam-gaddafi", "actor", "Saif al-Islam Gaddafi"),
    Watch("fayez-al-sarraj", "actor", "Fayez al-Sarraj"),
    Watch("fathi-bashagha", "actor", "Fathi Bashagha"),
    Watch("abu-qurain", "location", "Abu Qurain"),
    Watch("jufra", "location", "Jufra"),
    Watch("sirte", "location", "Sirte"),
    Watch("derna", "location", "Derna"),
    Watch("deir-ez-zor", "location", "Deir ez-Zor"),
    Watch("marib", "location", "Marib"),
    Watch("gna", "actor", "Government of National Accord", ("GNA",)),
    Watch("burkan-al-ghadab", "actor", "Operation Burkan al-Ghadab", ("Volcano of Rage",)),
    Watch("brak", "location", "Brak"),
    Watch("benghazi", "location", "Benghazi"),
    Watch(
        "lna", "actor", "Libyan National Army", ("LNA", "Esercito Nazionale Libico", "Libysche Nationalarmee")
    ),
]
# Every watch's world is Libya: a short form (a bare surname, an acronym, a short or respelt place name)
# counts only in an article that shows it, so each text here gets a last paragraph that does.
MATCHER = VariantMatcher([dataclasses.replace(w, context=("Libya",)) for w in WATCHES])
SUPPORT = "\n\nLibya."


def watch_ids(matcher: VariantMatcher, text: str) -> list[str]:
    """The watches a matcher finds in the text, each once, in order."""
    return list(dict.fromkeys(m.watch for m in matcher.match(text)))


def named(text: str, entities: list[Entity] | None = None) -> list[tuple[str, str]]:
    return [(m.watch, m.text) for m in MATCHER.match(text + SUPPORT, entities or [])]


@pytest.mark.parametrize(
    ("text", "watch", "surface"),
    [
        ("Forces of Khalifa Khaftar advanced.", "khalifa-haftar", "Khalifa Khaftar"),
        ("Hifter said on Monday.", "khalifa-haftar", "Hifter"),
        ("Hoftar's men", "khalifa-haftar", "Hoftar"),
        ("The army of Haftaru moved.", "khalifa-haftar", "Haftaru"),
        ("talks with Haftarom ended", "khalifa-haftar", "Haftarom"),
        ("near Dzhufra", "jufra", "Dzhufra"),
        ("at al-Jufrah", "jufra", "al-Jufrah"),
        ("in Djoufra", "jufra", "Djoufra"),
        ("toward Sirtu", "sirte", "Sirtu"),
        ("in Sirta", "sirte", "Sirta"),
        ("the Battle of Derne in 1805", "derna", "Derne"),
        # Words glued by markup that lost a space; a typo in the given name.
        ("troops ofKhalifa Haftar moved", "khalifa-haftar", "Khalifa Haftar"),
        ("shelling nearSirte", "sirte", "Sirte"),
        ("Khalfia Haftar said", "khalifa-haftar", "Khalfia Haftar"),
        # Italian and French write organisations' names in lower case, beside other names.
        ("l'esercito nazionale libico di Khalifa Haftar", "lna", "esercito nazionale libico"),
        # An acronym the article defines by a watched name counts, as written there.
        ("L'Esercito nazionale libico (Enl) avanza. L'Enl dice", "lna", "Enl"),
        ("die Truppen der Libyschen Nationalarmee", "lna", "Libyschen Nationalarmee"),
        ("floods in Darnah", "derna", "Darnah"),
        ("clashes near Abu Grein", "abu-qurain", "Grein"),
        ("Faiz Sarraj said", "fayez-al-sarraj", "Faiz Sarraj"),
        ("Fayez el-Sarraj said", "fayez-al-sarraj", "Fayez el-Sarraj"),
        ("Seif al-Islam Gaddafi spoke", "saif-al-islam-gaddafi", "Seif al-Islam Gaddafi"),
        ("Gaddafi, Seif al-Islam spoke", "saif-al-islam-gaddafi", "Gaddafi, Seif al-Islam"),
        ("Seif al-Islam Qaddafi spoke", "saif-al-islam-gaddafi", "Seif al-Islam Qaddafi"),
        ("Fathi Bashaga said", "fathi-bashagha", "Fathi Bashaga"),
        ("in Deir al-Zour", "deir-ez-zor", "Deir al-Zour"),
        ("in Deir Ezzor", "deir-ez-zor", "Deir Ezzor"),
        ("fighting for Ma'rib", "marib", "Ma'rib"),
        ("the Volcano of Rage operation", "burkan-al-ghadab", "Volcano of Rage"),
        ("the GNA said", "gna", "GNA"),
    ],
)
def test_catches(text: str, watch: str, surface: str) -> None:
    assert (watch, surface) in named(text)


@pytest.mark.parametrize(
    "text",
    [
        "A modern port.",  # Derna inside a word
        "Karim Seifan wrote the report.",  # Saif inside another name
        "the Dernawi family",  # a word built on a name
        "Sort out the budget. Darn it. Site visits.",  # common words near Sirte and Derna
        "We need a Break.",  # one edit from the short name Brak
        "gna gna",  # an acronym is matched as written
        "Muammar Gaddafi ruled for 42 years. Gaddafi was killed in 2011.",  # another Gaddafi
        "Saddam Haftar met the delegation. Haftar said",  # another Haftar
        "the Green Book",  # Grein is Abu Qurain only with its Abu
        "HTS fighters",  # an acronym is no respelling
        "Khalifa. Haftar",  # a full stop splits a name (the surname alone still counts)
        "the city of Dern",  # other languages keep a name's final -a
        "oil from the Sirte Basin",  # a basin, gulf, street or station named after a place
        "the Gulf of Sirte",
        "Torino, piazza Bengasi",
        "Reporters sans frontières (RSF) a dit. Selon RSF",  # the article spells out another's acronym
        "un Gobierno de Acuerdo Nacional exige partidos",  # a description, not the name
        "we need the government of national accord now",  # a long name in lower case, and nothing else
    ],
)
def test_does_not_fire(text: str) -> None:
    found = named(text)
    if text == "Khalifa. Haftar":
        assert found == [("khalifa-haftar", "Haftar")]
    else:
        assert found == []


def test_a_cut_name_counts_whatever_label_spacy_gives_it() -> None:
    text = "Residents of Sirt said"  # a truncated Sirte, and a spelling of it the press uses
    start = text.index("Sirt")
    as_place = [Entity(text="Sirt", label="GPE", start=start, end=start + 4)]
    as_person = [Entity(text="Sirt", label="PERSON", start=start, end=start + 4)]
    assert named(text) == named(text, as_place) == named(text, as_person) == [("sirte", "Sirt")]


def test_every_match_says_how_and_why() -> None:
    text = "The army of Haftaru moved toward Dzhufra, said Khalifa Haftar."
    by_id = {w.id: w for w in WATCHES}
    matches = MATCHER.match(text)
    assert [(m.text, m.how) for m in matches] == [
        ("Haftaru", "surname"),
        ("Dzhufra", "variant"),
        ("Khalifa Haftar", "exact"),
    ]
    for m in matches:
        assert text[m.start : m.end] == m.text
        assert 0 < m.score <= 1
    assert "case ending" in explain(matches[0], by_id["khalifa-haftar"], "PERSON")
    assert "another transliteration" in explain(matches[1], by_id["jufra"], None)


def test_short_forms_need_the_articles_support() -> None:
    """An acronym, a bare surname or a short or respelt place name counts only beside another watch, the
    watch's full name, one of its context words, or another watch's short form in its paragraph."""
    bare = VariantMatcher(WATCHES)
    for alone in ("the GNA said on Monday", "Hifter said on Monday.", "Residents of Sirt said", "in Darnah"):
        assert bare.match(alone) == [], alone
        assert bare.refused and "with no other watch" in bare.refused[0][1], alone
    # Beside another watch, its full name, or a context word, the same forms count.
    assert [m.watch for m in bare.match("the GNA said on Monday in Derna")] == ["gna", "derna"]
    assert [m.text for m in bare.match("Khalifa Haftar spoke. Later Hifter said")] == [
        "Khalifa Haftar",
        "Hifter",
    ]
    assert [m.watch for m in MATCHER.match("the GNA said on Monday in Libya")] == ["gna"]
    # Two short forms of different watches in one paragraph vouch for each other.
    assert [m.watch for m in bare.match("Hifter's men neared Sirt.")] == ["khalifa-haftar", "sirte"]
    assert [m.watch for m in bare.match("Hifter's men advanced.\n\nResidents of Sirt said")] == []


def test_an_organisation_by_its_bare_name() -> None:
    """ "Wagner" of "Wagner Group" counts beside another watch in its sentence and with no given name before
    it (Richard Wagner), or beside the group's full name."""
    watches = [
        Watch("wagner-group", "actor", "Wagner Group", ("ЧВК «Вагнер»",)),
        Watch("yevgeny-prigozhin", "actor", "Yevgeny Prigozhin"),
        Watch("bakhmut", "location", "Bakhmut"),
    ]
    matcher = VariantMatcher(watches)

    ids = functools.partial(watch_ids, matcher)

    assert ids("Wagner kontrolliere die Stadt, behauptete Jewgeni Prigoschin.") == [
        "wagner-group",
        "yevgeny-prigozhin",
    ]
    assert ids("Вагнер отступает из Бахмута.") == ["wagner-group", "bakhmut"]
    assert ids("The Wagner Group recruits. Wagner pays well.") == ["wagner-group"]
    assert ids("Richard Wagner wrote operas. The Wagner festival opened.") == []
    assert ids("Ann Wagner visited Bakhmut.") == ["bakhmut"]
    assert ids("«Летючий голландець» Ріхарда Вагнера у Бахмуті") == ["bakhmut"]


def test_other_bearers_of_a_watched_name() -> None:
    """Brothers share their father's name; a place's name may be a person's; a village abroad is not."""
    watches = [
        Watch("hemedti", "actor", "Mohamed Hamdan Dagalo", ("Hemedti",)),
        Watch("rsf", "actor", "Rapid Support Forces", ("RSF",)),
        Watch("marib", "location", "Marib"),
        Watch("derna", "location", "Derna"),
        Watch("gna", "actor", "Government of National Accord", ("GNA",)),
    ]
    matcher = VariantMatcher(watches)

    ids = functools.partial(watch_ids, matcher)

    brother = (
        "Sanctions hit Abdelrahim Hamdan Dagalo of the Rapid Support Forces. Abdelrahim Dagalo denied it."
    )
    assert ids(brother) == ["rsf"]
    assert ids("Mohamed Hamdan Dagalo leads the RSF. Dagalo said") == ["hemedti", "rsf"]
    assert ids("Dr. Marib opened a clinic in Dearborn. Marib said the Rapid Support Forces") == ["rsf"]
    assert ids("Floods hit Dernau on the Ahr. Dernau rebuilt its bridge.") == []
    # Markup that glued a capitalised word; an article inserted in a translated name.
    assert ids("forces of TheGovernment of National Accord") == ["gna"]
    assert ids("the Government of the National Accord said") == ["gna"]


def test_a_loose_respelling_needs_more_than_spacys_label() -> None:
    """A spelling under 0.75 counts where spaCy labels it a place and the article supports the watch: any
    town abroad is a GPE to spaCy."""
    matcher = VariantMatcher([Watch("tarhuna", "location", "Tarhuna"), Watch("derna", "location", "Derna")])
    text = "Flooding in Dernoioiu was reported."
    start = text.index("Dernoioiu")
    place = [Entity(text="Dernoioiu", label="GPE", start=start, end=start + 9)]
    assert matcher.match(text, place) == []
    assert "spaCy's label" in matcher.refused[0][1]
    assert [m.watch for m in matcher.match(text + " Tarhuna too.", place)] == ["derna", "tarhuna"]
    assert matcher.match(text) == []  # and without the label, not even tried


def test_a_sentences_first_word_is_no_other_bearer() -> None:
    assert ("khalifa-haftar", "Haftar") in named("Talks failed. Meanwhile Haftar said his men held Sirte.")
    assert ("khalifa-haftar", "Haftar") not in named("Saddam Haftar spoke in Sirte. Haftar said")


def test_spacys_label_is_evidence_for_a_name_never_against_it() -> None:
    """The small English model calls one correct match in nine the wrong kind of thing (Al Hudaydah a
    person, Kidal a nationality): a wrong label takes nothing away; a right one lets a loose spelling in."""
    matcher = VariantMatcher(
        [Watch("hodeidah", "location", "Hodeidah"), Watch("houthis", "actor", "Houthis", ("Houthi",))]
    )
    text = "Houthi units retook Al Hudaydah port."
    start = text.index("Al Hudaydah")
    as_person = [Entity(text="Al Hudaydah", label="PERSON", start=start, end=start + 11)]
    assert [m.watch for m in matcher.match(text, as_person)] == ["houthis", "hodeidah"]


def test_a_place_ends_a_persons_name_only_when_nothing_else_is_named_in_it() -> None:
    """ "Omar Benghazy" is a man; a caption's "Fayez al-Sarraj Tripoli", read by spaCy as one person, is two
    names run together."""
    watches = [Watch("fayez-al-sarraj", "actor", "Fayez al-Sarraj"), Watch("tripoli", "location", "Tripoli")]
    matcher = VariantMatcher(watches)

    def person(text: str, name: str) -> list[Entity]:
        return [Entity(text=name, label="PERSON", start=text.index(name), end=text.index(name) + len(name))]

    caption = "Photo: Fayez al-Sarraj Tripoli, January 2020"
    found = matcher.match(caption, person(caption, "Fayez al-Sarraj Tripoli"))
    assert [m.watch for m in found] == ["fayez-al-sarraj", "tripoli"]
    editor = "The editor, Omar Tripoli, spent ten years on it. Fayez al-Sarraj wrote the preface."
    assert [m.watch for m in matcher.match(editor, person(editor, "Omar Tripoli"))] == ["fayez-al-sarraj"]


def test_names_written_as_one_word_and_organisations_by_their_members() -> None:
    matcher = VariantMatcher(
        [Watch("houthis", "actor", "Houthis", ("Ansar Allah",)), Watch("wagner", "actor", "Wagner Group")]
    )
    assert [m.watch for m in matcher.match("The political bureau of Ansarullah said")] == ["houthis"]
    assert [m.watch for m in matcher.match("AnsarAllah media reported strikes")] == ["houthis"]
    assert [m.watch for m in matcher.match("Residents said the Wagner men left at dawn.")] == ["wagner"]
    assert [m.watch for m in matcher.match("Wagner convicts were sent to the front.")] == ["wagner"]
    assert matcher.match("Residents said Wagner left at dawn.") == []


def test_an_english_indefinite_article_makes_a_long_name_a_description() -> None:
    """ "a Government of National Accord divided evenly" is some country's cabinet of that kind; "a
    Libyan National Army unit" is a unit of the LNA."""
    matcher = VariantMatcher(WATCHES)
    yemen = "The deal created a Government of National Accord divided evenly between the parties."
    assert matcher.match(yemen) == []
    assert matcher.match("Talks on a Government of National Accord that would unite them.") == []
    unit = "A Libyan National Army unit entered the town."
    assert [m.watch for m in matcher.match(unit)] == ["lna"]


def test_another_countrys_watch_supports_no_short_form() -> None:
    """With countries given, the Houthis (Yemen) are no support for an acronym GNA (Libya); a watch of
    the same country, or of none, is."""
    watches = [
        Watch("gna", "actor", "Government of National Accord", ("GNA",), country="LY"),
        Watch("houthis", "actor", "Houthis", ("Houthi",), country="YE"),
        Watch("haftar", "actor", "Khalifa Haftar", country="LY"),
        Watch("wagner", "actor", "Wagner Group"),
    ]
    matcher = VariantMatcher(watches)
    text = "Prime Minister Basindawa's GNA was weak.\nHouthi fighters took the capital."
    assert [m.watch for m in matcher.match(text)] == ["houthis"]
    assert "context word (Libya, Tripoli)" in matcher.refused[0][1]
    assert [m.watch for m in matcher.match(text + " Khalifa Haftar watched.")] == ["gna", "houthis", "haftar"]
    assert [m.watch for m in matcher.match(text + " Wagner Group too.")] == ["gna", "houthis", "wagner"]


def test_a_family_name_before_a_word_for_a_place_names_the_place() -> None:
    text = "Rain flooded the al-Sarraj and Janzour districts. Residents of al-Sarraj posted videos. Sirte"
    assert ("fayez-al-sarraj", "al-Sarraj") not in named(text)
    assert ("fayez-al-sarraj", "al-Sarraj") not in named("Traffic was heavy on Sarraj Road near Sirte.")
    assert ("fayez-al-sarraj", "al-Sarraj") in named("Residents said al-Sarraj had resigned. Sirte")
