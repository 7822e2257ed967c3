"""The label table: each label's default risk level and confidence threshold.

Label names follow Alibaba Content Moderation 2.0 so that results of every provider read
alike. ``MODERATION["LABELS"]`` overrides entries (``{"pt_qrCode": {"risk_level": "high"}}``).
Suffixes: ``<label>_tii`` is text in the image (OCR), ``<label>_lib`` a hash-library hit.
Words found in speech carry the family name of :mod:`.vocabulary` (``ad``, ``contraband``);
each family's speech label has the risk level of its OCR labels, so a phrase said and the
same phrase written weigh the same (tests/unit/test_vocabulary.py holds the table to that).
Unknown labels count as ``medium`` at any confidence, so nothing new slips through silently.
"""

from __future__ import annotations

from dataclasses import dataclass

from .providers.result import RISK_LEVELS, Label
from .vocabulary import CUSTOM, PREFIX_FAMILIES, family_of


@dataclass(frozen=True)
class LabelRule:
    risk_level: str
    min_confidence: float  # 0..100; below it the label is kept but carries no risk
    description: str = ""


DEFAULT_LABELS: dict[str, LabelRule] = {
    "nonLabel": LabelRule("none", 0, "no risk detected"),
    "nonLabel_lib": LabelRule("none", 0, "matched an allow-list image"),
    "pornographic_adultContent": LabelRule(
        "high", 50, "exposed genitals, anus or female breast"
    ),
    "sexual_partialNudity": LabelRule("medium", 50, "exposed buttocks"),
    "sexual_suggestiveContent": LabelRule("low", 50, "covered intimate parts"),
    "pt_qrCode": LabelRule("medium", 50, "a QR code"),
    "pt_toDirectContact_tii": LabelRule(
        "medium", 50, "text with contact details or traffic diversion"
    ),
    "profanity_offensive_tii": LabelRule("medium", 50, "profanity in text"),
    # Speech: the families of vocabulary.py, as Alibaba 2.0 audio names them. The built-in
    # rules' families weigh like their OCR labels (medium); keyword families like "_tii".
    "profanity": LabelRule("medium", 50, "profanity in speech"),
    "ad": LabelRule("medium", 50, "advertising or traffic diversion in speech"),
    CUSTOM: LabelRule("high", 50, "a configured keyword in speech"),
    **{
        family: LabelRule("high", 50, f"{meaning} in speech")
        for _, family, meaning in PREFIX_FAMILIES
        if family not in ("ad", "profanity")
    },
}

# Families matched by suffix when a label has no entry of its own.
SUFFIX_RULES: dict[str, LabelRule] = {
    "_lib": LabelRule("high", 0, "matched a block-list image"),
    "_tii": LabelRule("high", 50, "configured keyword in text"),
}
UNKNOWN_RULE = LabelRule("medium", 0, "label without a rule")


def rule_for(label: str) -> LabelRule:
    """A label's rule: its own entry, else its vocabulary family's (a keyword found by OCR
    weighs what the same words said weigh), else its suffix's. ``LABELS`` overrides by the
    label's own name first, then by its family's (``{"contraband": ...}`` covers
    ``contraband_drug_tii`` too)."""
    from .conf import moderation_settings

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
    overrides = moderation_settings.LABELS or {}
    override = overrides.get(label) or overrides.get(family)
    if override:
        base = LabelRule(
            risk_level=override.get("risk_level", base.risk_level),
            min_confidence=float(override.get("min_confidence", base.min_confidence)),
            description=override.get("description", base.description),
        )
    return base


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
