"""Names in other languages and scripts: the examples of issue 12, and floors on the multilingual corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.evaluation import evaluate, load_corpus
from streams.stages.gazetteer import resolve
from streams.stages.match import VariantMatcher
from streams.stages.watchlist import load_watchlist

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "multilingual"
WATCHES = load_watchlist(CORPUS / "watchlist.yaml")
# As a worker builds it: with the places' GeoNames names (مصراته is one of Misrata's).
MATCHER = VariantMatcher(WATCHES, resolve(WATCHES))

#: What the tuning set scores today (matcher alone), a little rounded down: a change that loses ground
#: fails here. The target is 0.95 everywhere (issue 12); the languages below it are still open work.
FLOORS = {
    "ar": (0.95, 0.95),
    "de": (0.9, 0.85),
    "es": (0.95, 0.95),
    "fr": (0.9, 0.95),
    "it": (0.95, 0.9),
    "ru": (0.95, 0.95),
    "tr": (0.9, 0.9),
    "uk": (0.95, 0.9),
}


def found(text: str) -> list[tuple[str, str]]:
    return [(m.watch, m.text) for m in MATCHER.match(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("وصل خليفة حفتر إلى القاهرة.", [("khalifa-haftar", "خليفة حفتر")]),
        ("قالت قوات حفتر إنها تقدمت نحو مدينة سرت.", [("khalifa-haftar", "حفتر"), ("sirte", "سرت")]),
        # Proclitics, a tatweel and short-vowel marks, ta marbuta written as ha.
        (
            "تعزيزات بسرت وبالجفرة وقرب حفـــتر ومصراته",
            [("sirte", "بسرت"), ("jufra", "وبالجفرة"), ("khalifa-haftar", "حفـــتر"), ("misrata", "ومصراته")],
        ),
        ("زار خَليفة حَفتر مصراته", [("khalifa-haftar", "خَليفة حَفتر"), ("misrata", "مصراته")]),
        ("Хафтар заявил, что его войска вошли в Сирт.", [("khalifa-haftar", "Хафтар"), ("sirte", "Сирт")]),
        ("Отряды ПНС подошли к Мисурате", [("gna", "ПНС"), ("misrata", "Мисурате")]),
        ("Οι δυνάμεις του Χαφτάρ πλησιάζουν τη Σύρτη.", [("khalifa-haftar", "Χαφτάρ"), ("sirte", "Σύρτη")]),
        (
            "Hafter'in güçleri Sirte'ye ve Cufra'ya çekildi.",
            [("khalifa-haftar", "Hafter'in"), ("sirte", "Sirte'ye"), ("jufra", "Cufra'ya")],
        ),
        (
            "Die Truppen von Chalifa Haftar in Dschufra",
            [("khalifa-haftar", "Chalifa Haftar"), ("jufra", "Dschufra")],
        ),
        (
            "Las fuerzas de Jalifa Haftar llegaron a Bengasi",
            [("khalifa-haftar", "Jalifa Haftar"), ("benghazi", "Bengasi")],
        ),
        # Hebrew: consonants and vowel letters as in Arabic, its own proclitics (and, in).
        (
            "ח'ליפה חפתר בסירת ובבנגזי",
            [("khalifa-haftar", "ח'ליפה חפתר"), ("sirte", "בסירת"), ("benghazi", "ובבנגזי")],
        ),
        # Persian: its own letters and prepositions (در, "in"), a lone و between places.
        (
            "خلیفه حفتر در سرت و بنغازی",
            [("khalifa-haftar", "خلیفه حفتر"), ("sirte", "سرت"), ("benghazi", "بنغازی")],
        ),
        # Greek beta and gamma-gamma in foreign names; Devanagari vowel signs and nukta (ज़ is z).
        ("Ο στρατάρχης Χαφτάρ στη Βεγγάζη", [("khalifa-haftar", "Χαφτάρ"), ("benghazi", "Βεγγάζη")]),
        ("खलीफा हफ़्तार बेनगाज़ी में", [("khalifa-haftar", "खलीफा हफ़्तार"), ("benghazi", "बेनगाज़ी")]),
        # Serbian case endings; a title in Cyrillic is no other Haftar's given name.
        (
            "Марешал Хафтар у Сирту и Бенгазију",
            [("khalifa-haftar", "Хафтар"), ("sirte", "Сирту"), ("benghazi", "Бенгазију")],
        ),
        # Quotation marks around an organisation's name; Italian writes its long name in lower case.
        ("Наемники ЧВК «Вагнер» у Сирта", [("wagner-group", "ЧВК «Вагнер"), ("sirte", "Сирта")]),
        (
            "l'esercito nazionale libico di Haftar a Sirte",
            [("lna", "esercito nazionale libico"), ("khalifa-haftar", "Haftar"), ("sirte", "Sirte")],
        ),
        # Turkish glues compound names (Seyfülislam, Deyrizor) and sets suffixes off with an apostrophe.
        ("Seyfülislam Kaddafi Sebha'da", [("saif-al-islam-gaddafi", "Seyfülislam Kaddafi")]),
        (
            "HTŞ, Deyrizor'dan İdlib'e",
            [("hts", "HTŞ"), ("deir-ez-zor", "Deyrizor'dan"), ("idlib", "İdlib'e")],
        ),
    ],
)
def test_one_watch_written_once_found_in_any_script(text: str, expected: list[tuple[str, str]]) -> None:
    assert sorted(found(text)) == sorted(expected)


@pytest.mark.parametrize(
    "text",
    [
        "سِرتُ ساعات في البادية ثم سرت بيننا حكايات",  # "I walked", "tales spread": no Sirte
        "عبرنا صحراء الجفر في جنوب الأردن",  # al-Jafr in Jordan is not al-Jufra
        "غرق قارب في خليج سرت",  # a gulf named after the town
        "صدام حفتر يزور درنة",  # another Haftar: Khalifa is named nowhere
        "Des pêcheurs secourus dans le golfe de Syrte",
        "الخطوة التالية",  # an Arabic word near an Arabic alias (الحوثي) is not it
        "סירת דייגים טבעה",  # a fishing boat (סירת): four letters and nothing else of Libya
        "Siirt'te kooperatif kuruldu",  # a Turkish town one letter from Sirt
        "лимонад «Тархун» по старому рецепту",  # tarragon soda: Tarhuna keeps its final -a
        "«Летючий голландець» Ріхарда Вагнера у Львові",  # the composer, not the group
        "Reporters sans frontières (RSF) demande la libération. Selon RSF",  # another RSF
        "Torino, il mercato di piazza Bengasi riapre",  # a square named after the city
        "la production du bassin de Syrte",  # an oil basin
        "un Gobierno de Acuerdo Nacional exige partidos con disciplina",  # a description
        "Kadhafi a pris le pouvoir en 1969.",  # a bare Gaddafi is the father of Saif al-Islam
    ],
)
def test_look_alikes_raise_nothing(text: str) -> None:
    watched = {
        "sirte",
        "jufra",
        "khalifa-haftar",
        "houthis",
        "tarhuna",
        "wagner-group",
        "rsf",
        "benghazi",
        "gna",
    }
    assert [w for w, _ in found(text) if w in watched | {"saif-al-islam-gaddafi"}] == []


def test_a_place_met_by_transliteration_alone_needs_a_sign_it_is_a_place() -> None:
    bare = VariantMatcher(WATCHES)  # no GeoNames forms: مصراته is known only by its consonants
    assert [m.watch for m in bare.match("زار الوفد مصراته")] == []  # "visited", or another word
    assert [m.watch for m in bare.match("وصل الوفد إلى مصراته")] == ["misrata"]  # "to Misrata"
    assert [m.watch for m in bare.match("عاد الوفد من مصراته وسرت")] == ["misrata", "sirte"]


@pytest.mark.parametrize("lang", sorted(FLOORS))
def test_tuning_set_per_language(lang: str) -> None:
    articles = load_corpus(CORPUS / "tuning" / f"{lang}.yaml")
    report = evaluate(articles, WATCHES, None)
    precision, recall = FLOORS[lang]
    summary = f"misses {report.misses}, false alarms {report.false_alarms}"
    assert report.precision >= precision, summary
    assert report.recall >= recall, summary


def test_corpus_covers_the_languages() -> None:
    counts = {
        f.stem: sum(len(load_corpus(CORPUS / split / f.name)) for split in ("tuning", "heldout"))
        for f in (CORPUS / "tuning").glob("*.yaml")
    }
    assert all(counts[lang] >= 15 for lang in ("ar", "ru", "fr", "it", "tr")), counts
    assert all(counts[lang] >= 5 for lang in ("de", "es", "uk")), counts


def test_explain_says_how_a_cross_script_match_was_made() -> None:
    from streams.stages.match import explain

    by_id = {w.id: w for w in WATCHES}
    text = "تقدمت القوات نحو مدينة سرت وبالجفرة. Die Truppen von Chalifa Haftar."
    why = {m.watch: explain(m, by_id[m.watch], None) for m in MATCHER.match(text)}
    assert "Arabic script, transliterated 'ubaljfra', read without its prefix as 'jfra'" in why["jufra"]
    assert "consonants 'srt'" in why["sirte"]
    assert "'Chalifa' read as another language spells it: 'halifa'" in why["khalifa-haftar"]
