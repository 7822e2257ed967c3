"""Reason codes: the policy category a moderator names when deciding (issue 14, item 4).

``MODERATION["REASONS"]`` maps a code, stored on the decision's ``ReviewEvent``, to a label
shown in the console (translatable); ``REQUIRE_REJECT_REASON`` makes a rejection without a
code an error, so that every block can be counted by policy. The free-text ``reason`` stays
beside the code, as a note. Codes are checked where a decision is taken
(``review.decide``), so the console, the API, bulk actions and scripts agree. Check E023.
"""

from __future__ import annotations

import re

from .conf import moderation_settings
from .models import Decision

#: a code is stored in ``ReviewEvent.reason_code`` (max_length 50) and sent in forms and URLs
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")


class ReasonError(ValueError):
    """A decision's reason code cannot be used: required and missing, or unknown."""


class ReasonRequired(ReasonError):
    def __init__(self) -> None:
        super().__init__("a reason code is required to reject (REQUIRE_REJECT_REASON); "
                         f"one of: {', '.join(reasons()) or '(none configured)'}")


class UnknownReason(ReasonError):
    def __init__(self, code: str) -> None:
        # echoed in messages and errors: an unbounded posted value stays out of them
        self.code = code if len(code) <= 50 else f"{code[:50]}…"
        super().__init__(f"unknown reason code {self.code!r}; one of: "
                         f"{', '.join(reasons()) or '(none configured)'}")


def reasons() -> dict[str, str]:
    """code -> label (lazy translations stay lazy: ``str()`` them in the reader's language)."""
    value = moderation_settings.REASONS
    return dict(value) if isinstance(value, dict) else {}


def choices() -> list[tuple[str, str]]:
    """(code, label) in the configured order, labels in the active language."""
    return [(code, str(text)) for code, text in reasons().items()]


def label(code: str) -> str:
    """The label of ``code`` in the active language; the code itself if it is no longer
    configured (old events keep their code)."""
    return str(reasons().get(code, code)) if code else ""


def required_for(decision: str) -> bool:
    """Whether ``decision`` (``approved`` / ``rejected``) needs a reason code."""
    return decision == Decision.REJECTED and bool(moderation_settings.REQUIRE_REJECT_REASON)


def validate(decision: str, code: str | None) -> str:
    """The code to store for ``decision``: "" when none is given and none is required;
    :class:`ReasonRequired` or :class:`UnknownReason` (both ``ValueError``) otherwise."""
    code = (code or "").strip()
    if not code:
        if required_for(decision):
            raise ReasonRequired
        return ""
    if code not in reasons():
        raise UnknownReason(code)
    return code


def settings_problems() -> list[str]:
    """What is wrong with REASONS / REQUIRE_REJECT_REASON (system check E023)."""
    problems = []
    value = moderation_settings.REASONS
    if not isinstance(value, dict):
        problems.append(f"REASONS = {value!r} is not a dict of reason code -> label.")
        value = {}
    for code, text in value.items():
        if not isinstance(code, str) or not CODE.match(code):
            problems.append(f"REASONS code {code!r} is not 1..50 letters, digits, '_', '-' "
                            "or '.' (starting with a letter or digit).")
        if not str(text or "").strip():
            problems.append(f"REASONS[{code!r}] has no label.")
    required = moderation_settings.REQUIRE_REJECT_REASON
    if not isinstance(required, bool):
        problems.append(f"REQUIRE_REJECT_REASON = {required!r} is not True or False.")
    elif required and not value:
        problems.append("REQUIRE_REJECT_REASON is on but REASONS is empty: nobody could "
                        "reject.")
    seconds = moderation_settings.UNDO_SECONDS
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        problems.append(f"UNDO_SECONDS = {seconds!r} is not a whole number of seconds >= 0 "
                        "(0: no undo).")
    return problems


__all__ = ["CODE", "ReasonError", "ReasonRequired", "UnknownReason", "choices", "label",
           "reasons", "required_for", "settings_problems", "validate"]
