"""docs/settings.md documents every MODERATION setting, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

from moderation.conf import DEFAULTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


def documented() -> set[str]:
    """The names in the first column of the reference table(s): ``| `NAME` | default | ...``."""
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", DOC.read_text(), re.M))


def test_every_setting_is_documented_and_every_documented_one_exists():
    names = documented()
    assert set(DEFAULTS) - names == set(), "add these to docs/settings.md"
    assert names - set(DEFAULTS) == set(), "docs/settings.md names settings that do not exist"
