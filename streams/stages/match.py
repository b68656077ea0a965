"""The watchlist matcher: whole-word names, aliases and surnames, found in one pass over the tokens."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from streams.records import WatchMatch
from streams.stages.watchlist import Watch


class Matcher(Protocol):
    """What the extractor, the CLI and replay need of any matcher."""

    def match(self, text: str) -> list[WatchMatch]: ...


_TOKEN = re.compile(r"[^\W_]+")
# Between two words of one name only spaces, hyphens and apostrophes may stand ("al-Jufra").
_JOINER = re.compile(r"[\s\-\u2010\u2011\u2012\u2013'\u2019]+")
# Words that make an actor's name an organisation's, whose last word is no surname ("Wagner Group").
_ORG_WORDS = frozenset(
    [
        "group",
        "army",
        "force",
        "forces",
        "front",
        "council",
        "government",
        "party",
        "movement",
        "brigade",
        "brigades",
        "battalion",
        "ministry",
        "company",
        "corporation",
        "agency",
        "union",
        "committee",
        "organisation",
        "organization",
        "authority",
        "militia",
        "alliance",
        "coalition",
        "national",
        "nations",
        "guard",
        "command",
        "bank",
        "office",
        "court",
    ]
)
# Particles that are part of a name but never a surname on their own.
_PARTICLES = frozenset({"al", "el", "bin", "ibn", "abu", "abd", "de", "van", "von", "der"})


def fold(token: str) -> str:
    """Case- and accent-insensitive form of one token."""
    decomposed = unicodedata.normalize("NFKD", token.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@dataclass(frozen=True)
class _Pattern:
    watch: Watch
    tokens: tuple[str, ...]
    how: str
    score: float
    # Acronyms match case-sensitively: "GNA" yes, "gna" no.
    exact_case: tuple[str, ...] | None = None
    # A surname alone must be written as a name (capitalised) to count.
    needs_capital: bool = False


def _is_acronym(alias: str) -> bool:
    letters = [c for c in alias if c.isalpha()]
    return 2 <= len(letters) <= 6 and all(c.isupper() for c in letters) and " " not in alias


def _surname(watch: Watch) -> str | None:
    words = [w for w in _TOKEN.findall(watch.name)]
    if watch.kind != "actor" or len(words) < 2 or _is_acronym(watch.name):
        return None
    if any(fold(w) in _ORG_WORDS for w in words) or not all(
        w[0].isupper() or fold(w) in _PARTICLES for w in words
    ):
        return None
    last = words[-1]
    return None if fold(last) in _PARTICLES or len(last) < 3 else last


def _patterns(watch: Watch) -> list[_Pattern]:
    out = [_Pattern(watch, tuple(fold(t) for t in _TOKEN.findall(watch.name)), "exact", 1.0)]
    for alias in watch.aliases:
        raw = tuple(_TOKEN.findall(alias))
        if not raw:
            continue
        out.append(
            _Pattern(
                watch,
                tuple(fold(t) for t in raw),
                "alias",
                0.95,
                exact_case=raw if _is_acronym(alias) else None,
            )
        )
    surname = _surname(watch)
    if surname:
        out.append(_Pattern(watch, (fold(surname),), "surname", 0.8, needs_capital=True))
    return [p for p in out if p.tokens]


class TokenMatcher:
    """Indexes every pattern by its first token, so cost grows with the text, not the watchlist."""

    def __init__(self, watches: Sequence[Watch]) -> None:
        self._index: dict[str, list[_Pattern]] = defaultdict(list)
        for watch in watches:
            for pattern in _patterns(watch):
                self._index[pattern.tokens[0]].append(pattern)
        for bucket in self._index.values():
            # Longest first, so "Khalifa Haftar" wins over "Haftar" at the same place.
            bucket.sort(key=lambda p: (-len(p.tokens), -p.score))

    def _fits(self, text: str, spans: list[tuple[int, int, str, str]], i: int, p: _Pattern) -> bool:
        n = len(p.tokens)
        if i + n > len(spans):
            return False
        for k in range(n):
            start, _, raw, folded = spans[i + k]
            if folded != p.tokens[k] or (p.exact_case is not None and raw != p.exact_case[k]):
                return False
            if k and not _JOINER.fullmatch(text, spans[i + k - 1][1], start):
                return False
        return not (p.needs_capital and not spans[i][2][0].isupper())

    def match(self, text: str) -> list[WatchMatch]:
        spans = [(m.start(), m.end(), m.group(), fold(m.group())) for m in _TOKEN.finditer(text)]
        found: list[WatchMatch] = []
        i = 0
        while i < len(spans):
            bucket = self._index.get(spans[i][3])
            width = 0
            if bucket:
                for p in bucket:
                    if width and len(p.tokens) < width:
                        break
                    if self._fits(text, spans, i, p):
                        # Same length and place: every watch sharing this form is named (two Gaddafis).
                        if any(m.watch == p.watch.id and m.start == spans[i][0] for m in found):
                            continue
                        width = len(p.tokens)
                        start, end = spans[i][0], spans[i + width - 1][1]
                        found.append(
                            WatchMatch(
                                watch=p.watch.id,
                                kind=p.watch.kind,
                                text=text[start:end],
                                start=start,
                                end=end,
                                how=p.how,
                                score=p.score,
                            )
                        )
            i += width or 1
        return found
