"""Our label names (Alibaba 2.0 vocabulary) <-> Content Moderation 1.0 (scene, label,
suggestion), in one table used by both the emulator (2.0 -> 1.0) and the 1.0 client
(1.0 -> 2.0). Sources: aliyun-labels.json keys ``v1`` (scene -> labels), ``v1_notes``,
``v2_prefix_categories``; aliyun-protocol.md §2.4. The 1.0 label ``normal`` means "no label".

Choices (the 1.0 and 2.0 families do not line up one to one):

* porn: 2.0 splits 1.0 ``sexy`` into partial nudity and suggestive content; both go to
  ``sexy``/``review``, and ``sexy`` comes back as the milder ``sexual_suggestiveContent``.
* ``pt_qrCode`` is the ``qrcode`` scene, not the ``ad`` scene's ``qrcode`` label: a client
  asking only for ``ad`` would not get QR hits in 1.0 either (``v1_notes.qrcode``).
* text in the image (``*_tii``) is the ``ad`` scene, 1.0's OCR-text scene. Contact details are
  ``ad`` (the only non-normal ad label returned by default, ``v1_notes.ad``), profanity is
  ``abuse``. A configured keyword category (``<category>_tii``) takes the ad label of its
  2.0 prefix category when the ad scene has one (``political_x_tii`` -> ``politics``), else
  ``spam``, the ad scene's catch-all for unwanted text; suggestion ``block``, since keyword
  hits are ``high`` in ``labels.DEFAULT_LABELS``.
* ``<label>_lib`` (a block-list image) is reported as its base label with ``block``; a base
  with no 1.0 scene is reported as ``ad``/``spam`` (1.0 has no library scene).
* ``nonLabel``/``nonLabel_lib`` and labels with no 1.0 counterpart map to None (normal).
"""

from __future__ import annotations

from typing import NamedTuple


class V1Result(NamedTuple):
    """One 1.0 ``results[]`` entry without the rate (§2.4)."""

    scene: str
    label: str
    suggestion: str  # pass | review | block


NORMAL = "normal"
PASS, REVIEW, BLOCK = "pass", "review", "block"
SUGGESTION_ORDER = {PASS: 0, REVIEW: 1, BLOCK: 2}

#: our label -> 1.0 (scene, label, suggestion); the one table.
TO_V1: dict[str, V1Result] = {
    "pornographic_adultContent": V1Result("porn", "porn", BLOCK),
    "sexual_partialNudity": V1Result("porn", "sexy", REVIEW),
    "sexual_suggestiveContent": V1Result("porn", "sexy", REVIEW),
    "pt_qrCode": V1Result("qrcode", "qrcode", REVIEW),
    "pt_toDirectContact_tii": V1Result("ad", "ad", REVIEW),
    "profanity_offensive_tii": V1Result("ad", "abuse", REVIEW),
}

#: 1.0 (scene, label) -> our label where the table above is ambiguous or silent.
FROM_V1: dict[tuple[str, str], str] = {
    ("porn", "porn"): "pornographic_adultContent",
    ("porn", "sexy"): "sexual_suggestiveContent",
    ("qrcode", "qrcode"): "pt_qrCode",
    ("ad", "qrcode"): "pt_qrCode",
    ("ad", "ad"): "pt_toDirectContact_tii",
    ("ad", "abuse"): "profanity_offensive_tii",
}

#: 2.0 prefix category (v2_prefix_categories) -> ad-scene label, for keyword categories.
AD_LABEL_BY_PREFIX: dict[str, str] = {
    "pornographic_": "porn",
    "sexual_": "porn",
    "political_": "politics",
    "violent_": "terrorism",
    "contraband_": "contraband",
    "profanity": "abuse",
    "pt_": "ad",
}
AD_FALLBACK = "spam"
NO_RISK = frozenset({"nonLabel", "nonLabel_lib"})


def _ad_label(category: str) -> str:
    return next(
        (label for prefix, label in AD_LABEL_BY_PREFIX.items() if category.startswith(prefix)),
        AD_FALLBACK,
    )


def to_v1(label: str) -> V1Result | None:
    """The 1.0 form of one of our labels; None for "no risk" and labels 1.0 cannot express."""
    if label in NO_RISK:
        return None
    if label in TO_V1:
        return TO_V1[label]
    if label.endswith("_lib"):
        base = to_v1(label[: -len("_lib")])
        scene, v1_label = (base.scene, base.label) if base else ("ad", AD_FALLBACK)
        return V1Result(scene, v1_label, BLOCK)
    if label.endswith("_tii"):
        return V1Result("ad", _ad_label(label[: -len("_tii")]), BLOCK)
    return None


def from_v1(scene: str, label: str) -> str | None:
    """Our label for a 1.0 result; None for ``normal``, ``{scene}_{label}`` when unknown."""
    if label == NORMAL:
        return None
    return FROM_V1.get((scene, label), f"{scene}_{label}")
