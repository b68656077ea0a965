"""Names in other languages and scripts: the examples of issue 12, and floors on the multilingual corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.names.evaluation import evaluate, load_corpus
from streams.names.gazetteer import resolve
from streams.names.match import VariantMatcher
from streams.names.watchlist import load_watchlist

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus" / "multilingual"
WATCHES = load_watchlist(CORPUS / "watchlist.yaml")
# As a worker builds it: with the places' GeoNames names (مصراته is one of Misrata's).
PLACES = resolve(WATCHES)
MATCHER = VariantMatcher(WATCHES, PLACES)

SPLITS = ("tuning", "heldout", "heldout2")
#: Issue 12: precision and recall of at least 0.95 in every language, over the whole corpus (the tuning
#: set and both held-out sets, each scored once before the rules were tuned to it; see the README).
FLOOR = 0.95


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


@pytest.mark.parametrize(
    "lang", sorted({f.stem for split in SPLITS for f in (CORPUS / split).glob("*.yaml")})
)
def test_every_language_scores_at_least_the_floor(lang: str) -> None:
    articles = [
        a
        for split in SPLITS
        if (CORPUS / split / f"{lang}.yaml").exists()
        for a in load_corpus(CORPUS / split / f"{lang}.yaml")
    ]
    report = evaluate(articles, WATCHES, None, PLACES)
    summary = f"misses {report.misses}, false alarms {report.false_alarms}"
    assert report.precision >= FLOOR, summary
    assert report.recall >= FLOOR, summary


def test_corpus_covers_the_languages() -> None:
    counts = {
        f.stem: sum(
            len(load_corpus(CORPUS / split / f.name))
            for split in SPLITS
            if (CORPUS / split / f.name).exists()
        )
        for f in (CORPUS / "tuning").glob("*.yaml")
    }
    assert all(counts[lang] >= 15 for lang in ("ar", "ru", "fr", "it", "tr")), counts
    assert all(counts[lang] >= 5 for lang in ("de", "es", "uk")), counts


def test_explain_says_how_a_cross_script_match_was_made() -> None:
    from streams.names.match import explain

    by_id = {w.id: w for w in WATCHES}
    text = "تقدمت القوات نحو مدينة سرت وبالجفرة. Die Truppen von Chalifa Haftar."
    why = {m.watch: explain(m, by_id[m.watch], None) for m in MATCHER.match(text)}
    assert "Arabic script, transliterated 'ubaljfra', read without its prefix as 'jfra'" in why["jufra"]
    assert "consonants 'srt'" in why["sirte"]
    assert "'Chalifa' read as another language spells it: 'halifa'" in why["khalifa-haftar"]
