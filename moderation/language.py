"""The language of a transcript slice, and when it is not to be trusted.

A recogniser that detects the language (multilingual Whisper) reports a code and a
probability per slice; the slice keeps both (``AudioSlice.language``,
``language_confidence``) so that a reviewer sees what the transcript and the text rules
stood on. A low probability means the transcript itself is doubtful: such a slice is
*marked* in the console and the API (``language_uncertain``), never silently trusted.
"""

from __future__ import annotations

# Below this probability (0..1) the detected language, and so the transcript, is doubtful.
# Whisper reports ~0.9+ for clear speech in a language it knows; mixed or noisy audio,
# or a language it hears badly (synthetic Mandarin), comes out lower.
LOW_CONFIDENCE = 0.5


def is_uncertain(language: str, confidence: float | None) -> bool:
    """Whether a slice's detected language is too doubtful to trust its transcript.

    Unknown (no language, no probability) is not "uncertain": the recogniser did not say.
    """
    return bool(language) and confidence is not None and confidence < LOW_CONFIDENCE


def describe(language: str, confidence: float | None) -> str:
    """``"zh 42%"``, ``"en"`` or ``""``: how the console shows a slice's language."""
    if not language:
        return ""
    return language if confidence is None else f"{language} {confidence * 100:.0f}%"
