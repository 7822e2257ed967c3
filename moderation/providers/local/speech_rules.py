"""Rules for transcripts: the spoken patterns, ``classify_speech`` and ``speech_label``.

Pure functions over a string, no audio and no models. Transcripts have no case or
punctuation and spell things out ("example dot com", "five five five"), so speech gets its
own patterns on top of the shared text rules of :mod:`.text_rules`, whose labels are mapped
to their family's speech label by the one vocabulary (:mod:`moderation.vocabulary`): a
category found in a transcript, by keyword spotting or by OCR reads as the same family.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ...vocabulary import BUILTIN, CONTACT_CATEGORY, CUSTOM, PROFANITY_CATEGORY, SPEECH, label_for
from ...vocabulary import speech_label as vocabulary_speech_label
from .text_rules import SPOKEN_TLDS, View, classify_text, normalise, plain_view, words_view

# The speech labels of the built-in families (Alibaba 2.0 audio names: vocabulary.py).
AD = BUILTIN[CONTACT_CATEGORY].speech
PROFANITY_LABEL = BUILTIN[PROFANITY_CATEGORY].speech
CUSTOMIZED = CUSTOM


@dataclass(frozen=True)
class SpeechRule:
    """A regex over the ``words`` view of a transcript (lower case, one space between words)."""

    name: str
    label: str
    pattern: re.Pattern[str]
    confidence: float


def _speech_rule(name: str, label: str, regex: str, confidence: float) -> SpeechRule:
    return SpeechRule(name, label, re.compile(regex), confidence)


# Words that name no site before "dot com": "the dot com bubble", "polka dot com...".
NOT_A_SITE = r"the|a|an|this|that|these|those|my|your|our|his|her|its|their|polka|whole"
# Mail providers people spell out: "john at gmail dot com".
MAIL_HOSTS = r"g ?mail|yahoo|hotmail|outlook|icloud|proton ?mail|aol|qq"
# Messaging and social apps as a recogniser writes them ("what's app" -> "what s app").
SPOKEN_APPS = (
    r"whats ?app|what s app|we ?chat|telegram|snap ?chat|instagram|insta|tik ?tok|facebook"
    r"|twitter|discord|kik|skype|line|signal|viber"
)
# Insults addressed to someone: "you stupid ...", "you are so dumb".
INSULTS = r"stupid|dumb|ugly|pathetic|worthless|useless|loser|losers|jerk|scumbag|freak"

SPEECH_RULES: tuple[SpeechRule, ...] = (
    # A spelled-out site: "example dot com", "w w w dot example dot net"; in Chinese
    # "example点com", glued to the words around it ("访问example点com").
    _speech_rule(
        "speech.url", AD,
        rf"\b(?!(?:{NOT_A_SITE})\b)[a-z0-9]+ dot (?:{SPOKEN_TLDS})\b(?: dot [a-z]{{2}}\b)?"
        rf"|(?<![a-z0-9])[a-z0-9]+ ?点 ?(?:{SPOKEN_TLDS})(?![a-z0-9])",
        90,
    ),
    _speech_rule("speech.www", AD, r"\b(?:www|double u double u double u) dot [a-z0-9]+\b", 90),
    # A spelled-out e-mail address: "john at gmail dot com".
    _speech_rule(
        "speech.email", AD, rf"\b(?:[a-z0-9]+ )?at (?:{MAIL_HOSTS}) dot (?:{SPOKEN_TLDS})\b", 95
    ),
    # "follow me on instagram", "find me on telegram", "hit me up on snapchat".
    _speech_rule(
        "speech.follow_me", AD,
        rf"\b(?:follow|find|hit|add|message|text|call|reach|contact) me(?: up)? (?:on|at|via) "
        rf"(?:{SPOKEN_APPS})\b",
        85,
    ),
    _speech_rule(
        "speech.link", AD,
        r"\blinks? (?:is |are )?(?:in|down) (?:the|my) (?:description|bio|comments)\b"
        r"|\b(?:click|tap|check|hit) (?:on )?(?:the|this|my) links?\b",
        85,
    ),
    # "buy cheap pills now", misheard as "... know" by the LM; not "buy you know".
    _speech_rule("speech.buy_now", AD, r"\bbuy(?: [a-z0-9']+){1,4} (?:now|(?<!you )know)\b", 85),
    _speech_rule(
        "speech.free_gift", AD,
        r"\bfree (?:i ?phones?|i ?pads?|gift ?cards?|gifts?|money|cash|bitcoin|crypto|samples?"
        r"|v ?bucks|robux)\b",
        70,
    ),
    _speech_rule(
        "speech.promo_code", AD,
        r"\b(?:promo|discount|coupon|referral) codes?\b|\buse my code\b", 75,
    ),
    _speech_rule(
        "speech.insult", PROFANITY_LABEL,
        rf"\byou(?: (?:are|re|is|so|such|a|an|little|fucking))* (?:{INSULTS})\b", 80,
    ),
    _speech_rule(
        "speech.abuse", PROFANITY_LABEL,
        r"\b(?:screw|damn) you\b|\b(?:go to|burn in) hell\b|\bkill yourself\b", 80,
    ),
)

# Shared text rules replaced by a speech rule here: the shared "x dot com" also fires on
# "the dot com bubble", which a transcript says more often than a written text does.
SUPERSEDED_TEXT_RULES = frozenset({"contact.spoken_url"})

# Spoken digits: "five five five oh one oh ...". "oh" and "o" read as zero.
DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
REPEATS = {"double": 2, "triple": 3}
DIGIT_RUN = re.compile(
    r"\b(?:plus )?(?:(?:double|triple) )?(?:{d})(?: (?:(?:double|triple) )?(?:{d}))+\b".format(
        d="|".join(DIGIT_WORDS)
    )
)
PHONE_DIGITS = (7, 15)  # as many digits as a phone number has, local to international
PHONE_CONFIDENCE = 90.0
MAX_SPOKEN_ZEROS = 3  # "oh oh oh ..." is an exclamation, not a number


@dataclass
class SpeechHit:
    """A rule that fired on a transcript, with the speech label it gives (vocabulary.py)."""

    label: str
    confidence: float
    risk_words: list[str] = field(default_factory=list)
    rule: str = ""


def classify_speech(
    text: str, keywords: dict[str, list[str]] | None = None
) -> list[SpeechHit]:
    """Every rule that fires on a transcript: the speech rules plus the shared text rules.

    Shared labels are mapped to speech labels so that both sources agree.
    """
    if not text or not text.strip():
        return []
    words = words_view(plain_view(text))
    hits = [hit for rule in SPEECH_RULES if (hit := _apply(rule, words, text))]
    phones = spoken_phone_numbers(words, text)
    if phones:
        hits.append(SpeechHit(AD, PHONE_CONFIDENCE, phones, "speech.phone"))
    for shared in classify_text(text, keywords):
        if shared.rule not in SUPERSEDED_TEXT_RULES:
            label = speech_label(shared.label)
            hits.append(SpeechHit(label, shared.confidence, shared.risk_words, shared.rule))
    return hits


def speech_label(text_label: str) -> str:
    """The speech label of a shared text-rule label's family (``pt_toDirectContact_tii`` ->
    ``ad``, ``contraband_drug_tii`` -> ``contraband``, ``my_words_tii`` -> ``C_customized``)."""
    return vocabulary_speech_label(text_label)


def keyword_labels(phrase: str, keywords: dict[str, list[str]] | None) -> list[str]:
    """The speech labels of every category that lists ``phrase``: what a keyword-spotting
    hit is labelled, so that it agrees with the same words in a transcript. A phrase no
    category lists (the spotter's own spelling of it) is a custom-list hit."""
    wanted = normalise(phrase)
    labels = [
        label_for(category, SPEECH)
        for category, words in (keywords or {}).items()
        if any(normalise(word) == wanted for word in words)
    ]
    return list(dict.fromkeys(labels)) or [CUSTOMIZED]


def _apply(rule: SpeechRule, words: View, source: str) -> SpeechHit | None:
    found = [
        words.source_span(source, m.start(), m.end()) for m in rule.pattern.finditer(words.text)
    ]
    return SpeechHit(rule.label, rule.confidence, _unique(found), rule.name) if found else None


def spoken_phone_numbers(words: View, source: str) -> list[str]:
    """Runs of spoken digits long enough to be a phone number, as they were said."""
    found = [
        words.source_span(source, m.start(), m.end())
        for m in DIGIT_RUN.finditer(words.text)
        if _is_spoken_phone(m.group())
    ]
    return _unique(found)


def _is_spoken_phone(run: str) -> bool:
    """7 to 15 digits, not mostly "oh", and not someone counting ("one two three ...")."""
    tokens = run.split()
    zeros = sum(token in ("oh", "o") for token in tokens)
    digits = _spoken_digits(tokens)
    low, high = PHONE_DIGITS
    if not low <= len(digits) <= high or zeros > MAX_SPOKEN_ZEROS:
        return False
    steps = {int(b) - int(a) for a, b in itertools.pairwise(digits)}
    return steps not in ({1}, {-1})


def _spoken_digits(tokens: list[str]) -> str:
    digits, repeat = [], 1
    for token in tokens:
        if token in REPEATS:
            repeat = REPEATS[token]
        elif token in DIGIT_WORDS:
            digits.append(DIGIT_WORDS[token] * repeat)
            repeat = 1
    return "".join(digits)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))
