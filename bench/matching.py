"""Matcher benchmark: precision and recall on the labelled corpus, and time per article as watchlists grow.

Run: python bench/matching.py [--no-ner]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.names.evaluation import article_text, evaluate, load_corpus, spacy_ner  # noqa: E402
from streams.names.gazetteer import resolve  # noqa: E402
from streams.names.match import VariantMatcher  # noqa: E402
from streams.names.watchlist import Watch, load_watchlist  # noqa: E402
from streams.settings import DEFAULT_MODEL  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"
ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "kh",
    "l",
    "m",
    "n",
    "p",
    "q",
    "r",
    "s",
    "sh",
    "t",
    "v",
    "z",
    "zh",
    "dr",
    "gr",
    "tr",
    "br",
    "kr",
    "st",
)
VOWELS = ["a", "e", "i", "o", "u", "ou", "ia", "ai", "ei"]
CODAS = ["", "", "", "n", "r", "m", "l", "k", "sh", "t", "v", "d"]


def synthetic_watches(n: int, seed: int = 7) -> list[Watch]:
    """n watches with made-up but name-shaped people and places, plus the real corpus watchlist."""
    rng = random.Random(seed)
    real = load_watchlist(CORPUS / "watchlist.yaml")
    out = list(real)
    seen = {w.id for w in out}
    while len(out) < n:
        word = lambda k: "".join(  # noqa: E731
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(k)
        ).capitalize()
        if rng.random() < 0.6:
            name, kind = f"{word(2)} {word(rng.choice((2, 3)))}", "actor"
        else:
            name, kind = word(rng.choice((2, 3))), "location"
        wid = name.lower().replace(" ", "-")
        if wid not in seen:
            seen.add(wid)
            out.append(Watch(wid, kind, name))
    return out[:n]


def by_language(split: str) -> list[tuple[str, Path]]:
    """The multilingual corpus's files of one split ("tuning" or "heldout"), by language code."""
    return [(f.stem, f) for f in sorted((CORPUS / "multilingual" / split).glob("*.yaml"))]


def thousand_words(path: Path = CORPUS / "articles.yaml") -> str:
    texts = [article_text(a) for a in load_corpus(path)]
    words: list[str] = []
    for t in texts:
        words += t.split()
        if len(words) >= 1000:
            break
    return " ".join(words[:1000])


def time_matching(n: int, text: str, repeats: int = 200) -> tuple[float, float, float, int]:
    matcher = VariantMatcher(synthetic_watches(n))
    found = len(matcher.match(text))  # also warms the per-word caches, as a long-running worker has them
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        matcher.match(text)
        times.append((time.perf_counter() - t0) * 1000)
    cold = VariantMatcher(synthetic_watches(n))
    from streams.names import match as m

    for cached in (m.translit, m.skeleton, m.stems, m.similarity, m.script_variants, m.token_keys, m._keys):
        cached.cache_clear()
    m._WORDS.clear()
    # A full collection of the heap the rest of the benchmark built (spaCy's model, Babel's locales) is
    # not the matcher's cost: collect now, not inside the one timed run.
    gc.collect()
    t0 = time.perf_counter()
    cold.match(text)
    return statistics.median(times), min(times), (time.perf_counter() - t0) * 1000, found


def calibration(repeats: int = 200) -> tuple[float, float]:
    """A fixed pure-Python loop timed like the matcher: its spread is the machine's, not the code's."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        total = 0
        for k in range(50_000):
            total += k * k
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-ner", action="store_true", help="score the matcher without spaCy's labels")
    parser.add_argument(
        "--held-out", action="store_true", help="also score the held-out third (only when the rules are done)"
    )
    args = parser.parse_args()

    articles = load_corpus(CORPUS / "articles.yaml")
    watches = load_watchlist(CORPUS / "watchlist.yaml")
    ner = None if args.no_ner else spacy_ner(DEFAULT_MODEL)
    # As a worker matches by default (settings.gazetteer): with the places' GeoNames names and region.
    report = evaluate(articles, watches, ner, resolve(watches))
    print(f"corpus: {len(articles)} articles, {len(watches)} watches, NER {'off' if ner is None else 'on'}")
    print(f"precision {report.precision:.3f}  recall {report.recall:.3f}  ({report.hits} hits)")
    for article, watch in report.misses:
        print(f"  miss:        {article}: {watch}")
    for article, watch in report.false_alarms:
        print(f"  false alarm: {article}: {watch}")

    # Issue 13's real-style English corpus: the same watchlist, texts full of traps, with and without NER.
    places = resolve(watches)
    for split in ("tuning", "heldout", "heldout2") if args.held_out else ("tuning",):
        path = CORPUS / "english" / f"{split}.yaml"
        if not path.exists():
            continue
        texts = load_corpus(path)
        print(f"\nEnglish real-style corpus, {split} set ({len(texts)} texts):")
        for label, model in (("NER on ", ner), ("NER off", None)):
            r = evaluate(texts, watches, model, places)
            print(
                f"  {label}: precision {r.precision:.3f}  recall {r.recall:.3f}"
                f"  ({r.hits} hits, {len(r.false_alarms)} false alarms, {len(r.misses)} misses)"
            )
            for article, watch in r.misses:
                print(f"    miss:        {article}: {watch}")
            for article, watch in r.false_alarms:
                print(f"    false alarm: {article}: {watch}")

    multilingual = load_watchlist(CORPUS / "multilingual" / "watchlist.yaml")
    places = resolve(multilingual)
    for split in ("tuning", "heldout", "heldout2") if args.held_out else ("tuning",):
        print(f"\nmultilingual corpus, {split} set (matcher alone: no NER model for these languages):")
        for lang, path in by_language(split):
            texts = load_corpus(path)
            r = evaluate(texts, multilingual, None, places)
            print(
                f"  {lang}: {len(texts):>2} texts  precision {r.precision:.3f}  recall {r.recall:.3f}"
                f"  ({r.hits} hits, {len(r.false_alarms)} false alarms, {len(r.misses)} misses)"
            )

    print("\nmatching one 1,000-word article on one core (200 runs with warm per-word caches, as a")
    print("long-running worker has them; then one run with every cache emptied):")
    median, best = calibration()
    print(f"  calibration loop: median {median:5.2f} ms  best {best:5.2f} ms  (machine noise: median/best)")
    for name, text in (
        ("English", thousand_words()),
        ("Arabic", thousand_words(CORPUS / "multilingual" / "tuning" / "ar.yaml")),
    ):
        for n in (10, 1_000, 10_000):
            median, best, cold, found = time_matching(n, text)
            print(
                f"  {name:<7} {n:>6} watches: median {median:5.2f} ms  best {best:5.2f} ms"
                f"  cold {cold:5.2f} ms  ({found} matches)"
            )


if __name__ == "__main__":
    main()
