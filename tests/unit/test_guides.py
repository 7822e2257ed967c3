"""The guides in docs/ run as written: their code blocks are the test's code."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import sys
from pathlib import Path

import pytest
from django.core import checks
from django.test import override_settings

import moderation
from demo_project.blog.models import Post
from moderation.checks import check_settings
from moderation.labels import validate_overrides
from moderation.registry import registry

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "writing-a-detector.md"
PROVIDER_GUIDE = GUIDE.with_name("writing-a-provider.md")


def blocks(path: Path) -> dict[str, str]:
    """The guide's python blocks by their first line (``# mysite/detectors.py``)."""
    found = {}
    for code in re.findall(r"```python\n(.*?)```", path.read_text(), re.S):
        first, _, rest = code.partition("\n")
        if first.startswith("# "):
            found[first[2:].strip()] = code
    return found


def write_package(root: Path, guide: Path, files: tuple[str, ...],
                  replace: dict[str, str] | None = None) -> dict[str, str]:
    """The guide's ``files`` written under ``root`` as a package (``__init__.py`` in every
    folder); ``replace`` maps a guide's names onto the test site's. Returns the blocks."""
    code = blocks(guide)
    for name in files:
        text = code[name]
        for old, new in (replace or {}).items():
            text = text.replace(old, new)
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        for folder in target.relative_to(root).parents:
            if folder != Path("."):
                (root / folder / "__init__.py").touch()
    return code


def forget(package: str) -> None:
    for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[module]


@pytest.fixture
def mysite(tmp_path, monkeypatch):
    """The guide's files written as a package ``mysite`` on sys.path."""
    code = write_package(tmp_path, GUIDE, ("mysite/detectors.py",
                                           "mysite/tests/test_detectors.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield code
    forget("mysite")


def check_detectors(app_configs=None):
    """E020/W004 as ``manage.py check`` reports them: from ``LocalProvider.check``, which
    the app's check_settings calls for every configured alias."""
    return [m for m in check_settings(app_configs)
            if m.id in ("moderation.E020", "moderation.W004")]


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


@pytest.fixture
def acmesite(tmp_path, monkeypatch, no_proxy):
    """docs/writing-a-provider.md's files as a package ``acmesite`` on sys.path; its
    ``blog.models.Post`` is the demo's (app ``blog``)."""
    code = write_package(
        tmp_path, PROVIDER_GUIDE,
        ("acmesite/providers.py", "acmesite/callbacks.py", "acmesite/tests/test_providers.py"),
        replace={"from blog.models import": "from demo_project.blog.models import"})
    monkeypatch.syspath_prepend(str(tmp_path))
    yield code
    forget("acmesite")


def moderation_errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks()
            if m.level >= checks.ERROR and str(m.id).startswith(("moderation.", "acme."))]


def test_writing_a_provider_settings_pass_the_checks_and_a_broken_one_is_reported(
        acmesite, monkeypatch):
    monkeypatch.setenv("ACME_API_KEY", "from-the-environment")
    namespace: dict = {}
    exec(compile(acmesite["settings"], "settings", "exec"), namespace)
    with override_settings(MODERATION=namespace["MODERATION"]):
        assert moderation_errors() == []
    assert validate_overrides(namespace["MODERATION"]["LABELS"]) == []

    # The plain-http API_URL the guide shows gives its own check, worded as printed there.
    exec(compile(acmesite["settings: a plain-http API_URL"], "broken", "exec"), namespace)
    with override_settings(MODERATION=namespace["MODERATION"]):
        errors = moderation_errors()
    assert [m.id for m in errors] == ["acme.E001"]
    assert str(errors[0]) in PROVIDER_GUIDE.read_text()

    # Without the environment variable the key is empty: moderation.E003.
    monkeypatch.delenv("ACME_API_KEY")
    namespace = {}
    exec(compile(acmesite["settings"], "settings", "exec"), namespace)
    with override_settings(MODERATION=namespace["MODERATION"]):
        assert [m.id for m in moderation_errors()] == ["moderation.E003"]


@pytest.mark.django_db
def test_writing_a_provider_guides_tests_pass(acmesite):
    """The guide's own tests, the site test on the demo's Post registered as the guide's
    registration step says (the demo's registration restored afterwards)."""
    import acmesite.tests.test_providers as guide_test

    guide_test.test_acme_labels_become_findings()
    guide_test.test_acme_refusals_become_the_apps_errors()
    guide_test.test_only_a_callback_signed_for_its_job_is_accepted()

    demo = registry.get(Post)
    moderation.unregister(Post)
    try:
        exec(compile(acmesite["registration"], "registration", "exec"),
             {"moderation": moderation, "Post": Post})
        guide_test.test_a_picture_acme_flags_hides_its_post()
    finally:
        if Post in registry:
            moderation.unregister(Post)
        options = {f.name: getattr(demo, f.name) for f in dataclasses.fields(demo)
                   if f.name not in ("model", "fields")}
        moderation.register(Post, demo.fields, **options)


@pytest.mark.django_db
def test_public_api_testing_example_runs_on_the_demo_post():
    """docs/public-api.md, "Testing your integration", on the demo's Post (app ``blog``)."""
    page = GUIDE.with_name("public-api.md")
    code = blocks(page)["tests/test_moderation.py"].replace(
        "from blog.models import", "from demo_project.blog.models import")
    namespace: dict = {}
    exec(compile(code, str(page), "exec"), namespace)
    namespace["test_a_flagged_picture_hides_its_post"]()
