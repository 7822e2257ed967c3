"""The language of a transcript slice, and when it is not to be trusted.

A recogniser that detects the language (multilingual Whisper) reports a code and a
probability per slice; the slice keeps both (``AudioSlice.language``,
``language_confidence``) so that a reviewer sees what the transcript and the text rules
stood on. A low probability, or a language the text rules do not read, means the rules'
silence on that slice proves nothing: such a slice is *marked* in the console and the API
(``language_uncertain``), never silently trusted.
"""

from __future__ import annotations

from django.utils.translation import gettext

# Below this probability (0..1) the detected language, and so the transcript, is doubtful.
LOW_CONFIDENCE = 0.5
# The languages the text rules read (providers/local/text_rules.py: English and Chinese). A
# transcript in another language passes the rules unread, whatever it says.
RULE_LANGUAGES = frozenset({"en", "zh"})


def doubt(language: str, confidence: float | None) -> str:
    """Why a slice's transcript is not to be trusted by the rules, or "" when it is.

    Unknown (no language) is not doubtful: the recogniser did not say. The probability
    alone does not catch a garbled transcript (Whisper base heard synthetic Mandarin as Thai
    at 0.74 and as English at 0.76, docs/providers.md): a language the rules do not read is
    marked as well, since a misheard language is most often one of those.
    """
    if not language:
        return ""
    if confidence is not None and confidence < LOW_CONFIDENCE:
        return gettext("low language confidence")  # shown in the console: translated
    if language.split("-")[0].casefold() not in RULE_LANGUAGES:
        return gettext("a language the text rules do not read")
    return ""


def is_uncertain(language: str, confidence: float | None) -> bool:
    """Whether a slice's transcript is too doubtful to trust (see :func:`doubt`)."""
    return bool(doubt(language, confidence))


def describe(language: str, confidence: float | None) -> str:
    """``"zh 42%"``, ``"en"`` or ``""``: how the console shows a slice's language."""
    if not language:
        return ""
    return language if confidence is None else f"{language} {confidence * 100:.0f}%"
