"""The watchlist matcher: names, aliases, surnames and transliteration variants in one pass over the text."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, Protocol

from anyascii import anyascii

from streams.names.watchlist import Watch
from streams.records import Entity, WatchMatch

if TYPE_CHECKING:
    from streams.names.gazetteer import Place


#: How a match was made (WatchMatch.how): the name as written, an alias, a GeoNames name, an acronym the
#: article spells out, a spelling variant, a bare surname, an organisation's name without its kind.
How = Literal["exact", "alias", "gazetteer", "defined", "variant", "surname", "head"]


class Matcher(Protocol):
    """What the extractor, the CLI, replay and the console need of any matcher."""

    #: The short forms the last `match` did not count, each with why (what --explain shows).
    refused: list[tuple[WatchMatch, str]]

    def match(self, text: str, entities: Sequence[Entity] = ()) -> list[WatchMatch]: ...

    def candidate_offsets(self, text: str) -> list[int]: ...


# A sentence ends at . ! ? before a capital (Latin, Greek or Cyrillic), a digit or a letter of a script
# without capitals (Arabic, Hebrew), perhaps after an opening quote; a blank line ends a paragraph.
_SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[\"'\u201c\u00ab\u201e(]?[A-Z0-9\u00c0-\u00de\u0386-\u03ab\u0400-\u042f\u0590-\u06ff])"
    r"|\n\s*\n"
)
_PARAGRAPH_END = re.compile(r"\n\s*\n")
_LINE_END = re.compile(r"\n")


def text_units(text: str, unit: str) -> list[tuple[int, int]]:
    """Spans of the sentences (unit "sentence") or paragraphs ("paragraph") of a text, in order."""
    spans, start = [], 0
    ends = _SENTENCE_END
    if unit == "paragraph":
        # Blank lines part a text's paragraphs; a cleaned page has none and writes one paragraph a line.
        ends = _PARAGRAPH_END if _PARAGRAPH_END.search(text) else _LINE_END
    for sep in ends.finditer(text):
        spans.append((start, sep.start()))
        start = sep.end()
    spans.append((start, len(text)))
    return spans


def sentences_around(text: str, offsets: Sequence[int]) -> list[tuple[int, int]]:
    """The sentences holding any of the offsets, each once and in text order."""
    if not offsets:
        return []
    wanted = sorted(set(offsets))
    out: list[tuple[int, int]] = []
    k = 0
    for start, end in text_units(text, "sentence"):
        while k < len(wanted) and wanted[k] < start:
            k += 1
        if k < len(wanted) and wanted[k] < max(end, start + 1):
            out.append((start, end))
        if k >= len(wanted):
            break
    return out


# Marks written on letters (accents, Arabic short vowels, Hebrew points, Cyrillic stress): inside a word.
_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
    "\u0900-\u0903\u093a-\u094f\u0951-\u0957\u0962\u0963\u0981-\u0983\u09bc-\u09d7"
)
_LETTERS = rf"[^\W_](?:[^\W_]|[{_MARKS}])*"
# A word may hold an apostrophe or ayn inside it (Ma'rib, Jama'at) but not a possessive 's (Haftar's).
_TOKEN = re.compile(rf"{_LETTERS}(?:['\u2019\u02bf\u02be`](?!s\b){_LETTERS})*")
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bf\u02be`")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Between two words of one name only spaces, hyphens and apostrophes may stand ("al-Jufra"), and the
# quotation marks that set an organisation's name off its kind (ЧВК «Вагнер», groupe « Wagner »).
_JOINER = re.compile(r"[\s\-\u2010\u2011\u2012\u2013'\u2019\u02bf\u02be`\u00ab\u00bb\u201c\u201d\u201e\"]+")
# Name parts in another order may also be split by a comma ("Gaddafi, Seif al-Islam"), never by a full stop.
_LOOSE_JOINER = re.compile(r"[\s\-\u2010\u2011\u2012\u2013'\u2019\u02bf\u02be`,]+")
# Words that make an actor's name an organisation's, whose last word is no surname ("Wagner Group").
_ORG_WORDS = _words(
    """group army force forces front council government party movement brigade brigades battalion
    ministry company corporation agency union committee organisation organization authority militia
    alliance coalition national nations guard command bank office court state islamic support rapid
    ansar operation operations network police service services
    jamaat harakat hayat jabhat liwa katiba katibat jaysh jaish tanzim hizb"""
)
# The kind of an organisation in its name in other languages: the rest of a two-word name ("groupe
# Wagner", "ЧВК Вагнер") is what reporting calls it by.
_ORG_KINDS = _words(
    """group groupe gruppo grupo grubu gruppe pmc чвк пвк группа группы группу група групи компания
    company"""
)
# Particles that belong to names but say nothing on their own: skipped when names are compared.
PARTICLES = frozenset(
    {
        "al",
        "el",
        "ul",
        "wal",
        "ez",
        "es",
        "ed",
        "ad",
        "az",
        "ash",
        "bin",
        "ben",
        "ibn",
        "abu",
        "abd",
        "bint",
        "de",
        "van",
        "von",
        "der",
    }
)
# Titles that stand before a name without being a given name ("Marshal Haftar", "President Goita").
_TITLES = _words(
    """mr mrs ms dr general gen marshal field colonel col major commander president prime minister
    premier sheikh shaikh emir king prince leader chief head spokesman spokeswoman lieutenant captain
    sergeant interior foreign defence defense warlord militia rebel strongman former late envoy
    ambassador mister his her the
    المشير المشیر اللواء العقيد العميد الجنرال الرئيس القائد المتقاعد السيد الشيخ رئيس وزير قائد
    المستشار الفريق الدكتور"""
)
# The same titles in other languages, compared as transliterated and without case endings (маршала,
# Mareşal, Марешал, στρατάρχης).
_OTHER_TITLES = _words(
    """marechal maresciallo mariscal mareşal marešal marschall feldmarschall feldmaresciallo generale
    präsident presidente başkan başkanı komutan komutanı lider líder chef capo jefe comandante
    kommandeur colonnello coronel oberst ministre ministro premier monsieur signor señor herr scheich
    cheikh şeyh roi rey könig kral principe príncipe prinz prens
    маршал фельдмаршал марешал генерал президент премьер министр лидер командующий командир
    командувач глава голова полковник шейх эмир король принц председник
    στρατάρχης στρατηγός πρόεδρος"""
)


@lru_cache(maxsize=1)
def _title_readings() -> frozenset[str]:
    return frozenset(translit(w) for w in _TITLES | _OTHER_TITLES)


def _is_title(tok: _Tok) -> bool:
    """Whether a word before a surname is a title (Marshal, маршала, Mareşal), not a given name."""
    return tok[3] in _TITLES or any(s in _title_readings() for s in stems(tok[4]))


# Words a sentence starts with that are no one's given name ("Meanwhile Haftar said").
_SENTENCE_WORDS = _words(
    """meanwhile later then now yesterday today tomorrow however but and so also still instead earlier
    separately previously initially eventually finally nevertheless moreover since when while after
    before as if though although because once there here where why how what who this that these those
    both neither either each every only even just thus hence indeed"""
)
# Ordered rewrites that fold the usual transliteration differences of Arabic and Russian names.
_REWRITES: tuple[tuple[str, str], ...] = (
    ("dzh", "j"),
    ("tch", "ch"),
    ("dj", "j"),
    ("zh", "j"),
    ("kh", "h"),
    ("gh", "g"),
    ("dh", "d"),
    ("th", "t"),
    ("ph", "f"),
    ("ck", "k"),
    ("q", "k"),
    ("g", "k"),
    ("ce", "se"),
    ("ci", "si"),
    ("cy", "si"),
    ("c", "k"),
    ("z", "d"),
    ("x", "ks"),
    ("ou", "u"),
    ("oo", "u"),
    ("ee", "i"),
    ("ie", "i"),
    ("y", "i"),
    ("w", "u"),
    ("e", "i"),
)
_VOWELS = frozenset("aeiou")
# Case endings machine translation leaves on names (Haftarom, Haftaru, Sirtu), longest first.
_ENDINGS = ("ovoi", "ogo", "omu", "om", "em", "oi", "ei", "im", "ov", "ev", "ju", "ji", "u", "a", "i", "o")
# Names this short or shorter match only as written: one edit from "Brak" is "Brad", "Bran", "Break".
SHORT_NAME = 4
# How alike two tokens must be (1 - edit distance / length, on folded forms) to count as a variant.
VARIANT_SURE = 0.75
VARIANT_WITH_LABEL = 0.5

ACTOR_LABELS = frozenset({"PERSON", "ORG", "NORP"})
LOCATION_LABELS = frozenset({"GPE", "LOC", "FAC", "ORG"})


@lru_cache(maxsize=200_000)
def fold(token: str) -> str:
    """Case- and accent-insensitive form of one token."""
    decomposed = unicodedata.normalize("NFKD", token.casefold().translate(_APOSTROPHES))
    if "\u093c" in decomposed:
        # A Devanagari nukta makes a letter of a borrowed sound (ज़ z, फ़ f): it is no accent to drop.
        decomposed = _NUKTA.sub(lambda m: _NUKTA_SOUNDS[m.group(1)], decomposed)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_NUKTA_SOUNDS = {"\u091c": "z", "\u092b": "f", "\u0916": "kh", "\u0917": "gh", "\u0915": "q", "\u0921": "r"}
_NUKTA = re.compile(f"([{''.join(_NUKTA_SOUNDS)}])\u093c")


_ARABIC_LETTERS = "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff"
_HEBREW_LETTERS = "\u05d0-\u05ea"
_ARABIC = re.compile(f"[{_ARABIC_LETTERS}]")
_HEBREW = re.compile(f"[{_HEBREW_LETTERS}]")
# Scripts that write consonants and long vowels only (Arabic, Persian, Hebrew): names meet them on their
# consonant skeleton.
_ABJAD = re.compile(f"[{_ARABIC_LETTERS}{_HEBREW_LETTERS}]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_GREEK = re.compile(r"[\u0370-\u03ff]")
# Arabic letters whose Latin spelling anyascii would lose or misplace: alef is the "a" of Idlib, ta marbuta
# and alef maqsura end a name in "a" (Misrata, Mustafa); ayn, which Latin spelling leaves out or writes as
# any vowel (Aguila, Issa), and tatweel are nothing.
_ARABIC_PREP = str.maketrans({"\u0627": "a", "\u0639": None, "\u0629": "a", "\u0649": "a", "\u0640": None})
# Turkish and Romanian s with cedilla or comma is sh (Başağa).
_SH = str.maketrans({"\u015f": "sh", "\u015e": "Sh", "\u0219": "sh", "\u0218": "Sh"})
# Greek chi is the "kh" (h) of Arabic and Russian names (Χαφτάρ), not the "ch" of "church"; Greek writes a
# foreign b, d, g and ng with two letters (Μπενγκάζι) and ng as gamma gamma (Βεγγάζη).
_GREEK_PREP = str.maketrans({"\u03c7": "h"})
_GREEK_PAIRS = (
    (re.compile("^\u03bc\u03c0"), "b"),
    (re.compile("\u03bc\u03c0"), "mb"),
    (re.compile("^\u03bd\u03c4"), "d"),
    (re.compile("\u03bd\u03c4"), "nd"),
    (re.compile("\u03c4\u03b6"), "j"),  # Σαράτζ, Sarraj
    (re.compile("\u03b3\u03b3"), "ng"),
    (re.compile("\u03b3\u03ba"), "g"),  # Αγκίλα, Aguila
    (re.compile("\u03b3(?=[\u03b5\u03b9\u03b7\u03c5])"), "y"),  # Φαγέζ, Fayez (accents are folded off)
)
# Hebrew letters as foreign names use them: alef and the vowel letters vav and yod are a, u, i (written
# where Latin has a long vowel, as in Arabic), a final he is -a, ayin is nothing, bet b, pe f.
_HEBREW_PREP = str.maketrans(
    {"\u05d0": "a", "\u05d5": "u", "\u05d9": "i", "\u05e2": None, "\u05d1": "b", "\u05e4": "f", "\u05e3": "f"}
)
# Proclitics an Arabic word may carry, outermost first: "and"/"so", then "with/in", "for/to", "like",
# then the article (ال; after ل it loses its alef: لل).
_CONJUNCTIONS = ("", "\u0648", "\u0641")
_PREPOSITIONS = ("", "\u0628", "\u0644", "\u0643")
_ARTICLES = ("", "\u0627\u0644")
# Hebrew's proclitics, in any order: and, the, in, to, from, that, like.
_HEBREW_PROCLITICS = frozenset("\u05d5\u05d4\u05d1\u05dc\u05de\u05e9\u05db")


def romanise(folded: str) -> str:
    """Latin letters for a folded token of another script: anyascii's transliteration, with the Arabic
    and Greek letters it renders unlike news Latin spelling mapped first."""
    if folded.isascii():
        return folded
    if _ARABIC.search(folded):
        folded = folded.translate(_ARABIC_PREP)
        if len(folded) > 3 and folded.endswith("\u0647"):
            folded = folded[:-1] + "a"  # final ha written for ta marbuta (مصراته)
    elif _HEBREW.search(folded):
        if len(folded) > 3 and folded.endswith("\u05d4"):
            folded = folded[:-1] + "a"  # חליפה, Khalifa
        # Ayin starting a word is a vowel to Latin spelling (עקילה, Aguila); inside one it is a consonant
        # Latin names do not have (מערב, "west", is not Marib).
        folded = folded[:1] + folded[1:].replace("\u05e2", "q")
        folded = folded.translate(_HEBREW_PREP)
    elif _GREEK.search(folded):
        for pattern, latin in _GREEK_PAIRS:
            folded = pattern.sub(latin, folded)
        folded = folded.translate(_GREEK_PREP)
    return fold(anyascii(folded))


# How the languages written in Latin letters spell the sounds of Arabic and Russian names, each rule one
# other reading of a capitalised word: German sch and dsch (Baschagha, Prigoschin, Dschufra), ch as kh
# (Chalifa, Bachmut) or as French sh (Bachagha, Facher), Spanish j as kh (Jalifa, Bajmut), Turkish c as j
# (Cufra, Serrac, Colani) and ç as ch, a single s between vowels for z (Bengasi), and the endings that
# Turkish puts after an apostrophe (Hafter'in, Sirte'ye) and German genitives (Haftars).
_GERMAN = (("j", "y"), ("w", "v"), ("dsch", "j"), ("tsch", "ch"))
_LATIN_READINGS: tuple[tuple[tuple[re.Pattern[str], str], ...], ...] = tuple(
    tuple((re.compile(pattern), repl) for pattern, repl in steps)
    for steps in (
        (("dsch", "j"),),
        (("sch", "sh"),),
        (("sch", "zh"),),
        (("ch", "h"),),
        (("ch", "sh"),),
        (("j", "kh"),),
        (("j", "zh"),),  # French j for Russian zh (Prigojine)
        (("c(?=[aiou]|$)", "j"),),
        (("\u00e7", "ch"),),
        (("(?<=[aeiou])s(?=[aeiou])", "z"),),
        # German spells a whole name by its own habits at once: Jewgeni Prigoschin, Fajis al-Sarradsch.
        (*_GERMAN, ("sch", "zh")),
        (*_GERMAN, ("sch", "sh"), ("(?<=[aeiouy])s(?=[aeiouy]|$)", "z")),
    )
)
_LATIN_ENDINGS = (re.compile("['\u2019][^\\W\\d_]{1,4}$"), re.compile(r"(?<=[^\W\d_]{6})s$"))


@lru_cache(maxsize=200_000)
def script_variants(token: str) -> tuple[str, ...]:
    """Other transliterated readings of a token: an Arabic word without its proclitics (وبسرت: بسرت,
    سرت), a Ukrainian Г read as h (Гафтар), a capitalised Latin word as another language spells it."""
    out: list[str] = []
    if _GREEK.search(token) and "\u03b2" in token.casefold():
        # Greek beta is v in Greek, but often a foreign name's b (Βεγγάζη, Benghazi).
        out.append(translit(token.casefold().replace("\u03b2", "\u03bc\u03c0")))
    if _HEBREW.search(token):
        folded = fold(token)
        # Hebrew proclitics: and, the, in, to, from, that, like, up to three of them (ובבנגזי, בסירת).
        bases = [folded] + [
            folded[k:]
            for k in (1, 2, 3)
            if len(folded) - k >= 3 and all(c in _HEBREW_PROCLITICS for c in folded[:k])
        ]
        for base in bases:
            if base is not folded:
                out.append(translit(base))
            if base.endswith("\u05d9\u05dd") and len(base) >= 5:
                # The plural -im after a name (החות'ים, the Houthis): the name, and its -i form.
                out += [translit(base[:-2]), translit(base[:-1])]
        return tuple(dict.fromkeys(v for v in out if v))
    if not _ARABIC.search(token) and not _CYRILLIC.search(token):
        if not token[:1].isupper():
            return tuple(out)
        lower = token.casefold()
        bases = [lower, *{e.sub("", lower) for e in _LATIN_ENDINGS} - {lower}]
        for base in bases:
            if base != lower:
                out.append(translit(base))
            for steps in _LATIN_READINGS:
                reading = base
                for pattern, repl in steps:
                    reading = pattern.sub(repl, reading)
                if reading != base:
                    out.append(translit(reading))
        own = translit(token)
        return tuple(dict.fromkeys(v for v in out if v and v != own))
    folded = fold(token)
    if _ARABIC.search(folded):
        words = [folded]
        if folded.endswith("\u0649"):
            # Egyptian spelling writes a final ya without its dots (بنغازى): the -i of Benghazi.
            words.append(folded[:-1] + "\u064a")
            out.append(translit(words[-1]))
        for word in words:
            for conj in _CONJUNCTIONS:
                for prep in _PREPOSITIONS:
                    for art in _ARTICLES:
                        prefix = conj + prep + (art[1:] if prep == "\u0644" and art else art)
                        if prefix and word.startswith(prefix) and len(word) - len(prefix) >= 3:
                            out.append(translit(word[len(prefix) :]))
                            if prefix.endswith("\u0644\u0644"):  # لل is ل with the article: الجيش of للجيش
                                out.append(translit("\u0627\u0644" + word[len(prefix) :]))
    elif _CYRILLIC.search(folded) and "\u0433" in folded:
        out.append(translit(folded.replace("\u0433", "\u0445")))
    return tuple(dict.fromkeys(v for v in out if v))


# Words an Arabic place name follows: prepositions of place, "city", "area", "outskirts", "line", "base",
# the compass points (folded, hamza seats gone). A short name standing after none of them, with no
# preposition of its own and no other place beside it, may be a common word (سرت: "I walked").
_ARABIC_PLACE_CUES = _words(
    """في الى من نحو حول قرب عند داخل وسط بين مدينة منطقة محيط محور تخوم اطراف ضواحي خط قاعدة بلدية
    مطار ميناء جنوب شمال شرق غرب جنوبي شمالي شرقي غربي سكان اهالي
    در به از شهر"""
)
# Words that make a place name another thing's: a gulf, an oil basin, a street, square or station named
# after a town is not the town (Gulf of Sirte, bassin de Syrte, Große Syrte, piazza Bengasi, Sirte Körfezi,
# Sirte-Becken, Benghazi Street).
_ARABIC_NOT_THE_PLACE = _words("خليج الخليج حوض شارع ميدان محطة")
_LIST_GAP = re.compile(r"[ \t\u00a0,\u060c\-\u2013]*(?:\u0648[ \t\u00a0]+)?")
_NOT_THE_PLACE_BEFORE = re.compile(
    r"\b(?:gulf|golfe|golfo|golf|zaliv|залив[аеу]?|basin|bassin|bacino|cuenca|бассейн[аеу]?|great|grand|grande"
    r"|gran|gro(?:\u00df|ss)en?|больш(?:ой|ого|ом)|piazza|piazzale|viale|corso|rue|boulevard|calle|avenida"
    r"|plaza|fermata|stazione|улиц[аеуы]|вулиц[яіюе]|проспект[аеу]?|площад[ьи])"
    r"\s+(?:(?:of|de|di|del|della|du|von|der)\s+)?(?:(?:the|la)\s+)?$"
    # Italian "via" is a street after a preposition or capitalised (in via Bengasi, Via Bengasi); English
    # "via" is "through" (flights via Benghazi).
    r"|(?:\b(?:in|di|della|alla|nella|sulla|dalla|lungo|da|a)\s+via|(?-i:\bVia))\s+$",
    re.IGNORECASE,
)
# English words after the name count capitalised only ("Benghazi Street", not "Benghazi street protests").
_NOT_THE_PLACE_AFTER = re.compile(
    r"^[-\s]*(?:(?i:k\u00f6rfezi|korfezi|golf|zaliv|becken|havzas\u0131|havzasi|caddesi|soka\u011f\u0131|sokak"
    r"|meydan\u0131|stra\u00dfe|strasse|platz)|Basin|Street|Square|Avenue|Oil)\b"
)

# A family name before a word for a place or a building is a place named after the family or a man, not
# the man (the al-Sarraj and Janzour districts, Gaddafi Stadium, the Haftar airport road).
_PLACE_WORD_AFTER = re.compile(
    r"(?:\s+and\s+[A-Z][\w'\u2019-]+)?[-\s]+(?i:districts?|neighbou?rhoods?|quarters?|suburbs?|streets?"
    r"|road|square|airport|air\s?base|stadium|hospital|bridge|roundabout|junction|market|mosque)\b"
)

# Common Arabic given names (folded: no hamza seats), the ones that stand before a watched family name
# in reporting on other members of the family (صدام حفتر, معمر القذافي, هانيبال القذافي).
_ARABIC_GIVEN_NAMES = _words(
    """محمد احمد علي عمر خالد صدام سيف معمر بلقاسم خليفة حسن حسين عبد عبدالله عبدالرحمن يوسف ابراهيم
    اسماعيل مصطفى محمود سعد سعيد سالم صالح فتحي فايز عقيلة هانيبال الساعدي المعتصم هنيبعل عيسى موسى
    طارق فرج ناصر جمال كمال عادل عماد وليد رمضان مفتاح ميلاد منصور عثمان حمزة بشير نوري"""
)


def _arabic_cue(word: str, cues: frozenset[str]) -> bool:
    """Whether a folded Arabic word is one of the cues, bare or with proclitics (لمدينة, وفي)."""
    return any(word[k:] in cues for k in range(min(3, len(word) - 1)))


def may_be_name(word: str) -> bool:
    """Capitalised, a number, or in a script without capitals (Arabic, Hebrew): a word a name may be."""
    return not word[0].islower()


@lru_cache(maxsize=200_000)
def translit(token: str) -> str:
    """A folded token with transliteration differences (kh/h, q/g/k, dzh/j, ou/u, doubled letters) folded;
    a token of another script is first transliterated into Latin letters."""
    t = romanise(fold(token.translate(_SH)))
    for old, new in _REWRITES:
        if old in t:
            t = t.replace(old, new)
    out: list[str] = []
    for c in t:
        if not out or out[-1] != c:
            out.append(c)
    if len(out) > 3 and out[-1] == "h" and out[-2] in _VOWELS:
        out.pop()  # Jufrah, Misratah
    return "".join(out)


@lru_cache(maxsize=200_000)
def skeleton(t: str) -> str:
    """Consonant skeleton of a transliterated token: its first letter (a vowel as 'a') and its consonants."""
    if not t:
        return ""
    head = "a" if t[0] in _VOWELS else t[0]
    return head + "".join(c for c in t[1:] if c not in _VOWELS)


@lru_cache(maxsize=200_000)
def _keys(t: str) -> frozenset[str]:
    """The skeletons under which a text token looks for names: its own and those of its stems."""
    return frozenset(skeleton(s) for s in stems(t))


@lru_cache(maxsize=200_000)
def token_keys(raw: str, t: str) -> frozenset[str]:
    """The skeletons of a text token as written (`raw`) and transliterated (`t`), its other readings too."""
    keys = _keys(t)
    readings = script_variants(raw)
    for v in readings:
        keys |= _keys(v)
    if not raw.isascii() and _ABJAD.search(raw):
        # A name that begins with a vowel in Latin may begin with ayn, which is not written (Aden, عدن).
        keys |= {"a" + consonants(v) for v in (t, *readings) if v and v[0] not in _VOWELS}
    return keys


@lru_cache(maxsize=200_000)
def stems(t: str) -> tuple[str, ...]:
    """The transliterated token and the forms left when a case ending is cut off it."""
    found = [t]
    for ending in _ENDINGS:
        if t.endswith(ending) and len(t) - len(ending) >= 4:
            stem = t[: -len(ending)]
            found.append(stem)
            if stem[-1] == "h" and stem[-2] in _VOWELS:
                found.append(stem[:-1])  # as translit drops it: Салеха is Saleh's, read "sali"
    return tuple(found)


def _indel(c: str, inside: bool) -> float:
    # A vowel dropped or added inside a name is the commonest transliteration difference; beyond either
    # end of the other word it makes a different word ("Dernawi" is no spelling of Derna): full cost.
    return 0.5 if inside and c in _VOWELS else 1.0


@lru_cache(maxsize=100_000)
def similarity(a: str, b: str) -> float:
    """1 - weighted edit distance / longer length; vowel for vowel costs 0.3, an inner vowel 0.5."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    la, lb = len(a), len(b)
    prev = [0.0]
    for _ in range(lb):
        prev.append(prev[-1] + 1.0)
    for i, ca in enumerate(a):
        cur = [prev[0] + 1.0]
        for j, cb in enumerate(b):
            swap = 0.0 if ca == cb else (0.3 if ca in _VOWELS and cb in _VOWELS else 1.0)
            delete = prev[j + 1] + _indel(ca, 0 < j + 1 < lb)
            insert = cur[j] + _indel(cb, 0 < i + 1 < la)
            cur.append(min(delete, insert, prev[j] + swap))
        prev = cur
    return max(0.0, 1.0 - prev[-1] / max(la, lb))


@lru_cache(maxsize=500_000)
def _token_score(raw: str, tok_folded: str, tok_trans: str, folded: str, trans: str, alone: bool) -> float:
    """1.0 as written, else how alike a text token is to a name token (0 if unlike); a short token standing
    alone must be written as in the watchlist, one inside a longer name may vary (Seif for Saif)."""
    if tok_folded == folded:
        return 1.0
    if not folded.isascii() and tok_folded.isascii():
        return 0.0  # a form in another script (an alias, a GeoNames name) is for text in that script
    readings = (tok_trans, *script_variants(raw))
    if not raw.isascii() and _ABJAD.search(raw):
        if folded.isascii():
            # An Arabic word against a Latin name: its transliteration and its readings without proclitics.
            return max(_arabic_score(t, trans, folded, alone) for t in readings)
        # Against an Arabic alias: as written, bar proclitics and spelling variants (الخطوة is no الحوثي).
        return 0.97 if trans in readings else 0.0
    return max(_latin_score(raw, t, trans, alone) for t in readings)


def _arabic_score(tok_trans: str, trans: str, folded: str, alone: bool) -> float:
    """Arabic writes no short vowels: a name meets its Arabic spelling on the consonant skeleton, with the
    long vowels written in Arabic (alef, waw, ya) only where the Latin name has a vowel."""
    name = consonants(trans)
    # Latin spelling's final h after a vowel was folded away (Saleh, Hodeidah); Arabic may write it (صالح).
    written = {name, name + "h"} if folded.endswith("h") else {name}
    if consonants(tok_trans) not in written or (alone and len(name) < 3 and tok_trans != trans):
        return 0.0  # two consonants alone meet too many words, unless every vowel is written too (חותי)
    # A name ending in -a is written with a final ta marbuta or alef (الجفرة, not the Jordanian الجفر),
    # one ending in -i with a final ya (بنغازي); a final -e is Italian spelling of a consonant (Sirte, سرت).
    if (folded[-1] == "a" and tok_trans[-1] != "a") or (folded[-1] in "iy" and tok_trans[-1] != "i"):
        return 0.0
    # Every vowel the Arabic writes must stand where the Latin name has one: "Hftr" against "Haftar".
    full = trans + "h" if folded.endswith("h") and not trans.endswith("h") else trans
    return 0.9 if _vowels_fit(tok_trans, trans) or _vowels_fit(tok_trans, full) else 0.0


def consonants(t: str) -> str:
    """The letters of a transliterated token that are not vowels."""
    return "".join(c for c in t if c not in _VOWELS)


def _vowels_fit(short: str, full: str) -> bool:
    """Whether `short` is `full` with some vowels left out (both transliterated). A written vowel letter
    stands for o or u alike (Arabic waw, Hebrew vav); a word-initial alef carries any vowel (إدلب, Idlib)."""
    k = 0
    for n, c in enumerate(full):
        if k < len(short) and (
            short[k] == c
            or (short[k] in "ou" and c in "ou")
            or (k == 0 and n == 0 and short[0] == "a" and c in _VOWELS)
        ):
            k += 1
        elif c not in _VOWELS:
            return False
    return k == len(short)


def _latin_score(raw: str, tok_trans: str, trans: str, alone: bool) -> float:
    if tok_trans == trans:
        return 0.97
    if not alone and tok_trans[:-1] == trans and trans[-1] in _VOWELS and tok_trans[-1] in "nrsm":
        # An inflected adjective inside a longer name: der Libyschen Nationalarmee, of Libysche.
        return 0.92
    if alone and len(trans) <= SHORT_NAME:
        return 0.0
    if raw.isupper() and len(raw) <= 6:
        return 0.0  # an acronym in the text ("HTS") is no respelling of a name ("Houthis")
    if trans[-1] not in _VOWELS and _CYRILLIC_ADJECTIVE.search(raw):
        return 0.0  # Артёмовский, Артёмовского: a word made from the name (a town, a district), not it
    # A case ending cut off must leave the name itself, or the name less its last vowel (Sirtu, Sirte).
    bare = trans[:-1] if trans[-1] in _VOWELS else trans
    for stem in stems(tok_trans)[1:]:
        if stem in (trans, bare):
            return 0.92
    if tok_trans.startswith(trans) and len(tok_trans) - len(trans) >= 2:
        return 0.0  # a longer word built on the name ("Dernawi", "Sirtean"), not the name
    if skeleton(tok_trans) != skeleton(trans):
        return 0.0
    if trans[-1] == "a" and tok_trans[-1] not in _VOWELS:
        # Other languages keep a name's final -a (Tarhuna, Тархуна; only a case ending replaces it, as
        # above): a word that lacks it is another word (Тархун, tarragon).
        return 0.0
    score = similarity(tok_trans, trans)
    return score if score >= VARIANT_WITH_LABEL else 0.0


# Words after an organisation's bare name that say it is the organisation: its kind or its members.
_ORG_KIND_AFTER = re.compile(
    r"[ \t\u00a0-]+(?:[a-z]+[ \t\u00a0]+)?(?:group|mercenar(?:y|ies)|fighters|paramilitar(?:y|ies)"
    r"|contractors|troops|forces|commanders?|chief|founder|boss|operatives|units?|men|convicts|recruits"
    r"|soldiers|veterans|instructors|personnel)\b",
    re.IGNORECASE,
)
_HONORIFIC = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof|Professor|Dott|Dre?|Mme|Herr|Frau)\.?\s+$")
# An indefinite article right before an organisation's long name makes it a description of some body of
# that kind ("un Gobierno de Acuerdo Nacional", "eine Regierung der Nationalen Einheit"). English and
# Turkish put theirs before a whole noun phrase ("a Libyan National Army unit", "bir UMH yetkilisi"), so
# theirs count only before a name in lower case ("a government of national accord").
_INDEFINITE = re.compile(
    r"(?:^|[^\w'\u2019])(?:une?|un[ao]|ein(?:e|er|en|em|es)?|um|uma|een)\s+$", re.IGNORECASE
)
_INDEFINITE_BEFORE_LOWER = re.compile(r"(?:^|[^\w'\u2019])(?:an?|bir)\s+$", re.IGNORECASE)
# ... and before a capitalised name when no noun follows it to make the whole a noun phrase ("created a
# Government of National Accord divided evenly", "for a Government of National Accord that").
_ENGLISH_INDEFINITE = re.compile(r"(?:^|[^\w'\u2019])an?\s+$")
_NO_NOUN_AFTER = re.compile(
    r"\s*(?:$|[,.;:!?)\u2013\u2014]|(?:that|which|who|whose|to|of|in|for|with|under|by|and|or|was|is|would"
    r"|will|could|should|[a-z]+ed)\b)"
)
# An acronym in brackets after its long form, or a long form in brackets after its acronym.
_SPELLED_OUT = re.compile(
    r"\(\s*(?P<inner>[^\W\d_][^\W\d_]{1,6})\s*\)|(?P<outer>\b[^\W\d_]{2,7})\s*\((?P<long>[^()\n]{4,100})\)"
)


def _initials_fit(words: Sequence[_Tok], acronym: str) -> bool:
    """Whether the words' initials spell the folded acronym; short lower-case words ("of", "sans" when
    its s is not wanted) may be passed over."""
    k = 0
    for w in words:
        if k < len(acronym) and w[3][:1] == acronym[k]:
            k += 1
        elif not (w[2][:1].islower() and len(w[3]) <= 4):
            return False
    return k == len(acronym) and len(words) >= 2


def _respelt(tok: _Tok, form: _Form) -> bool:
    """Whether a Latin or Cyrillic word met a one-word name only by edit distance: none of its readings,
    with or without a case ending, is the name's transliteration (or that less its last vowel)."""
    if _ABJAD.search(tok[2]):
        return False  # Arabic and Hebrew words meet names on their skeleton, under their own rules
    wanted, readings = _name_and_readings(tok, form)
    return not any(s in wanted for r in readings for s in stems(r))


def _name_and_readings(tok: _Tok, form: _Form) -> tuple[set[str], tuple[str, ...]]:
    """A one-word name as transliterated (and less its last vowel), and a word's readings."""
    name = form.trans[0]
    return {name, name[:-1] if name[-1] in _VOWELS else name}, (tok[4], *script_variants(tok[2]))


def _latin_case_ending(tok: _Tok, form: _Form) -> bool:
    """Whether a Latin word met a one-word name only with a case ending cut off: machine translation's
    (Sirtu) or another word's (Dernau, a German village), which spaCy's label cannot tell apart."""
    wanted, readings = _name_and_readings(tok, form)
    return tok[3].isascii() and not any(r in wanted for r in readings) and not _respelt(tok, form)


# Endings that make a Russian or Ukrainian adjective, never a case of a noun that ends in a consonant.
_CYRILLIC_ADJECTIVE = re.compile(r"(?:[иыі]й|[оеє]го|[оеє]му|[ая]я|ое|ые|ие|ых|их)$", re.IGNORECASE)


def _is_acronym(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return 2 <= len(letters) <= 6 and all(c.isupper() for c in letters) and " " not in text


@dataclass(frozen=True)
class _Form:
    """One way of writing a watch: its name or an alias, as content tokens."""

    watch: Watch
    raw: tuple[str, ...]
    folded: tuple[str, ...]
    trans: tuple[str, ...]
    how: How
    acronym: bool
    # A name-forming particle the name starts with ("Abu" of Abu Qurain): a respelt name must keep it.
    lead: str | None = None


# Other spellings of particles: French Abou, Turkish Ebu; in another script a particle is known by its
# transliteration (Abu in Cyrillic or Arabic letters).
_PARTICLE_SPELLINGS = {"abou": "abu", "ebu": "abu", "ebou": "abu", "aboul": "abu"}


def particle(word: str) -> str | None:
    """The particle a word is, in its usual Latin spelling ("Abou", "d'Abou" -> "abu"), or None."""
    elided = _ELISION.match(word)
    folded = fold(word[elided.end() :] if elided else word)
    if folded in PARTICLES:
        return folded
    if folded in _PARTICLE_SPELLINGS:
        return _PARTICLE_SPELLINGS[folded]
    if not folded.isascii():
        # As transliterated (أبو: abu), or as romanised before the rewrites fold e into i (ез: ez).
        for t in (translit(word), romanise(folded)):
            t = {"val": "wal"}.get(t, t)  # Cyrillic валь is wal-, "and the"
            if t in PARTICLES:
                return t
    return None


# "of" without "the" in an organisation's name.
_OF = re.compile(r"\bof (?!the\b)")
# The Arabic article in its Latin spellings.
_ARTICLE_PARTICLES = frozenset({"al", "el", "ul", "ez", "es", "ed", "ad", "az", "ash"})
# Particles that make a name rather than mark an article; "Abu Grein" is Abu Qurain, "Green" is not.
_NAME_PARTICLES = frozenset({"abu", "bin", "ibn", "ben", "abd", "bint"})


def _content(tokens: Sequence[str]) -> list[str]:
    kept = [t for t in tokens if particle(t) is None]
    return kept or list(tokens)


def _is_person(watch: Watch) -> bool:
    words = _TOKEN.findall(watch.name)
    # A given name and a family name at least: "al-Shabaab" is one word with its article.
    if watch.kind != "actor" or len(_content(words)) < 2 or _is_acronym(watch.name):
        return False
    if any(fold(w) in _ORG_WORDS for w in words):
        return False
    return all(w[0].isupper() or fold(w) in PARTICLES for w in words)


# Each distinct word of the texts seen so far: (folded, transliterated, is a particle).
_WORDS: dict[str, tuple[str, str, bool]] = {}


# A content word of the text: (start, end, as written, folded, transliterated). A plain tuple, as
# thousands are made per article and a class costs a quarter of the matching time.
_Tok = tuple[int, int, str, str, str]


_WORD_OR_GAP = re.compile(r"[^\W_]+")
# A short lower-case word glued to a capitalised name where markup lost a space ("ofTripoli", "inGao").
_GLUED = re.compile(r"^(?:[a-z]{1,5}|The|In|Of|At|On|To|By|And|For|From|With|Near)(?=[A-Z][a-z]{2,})")
_TURKISH_SUFFIX = re.compile(
    r"(?<=[^\W\d_]{3})['\u2019](?:[dt][ae](?:n|ki)?|y[ae\u0131iu\u00fc]|[\u0131iu\u00fc]n|n[\u0131iu\u00fc]n|y?l[ae]|n[ae]|nd[ae]n?"
    r"|l[\u0131iu\u00fc]|s[\u0131iu\u00fc]|[c\u00e7][ae]|[dt][\u0131iu\u00fc]r)$"
)
# A French or Italian elided article or preposition glued to a name by an apostrophe: d'Haftar, l'ANL,
# dell'Esercito, l'esercito.
_ELISION = re.compile(
    r"^(?:[dlDLjJnNsScC]|[qQ]u|[dDnNsS]ell|[aA]ll|[dD]all|[sS]ull|[uU]n)['\u2019](?=[^\W\d_])"
)


def _gap_fits(gap: str, joiner: re.Pattern[str]) -> bool:
    """Whether the text between two name parts holds only joiners and particles (" al-", "-el-")."""
    rest = _WORD_OR_GAP.sub(lambda m: " " if particle(m.group()) is not None else "\x00", gap)
    return bool(joiner.fullmatch(rest))


@dataclass
class _Cand:
    form: _Form
    first: int  # index into content tokens
    last: int
    score: float
    how: How
    surname_only: bool


class VariantMatcher:
    """Finds watches however reporting spells them; indexes forms by skeleton so cost grows with the text."""

    def __init__(self, watches: Sequence[Watch], places: Mapping[str, Place] | None = None) -> None:
        self._last_tokens: tuple[str, list[_Tok]] | None = None
        self._anchors: dict[tuple[str, bool], list[tuple[_Form, int]]] = {}
        self._context_of: dict[str, frozenset[str]] = {}  # per word, as written: see _context_found
        self._joins: dict[tuple[int, bool], bool] = {}
        self._text = ""
        self._entities: dict[int, Entity] = {}
        self._index: dict[str, list[tuple[_Form, int]]] = defaultdict(list)
        self._acronyms: dict[str, list[_Form]] = defaultdict(list)
        self._given: dict[str, list[str]] = {}
        # Per watched person (by id): the transliterated surname; its given names are below.
        self._surname: dict[str, str] = {}
        self._surname_count: dict[str, int] = defaultdict(int)
        self._forms_of: dict[str, list[_Form]] = defaultdict(list)
        # Organisations' names of three words or more, by first word: found even when written in lower
        # case, as Italian and French reporting writes them ("l'esercito nazionale libico").
        self._phrases: dict[str, list[_Form]] = defaultdict(list)
        # Places whose name ends in -a (Tarhuna, Misrata): a word that ends in a consonant is another.
        self._ends_in_a = {
            w.id
            for w in watches
            if w.kind == "location" and translit(_TOKEN.findall(w.name)[-1]).endswith("a")
        }
        # Watched organisations: actors whose name is no person's.
        self._orgs = {w.id for w in watches if w.kind == "actor" and not _is_person(w)}
        # Per watch: its context words' skeletons (see Watch.context), and their stems (less a final
        # vowel, four letters at least) that words made from them start with.
        self._context: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
        self._context_stems: dict[str, set[str]] = defaultdict(set)
        self._context_shown: dict[str, str] = {}
        # People whose given name is compound (Saif al-Islam): they are called by it, and a bare family
        # name is most often another of the family's (his father's).
        self._compound_given: set[str] = set()
        from streams.names.gazetteer import region_names, watch_countries  # it imports this module

        countries = self._country = watch_countries(watches, places)
        for watch in watches:
            # A watch's country, named in many languages, and its capital are its region (Libya for Sirte).
            region = region_names(countries[watch.id]) if watch.id in countries else ()
            # What --explain names when a short form lacks support: the watch's own words, then the
            # region's English name and capital.
            shown = (*watch.context, *region[:1], *region[1:][-1:])
            self._context_shown[watch.id] = ", ".join(dict.fromkeys(shown[:3]))
            for entry in (*watch.context, *region):
                for word in _TOKEN.findall(entry):
                    if len(word) >= 4 or word.isupper():
                        t = translit(word)
                        self._context[skeleton(t)].append((watch.id, fold(word), t))
                        stem = t[:-1] if t[-1] in _VOWELS else t
                        if len(stem) >= 4:
                            self._context_stems[stem].add(watch.id)
            if _is_person(watch):
                parts = _TOKEN.findall(watch.name)
                if any(fold(w) in PARTICLES for w in parts[1:-2]):  # Saif al-Islam, not Fayez al-Sarraj
                    self._compound_given.add(watch.id)
                words = _content(_TOKEN.findall(watch.name))
                self._surname[watch.id] = translit(words[-1])
                self._surname_count[translit(words[-1])] += 1
                self._given[watch.id] = [translit(w) for w in words[:-1]]
            place = (places or {}).get(watch.id)
            for text, how, raw in self._spellings(watch, place.names if place else ()):
                form = _Form(
                    watch=watch,
                    raw=raw,
                    folded=tuple(fold(t) for t in raw),
                    trans=tuple(translit(t) for t in raw),
                    how=how,
                    acronym=_is_acronym(text),
                    # A spelling with the particle glued on carries it itself (AbuQurain, أبوقرين).
                    lead=next(
                        (
                            fold(w)
                            for w in _TOKEN.findall(text)[:1]
                            if fold(w) in _NAME_PARTICLES and not fold(raw[0]).startswith(fold(w))
                        ),
                        None,
                    ),
                )
                if not all(form.trans):
                    continue  # a name of letters the transliteration has nothing for
                self._forms_of[watch.id].append(form)
                if form.acronym:
                    self._acronyms[raw[0]].append(form)
                    continue
                long_name = len(raw) >= 3 and watch.kind == "actor" and watch.id not in self._surname
                if long_name or raw[0][0].islower():
                    # An organisation's long name, or an alias the analyst wrote in lower case (hutíes).
                    self._phrases[form.folded[0]].append(form)
                kinds = [k for k, w in enumerate(form.folded) if w in _ORG_KINDS]
                if watch.kind == "actor" and len(raw) == 2 and len(kinds) == 1 and how != "gazetteer":
                    self._add_head(watch, raw[1 - kinds[0]])
                for pos, t in enumerate(form.trans):
                    self._index[skeleton(t)].append((form, pos))

    def _add_head(self, watch: Watch, head: str) -> None:
        """Index the word an organisation is called by without its kind (Wagner of Wagner Group)."""
        if any(f.how == "head" and f.folded[0] == fold(head) for f in self._forms_of[watch.id]):
            return
        short = _Form(watch, (head,), (fold(head),), (translit(head),), "head", False)
        self._forms_of[watch.id].append(short)
        self._index[skeleton(short.trans[0])].append((short, 0))

    @staticmethod
    def _spellings(watch: Watch, gazetteer: Sequence[str] = ()) -> list[tuple[str, How, tuple[str, ...]]]:
        """(text, how, content tokens) for the name, each alias, each name GeoNames gives the place, and
        each with its particles glued on ("Deir ez-Zor" is also written "Deir Ezzor", "al-Jufra" also
        "Aljufra"), a person's or place's name also with the words around an inner article glued into
        one, as Turkish writes them (Seyfülislam, Deyrizor)."""
        out: list[tuple[str, How, tuple[str, ...]]] = []
        named: list[tuple[str, How]] = [
            (watch.name, "exact"),
            *((a, "alias") for a in watch.aliases),
            # Egyptian spelling writes a foreign g as jim where others write ghayn (فاجنر, فاغنر).
            *((a.replace("\u063a", "\u062c"), "alias") for a in watch.aliases if "\u063a" in a),
            *((g, "gazetteer") for g in gazetteer),
        ]
        for text, how in named:
            words = _TOKEN.findall(text)
            raw = tuple(_content(words))
            if raw:
                out.append((text, how, raw))
            glued: list[str] = []
            for k, word in enumerate(words):
                if glued and fold(words[k - 1]) in PARTICLES and k > 0:
                    glued[-1] = words[k - 1] + word
                else:
                    glued.append(word)
            if len(glued) < len(words):
                out.append((text, how, tuple(glued)))
            person = _is_person(watch)
            if not person and len(words) == 2 and not _is_acronym(text):
                # Two words written as one (Ansarullah, AnsarAllah of Ansar Allah; Deirezzor).
                out.append((text, how, ("".join(words),)))
            if watch.kind == "actor" and not person and _OF.search(text):
                # "Government of the National Accord", as translations and wire copy also write it.
                out.append((text, how, tuple(_content(_TOKEN.findall(_OF.sub("of the ", text, count=1))))))
            if not person and watch.kind != "location":
                continue
            for k in range(1, len(words) - (2 if person else 1)):
                if fold(words[k]) in _ARTICLE_PARTICLES and fold(words[k - 1]) not in PARTICLES:
                    whole = (*words[: k - 1], words[k - 1] + words[k] + words[k + 1], *words[k + 2 :])
                    out.append((text, how, tuple(_content(whole))))
        return out

    # -- token comparison ----------------------------------------------------------------------------
    @staticmethod
    def _token_score(tok: _Tok, folded: str, trans: str, alone: bool = True) -> float:
        return _token_score(tok[2], tok[3], tok[4], folded, trans, alone)

    def _align(self, toks: list[_Tok], i: int, form: _Form, pos: int) -> tuple[int, int, float] | None:
        """The form laid over content tokens with its part `pos` at token i: in its own order, or with
        the last part first as indexes and bylines write it ("Gaddafi, Seif al-Islam")."""
        n = len(form.trans)
        orders = [list(range(n))]
        if n > 1:
            orders.append([n - 1, *range(n - 1)])
        for order in orders:
            first = i - order.index(pos)
            if first < 0 or first + n > len(toks):
                continue
            joiner = _JOINER if order[0] == 0 else _LOOSE_JOINER
            scores = []
            for offset, k in enumerate(order):
                score = self._token_score(toks[first + offset], form.folded[k], form.trans[k], n == 1)
                if score == 0:
                    break
                scores.append(score)
            if len(scores) < n or not all(self._joined(toks, first + k, joiner) for k in range(n - 1)):
                continue
            if form.lead is not None and min(scores) < 0.97 and not self._preceded_by(toks, first, form.lead):
                continue
            # Reordered names are a little less sure than names in their own order.
            return first, first + n - 1, min(scores) * (1.0 if order[0] == 0 else 0.95)
        return None

    # -- the pass --------------------------------------------------------------------------------------
    def candidate_offsets(self, text: str) -> list[int]:
        """Where a watched name may stand even with spaCy's help: the only places NER needs to look.

        A word that could begin (or be the surname of) a watched name at the loosest threshold the
        matcher ever accepts, or a watched acronym. Everything else the matcher would pass over anyway.
        """
        out: list[int] = []
        for tok in self._tokens(text):
            if tok[2] in self._acronyms:
                out.append(tok[0])
                continue
            if not may_be_name(tok[2]):
                continue
            if any(
                _token_score(tok[2], tok[3], tok[4], form.folded[pos], form.trans[pos], False)
                >= VARIANT_WITH_LABEL
                for key in token_keys(tok[2], tok[4])
                for form, pos in self._index.get(key, ())
            ):
                out.append(tok[0])
        return out

    def _tokens(self, text: str) -> list[_Tok]:
        # The extractor asks for candidates and then matches the same text: tokenise it once.
        if self._last_tokens is not None and self._last_tokens[0] is text:
            return self._last_tokens[1]
        toks: list[_Tok] = []
        self._last_tokens = (text, toks)
        words = _WORDS
        for m in _TOKEN.finditer(text):
            word = m.group()
            start, end = m.span()
            elided = _ELISION.match(word) or _GLUED.match(word)
            if elided:  # French d'Abou, l'Armée; "ofTripoli" from bad markup: the name starts after
                word, start = word[elided.end() :], start + elided.end()
            info = words.get(word)
            if info is None:
                # Turkish sets a case suffix off a name with an apostrophe (Siirt'te, Sirte'de): the word
                # is read without it, or "Siirt'te" would be read "Sirte".
                base = _TURKISH_SUFFIX.sub("", word)
                info = words[word] = (fold(base), translit(base), particle(word) is not None)
                if len(words) > 500_000:
                    words.clear()  # a bound on memory for a worker that runs for months
            # Particles are skipped here and allowed for in the gaps between name parts instead.
            if not info[2]:
                toks.append((start, end, word, info[0], info[1]))
        return toks

    def match(self, text: str, entities: Sequence[Entity] = ()) -> list[WatchMatch]:
        self._text = text
        # Short forms the article did not support, with why (see _supported), for --explain.
        self.refused: list[tuple[WatchMatch, str]] = []
        self._joins = {}
        toks = self._tokens(text)
        # Per watched person, the tokens that resemble the surname, in a name or alone.
        self._surname_seen: dict[str, set[int]] = defaultdict(set)
        surnames = self._surname_seen
        labels = self._labels(text, entities)
        self._entities = labels
        cands: list[_Cand] = []
        for i, tok in enumerate(toks):
            if tok[2][0].islower():  # may_be_name, inline: this loop runs for every word
                # Names are written capitalised ("sort" is never Sirte), bar organisations' long names.
                for form in self._phrases.get(tok[3], ()):
                    if self._phrase_at(toks, i, form):
                        cands.append(_Cand(form, i, i + len(form.raw) - 1, 1.0, form.how, False))
                continue
            for form, pos in self._anchored(tok, tok[0] in labels):
                is_surname = self._is_surname(form, pos)
                if is_surname:
                    surnames[form.watch.id].add(i)  # where the surname stands, for _other_bearers
                placed = self._align(toks, i, form, pos)
                if placed is not None:
                    first, last, score = placed
                    how = (
                        form.how
                        if score >= 0.999
                        or (form.how in ("alias", "gazetteer") and score >= 0.97)
                        or form.how == "head"
                        else "variant"
                    )
                    cands.append(_Cand(form, first, last, score, how, False))
                elif is_surname:
                    score = self._token_score(tok, form.folded[pos], form.trans[pos])
                    if score > 0:
                        cands.append(_Cand(form, i, i, score * 0.85, "surname", True))
        cands += self._acronym_cands(toks, cands)
        return self._decide(text, toks, cands, labels)

    def _anchored(self, tok: _Tok, labelled: bool) -> list[tuple[_Form, int]]:
        """The name parts a word resembles enough to anchor a match (at the floor for a word spaCy labels or
        not), remembered per word: a text's words recur, and each may meet hundreds of indexed forms."""
        known = self._anchors.get((tok[2], labelled))
        if known is not None:
            return known
        # Without a spaCy entity here a borderline spelling cannot be accepted, so need not be tried.
        floor = VARIANT_WITH_LABEL if labelled else VARIANT_SURE
        arabic = not tok[3].isascii() and _ARABIC.search(tok[2]) is not None
        found: list[tuple[_Form, int]] = []
        for key in token_keys(tok[2], tok[4]):
            for form, pos in self._index.get(key, ()):
                if arabic and form.watch.id in self._orgs and not _ARABIC.search(form.raw[pos]):
                    # Organisations' names are translated, not transliterated, and in Arabic they are
                    # common words (al-Shabaab: الشباب, the youth): only their Arabic aliases count.
                    continue
                # The word itself must resemble its part of the name before the rest is looked at.
                if _token_score(tok[2], tok[3], tok[4], form.folded[pos], form.trans[pos], False) >= floor:
                    found.append((form, pos))
        if len(self._anchors) > 200_000:
            self._anchors.clear()  # a bound on memory for a worker that runs for months
        self._anchors[(tok[2], labelled)] = found
        return found

    def _described(self, text: str, toks: list[_Tok], c: _Cand) -> bool:
        """Whether an organisation's long name stands as a description after an indefinite article."""
        if c.form.watch.id not in self._orgs or c.form.acronym or len(c.form.raw) < 2:
            return False
        before = text[: toks[c.first][0]][-8:]
        lower = not may_be_name(toks[c.first][2])
        return bool(
            _INDEFINITE.search(before)
            or (lower and _INDEFINITE_BEFORE_LOWER.search(before))
            or (_ENGLISH_INDEFINITE.search(before) and _NO_NOUN_AFTER.match(text, toks[c.last][1]))
        )

    def _short_form(self, toks: list[_Tok], c: _Cand, labels: dict[int, Entity]) -> str | None:
        """What makes a match a short or shared form of its watch, one that needs the article's support;
        None for a full name."""
        if c.how in ("variant", "surname") and c.score < VARIANT_SURE * (0.85 if c.surname_only else 1.0):
            # Accepted only because spaCy labels it the right kind of name: any town abroad is a GPE.
            return "a loose respelling that only spaCy's label vouches for"
        if c.how == "alias" and c.form.acronym:
            return "an acronym"
        if c.surname_only:
            return "a bare surname"
        if c.how == "head":
            return "the organisation's name without its kind"
        if c.form.watch.kind != "location" or c.first != c.last:
            return None
        tok = toks[c.first]
        # Four letters or fewer as written or as read (Сирт, سرت; Siirt'te reads "sirt"; שבמערב, without
        # its proclitics, reads "mrb").
        read = min((tok[4], *script_variants(tok[2])), key=len) if _ABJAD.search(tok[2]) else tok[4]
        if sum(ch.isalpha() for ch in re.split("['\u2019]", tok[2])[0]) < 5 or len(read) < 5:
            return "a place name under five letters"
        if c.how == "variant" and _latin_case_ending(tok, c.form):
            return "a place name read with a case ending"
        if (
            c.how == "variant"
            and not self._label_fits(c.form.watch, labels, tok[0])
            and _respelt(tok, c.form)
        ):
            return "a respelling of a place name"
        return None

    def _supported(self, toks: list[_Tok], chosen: list[_Cand], labels: dict[int, Entity]) -> list[_Cand]:
        """The matches the article supports: full names always; a short or shared form (an acronym, a bare
        surname, a short or respelt place name) beside the watch's full name or another watch's, one of its
        context words, or another watch's short form in its paragraph; an organisation's bare name (Wagner)
        beside its full name, or another watch in its sentence with no given name before it. The refused,
        with why, go to `self.refused` for --explain."""
        short = {id(c): why for c in chosen if (why := self._short_form(toks, c, labels)) is not None}
        if not short:
            return chosen
        named = {c.form.watch.id for c in chosen if id(c) not in short}
        context = self._context_found(toks) if self._context else set()
        ok = {
            id(c)
            for c in chosen
            if id(c) not in short
            or c.form.watch.id in context
            or c.form.watch.id in named
            or (c.how != "head" and any(self._vouches(o, c.form.watch.id) for o in named))
        }
        doubtful = [c for c in chosen if id(c) not in ok]
        # Two short forms of different watches in one paragraph vouch for each other ("قوات حفتر ... سرت").
        paragraphs = text_units(self._text, "paragraph") if doubtful else []
        where = {id(c): self._unit(paragraphs, toks[c.first][0]) for c in doubtful if c.how != "head"}
        for c in doubtful:
            if id(c) in where and any(
                self._vouches(o.form.watch.id, c.form.watch.id) and where.get(id(o)) == where[id(c)]
                for o in doubtful
            ):
                ok.add(id(c))
        sentences = text_units(self._text, "sentence") if any(c.how == "head" for c in doubtful) else []
        for c in doubtful:
            if c.how == "head" and not self._another_bearer_before(toks, c.first):
                s, e = self._unit(sentences, toks[c.first][0])
                # Before its kind or its members ("the Wagner paramilitary group", "a Wagner commander"),
                # or beside another watch in its sentence.
                if _ORG_KIND_AFTER.match(self._text, toks[c.first][1]) or any(
                    o.form.watch.id != c.form.watch.id and id(o) in ok and s <= toks[o.first][0] < e
                    for o in chosen
                ):
                    ok.add(id(c))
        for c in doubtful:
            if id(c) not in ok:
                shown = self._context_shown.get(c.form.watch.id)
                words = f"context word ({shown})" if shown else "context word"
                why = (
                    "no other watch in its sentence, or a given name before it"
                    if c.how == "head"
                    else f"no other watch, full name or {words} in this article"
                )
                self.refused.append((self._as_match(toks, c), f"{short[id(c)]}, with {why}"))
        return [c for c in chosen if id(c) in ok]

    def _vouches(self, other: str, wid: str) -> bool:
        """Whether another watch named in the article supports this one: not when both have a country and
        the two differ (the Houthis are no sign an acronym is Libya's GNA)."""
        if other == wid:
            return False
        mine, theirs = self._country.get(wid), self._country.get(other)
        return mine is None or theirs is None or mine == theirs

    def _as_match(self, toks: list[_Tok], c: _Cand) -> WatchMatch:
        start, end = toks[c.first][0], toks[c.last][1]
        # A particle hyphenated to the name belongs to its surface ("al-Jufra", "el-Sarraj").
        lead = re.search(r"(?<![^\W_])([^\W_]+)[-\u2010\u2011]$", self._text[max(0, start - 6) : start])
        if lead and fold(lead.group(1)) in PARTICLES:
            start -= len(lead.group(0))
        return WatchMatch(
            watch=c.form.watch.id,
            kind=c.form.watch.kind,
            text=self._text[start:end],
            start=start,
            end=end,
            how=c.how,
            score=round(c.score, 3),
        )

    @staticmethod
    def _unit(units: list[tuple[int, int]], offset: int) -> tuple[int, int]:
        """The sentence or paragraph (from text_units) holding a character offset."""
        return next(((s, e) for s, e in units if s <= offset < max(e, s + 1)), (offset, offset + 1))

    def _context_found(self, toks: list[_Tok]) -> set[str]:
        """The watches one of whose context words the text holds, in any spelling or script."""
        found: set[str] = set()
        for tok in toks:
            known = self._context_of.get(tok[2])
            if known is None:
                known = self._context_of[tok[2]] = self._context_of_word(tok)
                if len(self._context_of) > 200_000:
                    self._context_of.clear()  # a bound on memory, as for _anchors
            found.update(known)
        return found

    def _context_of_word(self, tok: _Tok) -> frozenset[str]:
        """The watches one of whose context words this word is, or is made from."""
        found: set[str] = set()
        for key in token_keys(tok[2], tok[4]):
            for wid, folded, trans in self._context.get(key, ()):
                if wid not in found and _token_score(tok[2], tok[3], tok[4], folded, trans, False) > 0:
                    found.add(wid)
        # A word made from a context word: Libyan, libyenne, libico, ливийских, الليبية of Libya.
        for t in (tok[4], *script_variants(tok[2])):
            for n in range(max(4, len(t) - 5), len(t)):
                found.update(self._context_stems.get(t[:n], ()))
        return frozenset(found)

    def _another_bearer_before(self, toks: list[_Tok], j: int) -> bool:
        """Whether a capitalised word that is no title stands right before token j, as a given name
        does ("Richard Wagner", "Ріхарда Вагнера")."""
        if j == 0 or not self._joined(toks, j - 1, _JOINER):
            return False
        prev = toks[j - 1]
        return prev[2][:1].isupper() and not _is_title(prev) and prev[3] not in _ORG_KINDS

    def _phrase_at(self, toks: list[_Tok], i: int, form: _Form) -> bool:
        """Whether the organisation's long name stands at token i, every word as written bar case."""
        n = len(form.folded)
        return (
            i + n <= len(toks)
            and all(toks[i + k][3] == form.folded[k] for k in range(n))
            and all(self._joined(toks, i + k, _JOINER) for k in range(n - 1))
        )

    def _acronym_cands(self, toks: list[_Tok], names: list[_Cand]) -> list[_Cand]:
        """Watched acronyms as written, unless the article spells them out as another's name ("Reporters
        sans frontières (RSF)" is no RSF militia); and any acronym the article defines by a watched name
        ("Esercito nazionale libico (Lna)")."""
        defined = self._definitions(toks, names)
        out: list[_Cand] = []
        for j, tok in enumerate(toks):
            for form in self._acronyms.get(tok[2], ()):
                if defined.get(tok[3], (form.watch.id,))[0] == form.watch.id:
                    out.append(_Cand(form, j, j, 0.95, "alias", False))
        for acronym, (owner, written) in defined.items():
            if owner is None or any(f.watch.id == owner for f in self._acronyms.get(written, ())):
                continue
            watch = self._forms_of[owner][0].watch
            form = _Form(watch, (written,), (acronym,), (translit(written),), "defined", True)
            out += [_Cand(form, j, j, 0.95, "defined", False) for j, t in enumerate(toks) if t[2] == written]
        return out

    def _definitions(self, toks: list[_Tok], names: list[_Cand]) -> dict[str, tuple[str | None, str]]:
        """Acronyms the text spells out, "Long Name (LN)" or "LN (Long Name)", by folded acronym: the
        watch whose name the long form is (None for a name not watched) and the acronym as written."""
        out: dict[str, tuple[str | None, str]] = {}
        starts: dict[int, int] = {}
        for m in _SPELLED_OUT.finditer(self._text):
            starts = starts or {t[0]: k for k, t in enumerate(toks)}
            if m.group("inner"):
                k = starts.get(m.start("inner"))
                if k is None or k == 0 or not self._text[toks[k - 1][1] : m.start()].isspace():
                    continue
                span = next(
                    (
                        (s, k - 1)
                        for s in range(k - 1, max(-1, k - 11), -1)
                        if (s == k - 1 or self._joined(toks, s, _JOINER))
                        and _initials_fit(toks[s:k], toks[k][3])
                    ),
                    None,
                )
            else:
                k = starts.get(m.start("outer"))
                inside = [j for j, t in enumerate(toks) if m.start("long") <= t[0] and t[1] <= m.end("long")]
                fits = k is not None and inside and _initials_fit([toks[j] for j in inside], toks[k][3])
                span = (inside[0], inside[-1]) if fits else None
            if k is None or span is None:
                continue
            owner = next(
                (
                    c.form.watch.id
                    for c in names
                    if c.last == span[1] and c.first >= span[0] and c.score >= VARIANT_SURE
                ),
                None,
            )
            out.setdefault(toks[k][3], (owner, toks[k][2]))
        return out

    def _arabic_place_fits(self, toks: list[_Tok], c: _Cand, places: dict[int, set[str]]) -> bool:
        """An Arabic place name is no gulf's; one met by transliteration alone (not written as a watched
        or GeoNames form of more than three consonants) needs a sign that it is a place: a preposition on
        it (بسرت), a place word before it (مدينة سرت), or a place beside it. سرت is also "I walked", and
        in a large watchlist some made-up-sounding town meets any Arabic word (وعشرين: Sherein)."""
        raw = toks[c.first][2]
        if raw.isascii() or not _ARABIC.search(raw) or c.how not in ("variant", "gazetteer"):
            return True
        prev = fold(toks[c.first - 1][2]) if c.first > 0 else ""
        if _arabic_cue(prev, _ARABIC_NOT_THE_PLACE):
            return False
        if c.first != c.last or (c.how != "variant" and len(consonants(c.form.trans[0])) > 3):
            return True
        word = fold(raw)
        if word[:1] in ("\u0628", "\u0644") or word[:2] in ("\u0648\u0628", "\u0641\u0628", "\u0648\u0644"):
            return True
        if _arabic_cue(prev, _ARABIC_PLACE_CUES):
            return True
        # Another watched place starting right after it, or ending right before it, in one list.
        wid = c.form.watch.id
        return bool(places.get(c.last + 1, set()) - {wid} and self._listed(toks, c.last)) or bool(
            places.get(-c.first, set()) - {wid} and self._listed(toks, c.first - 1)
        )

    def _listed(self, toks: list[_Tok], j: int) -> bool:
        """Whether content tokens j and j + 1 stand in one list (سرت والجفرة, "Sirte, Jufra"), not across a
        line or a sentence: a headline that ends in a place does not vouch for the next line's first word."""
        return bool(_LIST_GAP.fullmatch(self._text[toks[j][1] : toks[j + 1][0]]))

    @staticmethod
    def _another_thing(text: str, start: int, end: int) -> bool:
        """Whether the place name names a gulf, basin, street or station (see _NOT_THE_PLACE_BEFORE)."""
        return bool(_NOT_THE_PLACE_BEFORE.search(text[max(0, start - 24) : start])) or bool(
            _NOT_THE_PLACE_AFTER.match(text[end : end + 12])
        )

    def _known_in_arabic(self, toks: list[_Tok], c: _Cand) -> bool:
        """Whether the Arabic word is written as one of the watch's own Arabic forms (an alias)."""
        word = toks[c.first][2]
        readings = {toks[c.first][4], *script_variants(word)}
        return any(
            f.trans[-1] in readings
            for f in self._forms_of.get(c.form.watch.id, ())
            if not f.folded[-1].isascii()
        )

    def _in_anothers_name(self, toks: list[_Tok], j: int, given: list[str]) -> bool:
        """Whether the watch's given name at token j is the tail of someone else's chain of names."""
        return self._son_of(toks, j) or self._other_first_name(toks, j, given)

    def _son_of(self, toks: list[_Tok], j: int) -> bool:
        """Whether an Arabic given name stands right before token j, making the name from j on a father's
        in a chain of names (بلقاسم خليفة حفتر is Belgassem, son of Khalifa Haftar)."""
        return (
            j > 0
            and _ARABIC.search(toks[j][2]) is not None
            and fold(toks[j - 1][2]) in _ARABIC_GIVEN_NAMES
            and self._joined(toks, j - 1, _JOINER)
        )

    def _given_in_full(self, toks: list[_Tok], j: int, given: list[str]) -> bool:
        """Whether the given names ending at token j start with the watch's first: a later one alone is
        shared by brothers (Hamdan Dagalo is any son of Hamdan; Mohamed Hamdan Dagalo is the watch)."""
        k = len(given) - 1
        while k >= 0 and j >= 0 and self._token_score(toks[j], fold(given[k]), given[k], alone=False) > 0:
            if k == 0:
                return True
            if j == 0 or not self._joined(toks, j - 1, _JOINER):
                return False
            k, j = k - 1, j - 1
        # Not the last given name before the surname: the first alone (Mohamed Dagalo) also counts.
        return self._token_score(toks[j], fold(given[0]), given[0], alone=False) > 0 if j >= 0 else False

    def _other_first_name(self, toks: list[_Tok], j: int, given: list[str]) -> bool:
        """Whether spaCy reads a longer person's name that ends with the watch's given name at j and
        starts with a word that is none of them: Abdelrahim Hamdan Dagalo is a brother of Mohamed Hamdan
        Dagalo (they share their father's name), and engineer Belgassem Khalifa Haftar a son of Khalifa
        Haftar. Without spaCy's PERSON over both words this is not told: capitals alone cannot tell a
        given name from a German noun or a Turkish title."""
        if j == 0:
            return False
        before = toks[j - 1]
        entity = self._entities.get(before[0])
        if entity is None or entity.label != "PERSON" or entity.end < toks[j][1]:
            return False
        return not _is_title(before) and not any(
            self._token_score(before, fold(g), g, alone=False) > 0 for g in given
        )

    def _preceded_by(self, toks: list[_Tok], j: int, lead: str) -> bool:
        """Whether the particle stands right before content token j ("Abu Grein")."""
        start = toks[j - 1][1] if j > 0 else 0
        words = [particle(w) for w in _TOKEN.findall(self._text[start : toks[j][0]])]
        return lead in words

    def _joined(self, toks: list[_Tok], j: int, joiner: re.Pattern[str]) -> bool:
        """Whether content tokens j and j + 1 may be parts of one name (remembered for the text)."""
        key = (j, joiner is _JOINER)
        joined = self._joins.get(key)
        if joined is None:
            joined = self._joins[key] = _gap_fits(self._text[toks[j][1] : toks[j + 1][0]], joiner)
        return joined

    def _is_surname(self, form: _Form, pos: int) -> bool:
        watch = form.watch
        return (
            watch.id in self._surname
            and form.how == "exact"
            and pos == len(form.trans) - 1
            and len(form.trans) > 1
        )

    def _shared_surname(self, wid: str) -> bool:
        """Whether another watched person has this surname."""
        return self._surname_count[self._surname[wid]] > 1

    @staticmethod
    def _labels(text: str, entities: Sequence[Entity]) -> dict[int, Entity]:
        """spaCy's entity covering each character offset."""
        out: dict[int, Entity] = {}
        for e in entities:
            for k in range(e.start, e.end):
                out[k] = e
        return out

    def _label_fits(self, watch: Watch, labels: dict[int, Entity], start: int) -> bool | None:
        entity = labels.get(start)
        if entity is None:
            return None
        return entity.label in (ACTOR_LABELS if watch.kind == "actor" else LOCATION_LABELS)

    def _inside_a_person(
        self, labels: dict[int, Entity], toks: list[_Tok], c: _Cand, cands: list[_Cand]
    ) -> bool:
        """Whether spaCy reads a place's name as the family name ending a longer person's name ("Omar
        Benghazy"): not when it reads two names run together ("Fayez al-Sarraj Tripoli" in a caption)."""
        start, end = toks[c.first][0], toks[c.last][1]
        entity = labels.get(start)
        if entity is None or entity.label != "PERSON" or entity.end != end or entity.start == start:
            return False
        words = {fold(w) for w in _TOKEN.findall(self._text[entity.start : start])} - PARTICLES
        return bool(words) and not any(
            o.form.watch.id != c.form.watch.id and entity.start <= toks[o.first][0] < start for o in cands
        )

    def _other_bearers(self, toks: list[_Tok], watch_id: str) -> tuple[bool, bool]:
        """Whether the text names this person in full, and whether it names someone else of that surname."""
        surname, given = self._surname[watch_id], self._given[watch_id]
        ours = theirs = False
        for j in sorted(self._surname_seen[watch_id]):
            tok = toks[j]
            if j == 0:
                continue
            if self._token_score(tok, fold(surname), surname) == 0:
                continue
            prev = toks[j - 1]
            if not may_be_name(prev[2]) or _is_title(prev):
                continue
            if not self._joined(toks, j - 1, _JOINER):
                continue
            if any(self._token_score(prev, fold(g), g, alone=False) > 0 for g in given):
                if self._in_anothers_name(toks, j - 1, given) or not self._given_in_full(toks, j - 1, given):
                    theirs = True
                else:
                    ours = True
            elif (
                prev[4] != surname
                and prev[3] not in _SENTENCE_WORDS
                and (prev[2].isascii() or not _ABJAD.search(prev[2]))
            ):
                theirs = True
            elif _ARABIC.search(prev[2]) and fold(prev[2]) in _ARABIC_GIVEN_NAMES:
                # Arabic has no capitals to tell a given name from the noun before a surname ("قوات
                # حفتر", Haftar's forces): only a word known as a given name makes another bearer.
                theirs = True
        return ours, theirs

    def _decide(
        self, text: str, toks: list[_Tok], cands: list[_Cand], labels: dict[int, Entity]
    ) -> list[WatchMatch]:
        accepted: list[_Cand] = []
        bearers: dict[str, tuple[bool, bool]] = {}
        # Watched places by the token they start at, and (negated) by the one after their end.
        places: dict[int, set[str]] = defaultdict(set)
        for c in cands:
            if c.form.watch.kind == "location":
                places[c.first].add(c.form.watch.id)
                places[-(c.last + 1)].add(c.form.watch.id)
        # A place's name after an honorific is a person's (Dr. Marib): so is every bare one in the article.
        persons = {
            c.form.watch.id
            for c in cands
            if c.form.watch.kind == "location"
            and _HONORIFIC.search(text[max(0, toks[c.first][0] - 12) : toks[c.first][0]])
        }
        # A family name before a word for a place names that place (the al-Sarraj district): so does every
        # bare one in the article ("Residents of al-Sarraj").
        named_after = {
            c.form.watch.id
            for c in cands
            if c.surname_only and _PLACE_WORD_AFTER.match(text, toks[c.last][1])
        }
        for c in cands:
            start = toks[c.first][0]
            if c.form.watch.id in persons and c.first == c.last:
                continue
            # spaCy's label is evidence for a name, never against one: the small English model gives the
            # wrong kind to one correct match in nine (Kidal as NORP, Ménaka and Al Hudaydah as PERSON).
            if (
                c.how in {"variant", "surname"}
                and c.score < VARIANT_SURE
                and not self._label_fits(c.form.watch, labels, start)
            ):
                continue  # borderline spelling: only when spaCy agrees it is the right kind of name
            if self._described(text, toks, c):
                continue
            if c.form.watch.kind == "location" and self._inside_a_person(labels, toks, c, cands):
                continue  # a family name taken from a place is not the place
            if c.form.watch.kind == "location" and not self._arabic_place_fits(toks, c, places):
                continue
            if c.form.watch.kind == "location" and self._another_thing(text, start, toks[c.last][1]):
                continue
            if (
                c.how in ("variant", "gazetteer")
                and c.form.watch.id in self._ends_in_a
                and toks[c.last][4][-1:] not in _VOWELS
            ):
                continue  # Tarhuna keeps its -a in any language, whatever GeoNames lists (Тархун: tarragon)
            if (
                c.form.watch.id in self._surname
                and not c.surname_only
                and self._in_anothers_name(toks, c.first, self._given[c.form.watch.id])
            ):
                continue  # بلقاسم خليفة حفتر, engineer Belgassem Khalifa Haftar: a son of Khalifa Haftar
            if c.surname_only and c.form.watch.id in named_after:
                continue
            if c.surname_only:
                wid = c.form.watch.id
                if wid not in bearers:
                    bearers[wid] = self._other_bearers(toks, wid)
                ours, theirs = bearers[wid]
                if theirs and not ours:
                    continue  # "Gaddafi" in a story about Muammar is not Saif al-Islam
                if not ours and self._shared_surname(wid):
                    continue  # two watched Gaddafis and neither named in full: a bare "Gaddafi" is neither
                if not ours and wid in self._compound_given:
                    continue  # a bare "Gaddafi" without Saif al-Islam named is his father
                if (
                    not ours
                    and _ABJAD.search(toks[c.first][2])
                    and len(consonants(self._surname[wid])) < 4
                    and not self._known_in_arabic(toks, c)
                ):
                    # Without capitals an Arabic word is as likely a noun as a name, and three consonants
                    # meet some watched surname in a large watchlist (التحقيق, الطريق, القرار). Such a bare
                    # surname counts when the article names the person in full or writes a watched form;
                    # a longer one (حفتر) stands alone.
                    continue
            accepted.append(c)
        # A long name in lower case may be a common phrase ("the government of national accord" some
        # country needs): it counts beside a name written as names are.
        named = [c for c in accepted if may_be_name(toks[c.first][2]) or c.form.raw[0][0].islower()]
        if len(named) < len(accepted):
            accepted = accepted if named else []
        # Longest, then best, claim on each stretch of text wins; a watch may be named by several forms.
        accepted.sort(key=lambda c: (c.first, -(c.last - c.first), -c.score))
        chosen: list[_Cand] = []
        taken: dict[str, int] = {}
        claimed_end = -1
        claimed_start = -1
        for c in accepted:
            wid = c.form.watch.id
            if taken.get(wid, -1) >= c.first:
                continue
            if c.first <= claimed_end and not (c.first == claimed_start and c.last == claimed_end):
                continue
            taken[wid] = c.last
            claimed_start, claimed_end = c.first, c.last
            chosen.append(c)
        return [self._as_match(toks, c) for c in self._supported(toks, chosen, labels)]


def _script(word: str) -> str:
    """The Unicode script of a word's first letter, as a reader names it ("Arabic", "Cyrillic")."""
    letter = next((c for c in word if c.isalpha()), "")
    return unicodedata.name(letter, "UNKNOWN").split()[0].title() if letter else "Unknown"


def _other_script_note(word: str, targets: Sequence[str]) -> str | None:
    """How a word in another script, or in another language's Latin spelling, met the name."""
    t = translit(word)
    if _script(word) == "Latin":
        # Only a spelling habit undone counts here; case endings and respellings are told below.
        habit = next((r for r in script_variants(word) if r in targets and t not in targets), None)
        return f"{word!r} read as another language spells it: {habit!r}" if habit else None
    readings = [
        r for r in (t, *script_variants(word)) if r in targets or consonants(r) in map(consonants, targets)
    ]
    if not readings:
        return None
    r = readings[0]
    target = next((x for x in targets if x == r), None) or next(
        x for x in targets if consonants(x) == consonants(r)
    )
    how = f"{word!r} is {_script(word)} script, transliterated {t!r}"
    if r != t:
        how += f", read without its prefix as {r!r}" if _ARABIC.search(word) else f", read as {r!r}"
    if _ARABIC.search(word):
        how += f"; its consonants {consonants(r)!r} are {target!r}'s, its written vowels in place"
    return how


def explain(match: WatchMatch, watch: Watch, label: str | None) -> str:
    """Why a match fired, in words an analyst can check against the text."""
    surface = [t for t in _TOKEN.findall(match.text) if fold(t) not in PARTICLES]
    forms = [watch.name, *watch.aliases]
    reasons: list[str] = []
    if match.how == "exact":
        reasons.append(f"the watch's name {watch.name!r}")
    elif match.how == "alias":
        alias = next(
            (a for a in watch.aliases if fold(a) in fold(match.text) or _is_acronym(a)), watch.aliases[0]
        )
        reasons.append(
            f"the alias {alias!r}" + (" (an acronym: matched as written)" if _is_acronym(alias) else "")
        )
    elif match.how == "defined":
        reasons.append(f"an acronym the article spells out as a name of {watch.name!r}")
    elif match.how == "gazetteer":
        reasons.append(f"a name GeoNames gives the place {watch.name!r}")
    elif match.how == "surname":
        reasons.append(f"the surname alone of {watch.name!r}; the text names no one else of that surname")
    else:
        reasons.append(f"a spelling variant of {', '.join(repr(f) for f in forms)}")
    notes: list[str] = []
    for word in surface:
        t = translit(word)
        targets = [translit(w) for f in forms for w in _TOKEN.findall(f) if fold(w) not in PARTICLES]
        if fold(word) in {fold(w) for f in forms for w in _TOKEN.findall(f)}:
            continue
        if note := _other_script_note(word, targets):
            notes.append(note)
        elif t in targets:
            notes.append(f"{word!r} is the same name in another transliteration (folded: {t!r})")
        elif cut := [s for s in stems(t)[1:] for x in targets if s in (x, x.rstrip("aeiou"))]:
            notes.append(f"{word!r} carries a case ending (stem: {cut[0]!r})")
        else:
            best = max(targets, key=lambda x: similarity(t, x)) if targets else ""
            notes.append(
                f"{word!r} ~ {best!r}: same consonants {skeleton(t)!r}, similarity {similarity(t, best):.2f}"
            )
    order = [skeleton(translit(w)) for w in surface]
    name_order = [skeleton(translit(w)) for w in _TOKEN.findall(watch.name) if fold(w) not in PARTICLES]
    if len(order) > 1 and set(order) <= set(name_order) and order != [w for w in name_order if w in order]:
        notes.append("name parts in another order")
    spacy = f"spaCy: {label}" if label else "spaCy: no entity here"
    return "; ".join([*reasons, *notes, f"score {match.score:.2f}", spacy])
