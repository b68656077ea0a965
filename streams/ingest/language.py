"""The language of an article, identified from its text by py3langid's model, with metadata as a hint."""

from __future__ import annotations

import functools
import re
from typing import Any

#: Enough of an article to tell its language: the cost grows with the text and 1,500 characters are plenty.
SAMPLE_CHARS = 1500
#: Below this many letters the text says too little: the page's or feed's declared language, or none.
MIN_LETTERS = 40
#: A hint wins over the model's choice when the model is less sure than this and ranks the hint near it.
CONFIDENT = 0.9

_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
#: "en-GB", "pt_BR", "ar-LY" -> the ISO 639 code before the region.
_PRIMARY = re.compile(r"^\s*([A-Za-z]{2,3})(?:[-_].*)?$")
#: Metadata codes the model spells otherwise (ISO 639-1 changed these; old pages and feeds still use them).
_RENAMED = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv"}
#: The model's dialect classes reported as their language: a route for "ar" wants Egyptian outlets too.
_MACRO = {"arz": "ar", "ary": "ar", "uzs": "uz"}
#: The model's class for text with no language in it (numbers, code, lists of names).
_NO_LANGUAGE = "zxx"


@functools.cache
def _model() -> Any:
    # Loaded once per process (the cleaner runs in CPU processes, each with its own copy).
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def normalise_code(code: str | None) -> str | None:
    """A declared language ("en-US", "AR", "iw") as the model's lower-case ISO 639 code, or None."""
    found = _PRIMARY.match(code or "")
    if not found:
        return None
    primary = found.group(1).lower()
    return _RENAMED.get(primary, primary)


def identify(text: str, hint: str | None = None) -> str | None:
    """The ISO 639-1 code of the language most of the text is written in.

    `hint` is what the page or feed declares: used when the text is too short to tell, or when the model
    hesitates between it and another language; a page that declares English while its text is Arabic is
    Arabic.
    """
    sample = text[:SAMPLE_CHARS]
    declared = normalise_code(hint)
    if len(_LETTERS.findall(sample)) < MIN_LETTERS:
        return declared  # the model's guess on a few words is noise
    ranked = [(_MACRO.get(code, code), p) for code, p in _model().rank(sample)]
    best, confidence = ranked[0]
    if best == _NO_LANGUAGE:
        return declared
    if declared and declared != best and confidence < CONFIDENT and declared in {c for c, _ in ranked[:3]}:
        return declared
    return str(best)
