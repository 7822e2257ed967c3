"""One vocabulary: which label a category of words gets in each channel.

Words are found in three ways: OCR of the text in an image or frame, a speech transcript
(ASR), keyword spotting in audio (KWS). The same category must read as the same *family*
whichever found it, or a phrase said and the same phrase written would be judged apart.

The scheme follows Alibaba Content Moderation 2.0 (shared/specs/aliyun-labels.json):

* the **family** is the category's label in Alibaba's 2.0 text/audio vocabulary (``ad``,
  ``profanity``, ``contraband``, ``violence``, ``political_content``, ``sexual_content``,
  ``religion``; ``C_customized`` for a site's own word list);
* **speech** (ASR transcripts and KWS hits alike) is labelled with the family itself, as
  Alibaba's audio service does, so local and Alibaba speech results read alike;
* **OCR** keeps the image service's name, ``<category>_tii`` (``pt_toDirectContact_tii``,
  ``contraband_drug_tii``, ``my_words_tii``).

A keyword category (``MODERATION["KEYWORDS"]``) takes its family from its 2.0 prefix
(``contraband_drug`` -> ``contraband``); a name with no 2.0 prefix is a custom list. The
table is rendered in docs/providers.md ("One vocabulary") and read by tests/unit/test_vocabulary.py.
"""

from __future__ import annotations

from dataclasses import dataclass

OCR, SPEECH = "ocr", "speech"  # ASR transcripts and keyword spotting are both SPEECH
CHANNELS = (OCR, SPEECH)
OCR_SUFFIX = "_tii"
CUSTOM = "C_customized"

# Built-in text rules (text_rules.py, speech_rules.py): category -> family and OCR label.
CONTACT_CATEGORY, PROFANITY_CATEGORY = "pt_toDirectContact", "profanity_offensive"


@dataclass(frozen=True)
class Entry:
    """One row of the table: a category and its label per channel."""

    category: str
    family: str
    ocr: str
    speech: str
    meaning: str = ""

    def label(self, channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; one of {CHANNELS}")
        return self.ocr if channel == OCR else self.speech


#: 2.0 category prefix -> family (first match wins; ``political_religion`` is political).
PREFIX_FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("pt_", "ad", "traffic diversion, advertising"),
    ("profanity", "profanity", "profanity, abuse"),
    ("contraband_", "contraband", "drugs, gambling, other prohibited goods"),
    ("violent_", "violence", "violence, weapons, terror"),
    ("political_", "political_content", "political content"),
    ("pornographic_", "sexual_content", "sexual content"),
    ("sexual_", "sexual_content", "sexual content"),
    ("religion", "religion", "religious content"),
)

#: The built-in rules' categories, and an example keyword category per 2.0 prefix.
BUILTIN: dict[str, Entry] = {
    CONTACT_CATEGORY: Entry(
        CONTACT_CATEGORY, "ad", "pt_toDirectContact_tii", "ad",
        "contact details, traffic diversion (URLs, e-mail, phone, 加微信, QQ)",
    ),
    PROFANITY_CATEGORY: Entry(
        PROFANITY_CATEGORY, "profanity", "profanity_offensive_tii", "profanity",
        "profanity and insults (English, Chinese)",
    ),
}


def entry(category: str) -> Entry:
    """The row of a built-in rule category or of a configured keyword category.

    A keyword category may be given with its ``_tii`` suffix (``contraband_drug_tii``).
    """
    base = category.removesuffix(OCR_SUFFIX)
    if base in BUILTIN:
        return BUILTIN[base]
    family, meaning = next(
        ((fam, text) for prefix, fam, text in PREFIX_FAMILIES if base.startswith(prefix)),
        (CUSTOM, "a site's own word list"),
    )
    return Entry(base, family, base + OCR_SUFFIX, family, meaning)


def label_for(category: str, channel: str) -> str:
    """The label a category's words get when found by ``channel`` (OCR or SPEECH)."""
    return entry(category).label(channel)


def family_of(label: str) -> str:
    """The family of any label of the table, in either channel; a label outside it (an
    image detector's ``pt_qrCode``, a provider's ``sexual_sounds``) is its own family."""
    return entry(label).family if label.endswith(OCR_SUFFIX) else label


def speech_label(ocr_label: str) -> str:
    """The speech label of the family an OCR label belongs to (``contraband_drug_tii`` ->
    ``contraband``): how a shared text-rule hit on a transcript is named."""
    return label_for(ocr_label, SPEECH)


def table(keywords: dict[str, list[str]] | None = None) -> list[Entry]:
    """The rows in force: the built-ins, then each configured keyword category."""
    rows = list(BUILTIN.values())
    rows.extend(entry(category) for category in (keywords or {}))
    return rows
