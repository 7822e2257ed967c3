"""The wheel a site installs (issue 15): built from this checkout with pip, as a release
would be, and read back: licence, project URLs, classifiers, what is optional, and the files
an install needs at run time (templates, static, compiled catalogues, py.typed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = tmp_path_factory.mktemp("build") / "src"  # a copy: the build leaves files behind
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "node_modules", "__pycache__", "test-output", "*.egg-info", "build"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
         str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [built] = out.glob("django_media_moderation-*.whl")
    return built


def metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode())


def test_licence_urls_and_classifiers(wheel):
    meta = metadata(wheel)
    assert meta["Name"] == "django-media-moderation"
    assert meta["License-Expression"] == "MIT"
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    urls = dict(value.split(", ", 1) for value in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Framework :: Django :: 5.2" in classifiers


def test_schema_engine_and_sdks_are_extras_only(wheel):
    """A plain install brings Django, DRF, django-q2, requests and Pillow: drf-spectacular,
    numpy and the engine's packages come only with an extra."""
    required = [r for r in metadata(wheel).get_all("Requires-Dist") if "extra ==" not in r]
    names = sorted(r.split(">")[0].split("<")[0].split("=")[0].strip().lower()
                   for r in required)
    assert names == ["django", "django-q2", "djangorestframework", "pillow", "requests"]


def test_the_files_an_install_needs_at_run_time(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "moderation/py.typed" in names
    assert "moderation/locale/zh_Hans/LC_MESSAGES/django.mo" in names
    assert any(n.startswith("moderation/templates/moderation/") for n in names)
    assert any(n.startswith("moderation/static/moderation/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "demo_project/", "bench/")) for n in names)
