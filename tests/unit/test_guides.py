"""The guides in docs/ run as written: their code blocks are the test's code."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.test import override_settings

from moderation.checks import check_detectors
from moderation.labels import validate_overrides

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-detector.md"


def blocks(path: Path) -> dict[str, str]:
    """The guide's python blocks by their first line (``# mysite/detectors.py``)."""
    found = {}
    for code in re.findall(r"```python\n(.*?)```", path.read_text(), re.S):
        first, _, rest = code.partition("\n")
        if first.startswith("# "):
            found[first[2:].strip()] = code
    return found


@pytest.fixture
def mysite(tmp_path, monkeypatch):
    """The guide's files written as a package ``mysite`` on sys.path."""
    code = blocks(GUIDE)
    for name in ("mysite/detectors.py", "mysite/tests/test_detectors.py"):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code[name])
        (target.parent / "__init__.py").touch()
    (tmp_path / "mysite" / "__init__.py").touch()
    monkeypatch.syspath_prepend(str(tmp_path))
    yield code
    for module in [m for m in sys.modules if m == "mysite" or m.startswith("mysite.")]:
        del sys.modules[module]


def test_writing_a_detector_shell_step_prints_what_the_guide_says(mysite):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(mysite["shell"], "shell", "exec"), {})
    expected = re.search(r"^# (\[.*)$", mysite["shell"], re.M).group(1)
    assert out.getvalue().strip() == expected


def test_writing_a_detector_settings_pass_the_checks_and_the_guides_test_passes(mysite):
    namespace: dict = {}
    exec(compile(mysite["settings"], "settings", "exec"), namespace)
    with override_settings(MODERATION=namespace["MODERATION"]):
        errors = [m for m in check_detectors(None) if m.level >= checks.ERROR]
    assert errors == []
    assert validate_overrides(namespace["MODERATION"]["LABELS"]) == []

    import mysite.tests.test_detectors as guide_test

    guide_test.test_the_brand_colour_is_flagged_and_white_is_not()


def test_writing_a_detector_a_broken_entry_is_reported(mysite):
    with override_settings(MODERATION={"DETECTORS": ["mysite.detectors.NoSuchDetector"]}):
        assert [m.id for m in check_detectors(None)] == ["moderation.E020"]


@pytest.mark.django_db
def test_public_api_testing_example_runs_on_the_demo_post():
    """docs/public-api.md, "Testing your integration", on the demo's Post (app ``blog``)."""
    page = GUIDE.with_name("public-api.md")
    code = blocks(page)["tests/test_moderation.py"].replace(
        "from blog.models import", "from demo_project.blog.models import")
    namespace: dict = {}
    exec(compile(code, str(page), "exec"), namespace)
    namespace["test_a_flagged_picture_hides_its_post"]()
