"""The label table: each label's default risk level and confidence threshold.

Label names follow Alibaba Content Moderation 2.0 so that results of every provider read
alike. ``MODERATION["LABELS"]`` overrides entries (``{"pt_qrCode": {"risk_level": "high"}}``).
Suffixes: ``<label>_tii`` is text in the image (OCR), ``<label>_lib`` a hash-library hit.
Words found in speech carry the family name of :mod:`.vocabulary` (``ad``, ``contraband``);
each family's speech label has the risk level of its OCR labels, so a phrase said and the
same phrase written weigh the same (tests/unit/test_vocabulary.py holds the table to that).
Unknown labels count as ``medium`` at any confidence, so nothing new slips through silently.

Descriptions are plain English strings marked with ``gettext_noop`` (extracted into
moderation/locale, never translated at import): the emulator and the stored results keep
them as they are; :func:`label_name` translates one for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext

from .providers.result import RISK_LEVELS, Label
from .vocabulary import CUSTOM, PREFIX_FAMILIES, family_of


def gettext_noop(message: str) -> str:
    """Mark ``message`` for makemessages (the ``gettext_noop`` keyword) like Django's, which
    reads settings when called: this table must import without Django configured."""
    return message


@dataclass(frozen=True)
class LabelRule:
    risk_level: str
    min_confidence: float  # 0..100; below it the label is kept but carries no risk
    description: str = ""  # English, marked for translation; shown through label_name()


DEFAULT_LABELS: dict[str, LabelRule] = {
    "nonLabel": LabelRule("none", 0, gettext_noop("no risk detected")),
    "nonLabel_lib": LabelRule("none", 0, gettext_noop("matched an allow-list image")),
    "pornographic_adultContent": LabelRule(
        "high", 50, gettext_noop("exposed genitals, anus or female breast")
    ),
    "sexual_partialNudity": LabelRule("medium", 50, gettext_noop("exposed buttocks")),
    "sexual_suggestiveContent": LabelRule("low", 50, gettext_noop("covered intimate parts")),
    "pt_qrCode": LabelRule("medium", 50, gettext_noop("a QR code")),
    "pt_toDirectContact_tii": LabelRule(
        "medium", 50, gettext_noop("text with contact details or traffic diversion")
    ),
    "profanity_offensive_tii": LabelRule("medium", 50, gettext_noop("profanity in text")),
    # Speech: the families of vocabulary.py, as Alibaba 2.0 audio names them. The built-in
    # rules' families weigh like their OCR labels (medium); keyword families like "_tii".
    "profanity": LabelRule("medium", 50, gettext_noop("profanity in speech")),
    "ad": LabelRule("medium", 50, gettext_noop("advertising or traffic diversion in speech")),
    CUSTOM: LabelRule("high", 50, gettext_noop("a configured keyword in speech")),
    **{
        family: LabelRule("high", 50, f"{meaning} in speech")
        for _, family, meaning in PREFIX_FAMILIES
        if family not in ("ad", "profanity")
    },
}

# Families matched by suffix when a label has no entry of its own.
SUFFIX_RULES: dict[str, LabelRule] = {
    "_lib": LabelRule("high", 0, gettext_noop("matched a block-list image")),
    "_tii": LabelRule("high", 50, gettext_noop("configured keyword in text")),
}
UNKNOWN_RULE = LabelRule("medium", 0, gettext_noop("label without a rule"))

# The speech families' descriptions above are built from vocabulary.py; listed here so that
# makemessages finds them (tests/admin/test_locale.py checks that every description of the
# table has a translation).
SPEECH_FAMILY_DESCRIPTIONS = (
    gettext_noop("drugs, gambling, other prohibited goods in speech"),
    gettext_noop("violence, weapons, terror in speech"),
    gettext_noop("political content in speech"),
    gettext_noop("sexual content in speech"),
    gettext_noop("religious content in speech"),
)


def label_name(label: str) -> str:
    """A label's human name in the active language: its rule's description, translated
    (``pt_qrCode`` -> "a QR code", "二维码"); the code itself when the rule has none."""
    description = rule_for(label).description
    return gettext(description) if description else label


def rule_for(label: str) -> LabelRule:
    """A label's rule: its own entry, else its vocabulary family's (a keyword found by OCR
    weighs what the same words said weigh), else its suffix's. ``LABELS`` overrides by the
    label's own name first, then by its family's (``{"contraband": ...}`` covers
    ``contraband_drug_tii`` too)."""
    family = family_of(label)
    base = DEFAULT_LABELS.get(label)
    if base is None and family in DEFAULT_LABELS:
        kin = DEFAULT_LABELS[family]
        base = LabelRule(kin.risk_level, kin.min_confidence, SUFFIX_RULES["_tii"].description)
    if base is None:
        base = next(
            (rule for suffix, rule in SUFFIX_RULES.items() if label.endswith(suffix)),
            UNKNOWN_RULE,
        )
    overrides = label_overrides()
    override = overrides.get(label) or overrides.get(family)
    if override:
        base = LabelRule(
            risk_level=override.get("risk_level", base.risk_level),
            min_confidence=float(override.get("min_confidence", base.min_confidence)),
            description=override.get("description", base.description),
        )
    return base


def label_overrides() -> dict[str, dict[str, Any]]:
    """``MODERATION["LABELS"]``, read from the settings directly: this module is a value
    table that imports nothing else of the app (not ``conf``), so providers may use it."""
    return (getattr(settings, "MODERATION", None) or {}).get("LABELS") or {}


def risk_of(label: str, confidence: float) -> str:
    """Risk level a label carries at a confidence (``none`` below the threshold)."""
    rule = rule_for(label)
    return rule.risk_level if confidence >= rule.min_confidence else "none"


def make_label(
    name: str, confidence: float, service: str, scene: str, description: str = ""
) -> Label:
    """A Label whose risk level follows the table (every engine labels through here)."""
    confidence = round(float(confidence), 2)
    return Label(label=name, confidence=confidence, risk_level=risk_of(name, confidence),
                 service=service, scene=scene, description=description)


def validate_overrides(overrides: dict) -> list[str]:
    """Problems in a ``LABELS`` setting, as readable strings (used by system checks)."""
    if overrides is not None and not isinstance(overrides, dict):
        return [f"must be a dict of label -> options, got {type(overrides).__name__}"]
    problems = []
    for label, conf in (overrides or {}).items():
        if not isinstance(conf, dict):
            problems.append(f"{label}: expected a dict, got {type(conf).__name__}")
            continue
        level = conf.get("risk_level")
        if level is not None and level not in RISK_LEVELS:
            problems.append(f"{label}: risk_level {level!r} is not one of {RISK_LEVELS}")
        conf_min = conf.get("min_confidence")
        if conf_min is not None and not (
            isinstance(conf_min, int | float) and 0 <= conf_min <= 100
        ):
            problems.append(f"{label}: min_confidence must be a number in 0..100")
    return problems
