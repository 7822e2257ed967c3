"""The public API: every name in ``moderation.__all__`` is documented and works, importing
the package stays cheap, and ``moderation.testing`` drives a site's scenario end to end."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile

import moderation
from moderation import signals
from moderation.models import FeedbackRequest, Job
from moderation.providers import MediaError
from moderation.testing import (
    ScriptedProvider,
    run_pending_jobs,
    scripted_provider,
    scripted_result,
)
from tests.conftest import png_bytes
from tests.testapp.models import Photo

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "public-api.md").read_text()


def documented(name: str) -> bool:
    return re.search(rf"`{re.escape(name)}[`(]", PAGE) is not None


@pytest.mark.parametrize("name", moderation.__all__)
def test_every_public_name_exists_and_is_documented(name):
    assert getattr(moderation, name) is not None
    assert documented(name), f"{name} is not on docs/public-api.md"


@pytest.mark.parametrize("name", __import__("moderation.testing").testing.__all__)
def test_every_testing_name_is_documented(name):
    assert documented(name), f"moderation.testing.{name} is not on docs/public-api.md"


@pytest.mark.parametrize("name", __import__("moderation.providers").providers.__all__)
def test_every_providers_name_is_documented(name):
    assert documented(name), f"moderation.providers.{name} is not on docs/public-api.md"


GUIDES = ("writing-a-provider.md", "writing-a-detector.md", "public-api.md")


def guide_imports() -> list[tuple[str, str, str]]:
    """(guide, module, name) for every ``from moderation... import`` in the guides' code."""
    found = []
    for guide in GUIDES:
        text = (ROOT / "docs" / guide).read_text()
        for block in re.findall(r"```python\n(.*?)```", text, re.S):
            for statement in re.finditer(
                    r"^from (moderation[\w.]*) import (\([^)]*\)|[^\n]*)", block, re.M):
                module, names = statement.groups()
                for name in re.split(r"[\s,()]+", names):
                    if name and not name.startswith("#"):
                        found.append((guide, module, name))
    return found


@pytest.mark.parametrize("guide, module, name", guide_imports())
def test_the_guides_import_only_what_the_page_names(guide, module, name):
    """A newcomer following a guide uses only what docs/public-api.md promises to keep."""
    assert f"## `{module}`" in PAGE or f"`{module}`" in PAGE, \
        f"{guide} imports from {module}, which docs/public-api.md does not name"
    assert documented(name), f"{guide} imports {module}.{name}, not on docs/public-api.md"
    assert hasattr(__import__(module, fromlist=[name]), name)


def test_importing_the_package_loads_nothing_else():
    """settings.py and AppConfigs import it before the app registry is ready."""
    code = ("import sys, moderation; print(sorted(m for m in sys.modules "
            "if m.startswith(('moderation.', 'django.db', 'django.contrib'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_signals_are_the_catalogs_own():
    for name in moderation.SIGNALS:
        assert getattr(moderation, name) is getattr(signals, name)
    with pytest.raises(AttributeError):
        moderation.no_such_signal  # noqa: B018


@pytest.fixture
def site(register):
    """Photo registered with the scripted provider as the site's default."""
    with scripted_provider(DEFAULT_PROVIDER="scripted", RETRY_BACKOFF=0.01) as provider:
        register(Photo, ["image"], on_block="hide")
        yield provider


@pytest.mark.django_db
def test_register_visible_decide_on_a_model(site, admin_user, django_capture_on_commit_callbacks):
    site.script.append(scripted_result("medium", "pt_qrCode"))
    photo = Photo.objects.create(title="a", image=ContentFile(png_bytes(), name="a.png"))
    assert not moderation.visible(Photo.objects.all()).exists()  # not yet moderated

    assert run_pending_jobs() == 1
    job = Job.objects.get()
    assert job.status == "done" and job.review_state == "pending"
    assert [c[0] for c in site.calls] == ["submit"]

    heard = []
    moderation.review_resolved.connect(lambda **kw: heard.append(kw["decision"]), weak=False,
                                       dispatch_uid="test-public-api")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            moderation.decide(job, "approve", admin_user, reason="fine")
    finally:
        moderation.review_resolved.disconnect(dispatch_uid="test-public-api")
    assert heard == ["approved"]
    assert list(moderation.visible(Photo.objects.all())) == [photo]

    nobody = User.objects.create_user("nobody", is_staff=True)
    with pytest.raises(PermissionDenied):
        moderation.decide(job, "reject", nobody)


@pytest.mark.django_db
def test_moderate_retry_and_request_feedback(site, admin_user):
    site.script.extend([MediaError("bad", code="corrupt_image"), scripted_result("high", "porn")])
    job = moderation.moderate(png_bytes(), name="upload.png")
    assert job.status == "pending" and job.is_adhoc and job.provider == "scripted"
    run_pending_jobs()
    job.refresh_from_db()
    assert job.status == "failed" and job.error_code == "corrupt_image"

    job = moderation.retry(job, actor=admin_user)
    assert job.status == "pending"
    run_pending_jobs()
    job.refresh_from_db()
    assert job.status == "done" and job.suggestion == "block" and "porn" in job.labels

    feedback = moderation.request_feedback(job, "approved", note="a statue", actor=admin_user)
    assert FeedbackRequest.objects.get() == feedback
    assert feedback.job == job and feedback.decision == "approved" and feedback.note == "a statue"
    with pytest.raises(ValueError):
        moderation.request_feedback(job, "maybe")


@pytest.mark.django_db
def test_moderate_waits_at_most_wait_seconds(site):
    started = time.monotonic()
    job = moderation.moderate(png_bytes(), name="later.png", wait=0.3)  # no worker runs
    assert 0.3 <= time.monotonic() - started < 5 and job.status == "pending"
    with pytest.raises(ValueError):
        moderation.moderate(png_bytes(), name="a.png", url="https://example.com/v.mp4")


def test_scripted_provider_joins_or_replaces_the_sites_providers():
    before = settings.MODERATION
    with scripted_provider("extra") as provider:
        assert provider is ScriptedProvider and provider.script == []
        assert set(before.get("PROVIDERS", {})) | {"extra"} == set(
            settings.MODERATION["PROVIDERS"])
    with scripted_provider(only=True):
        assert list(settings.MODERATION["PROVIDERS"]) == ["scripted"]
    assert before == settings.MODERATION


@pytest.mark.django_db
def test_run_pending_jobs_leaves_jobs_that_are_not_due(site):
    site.script.append(scripted_result(status="processing", task_id="t-1"))
    job = moderation.moderate(png_bytes(), name="slow.png")
    assert run_pending_jobs() == 1  # submitted; its poll waits for POLL_INTERVAL
    job.refresh_from_db()
    assert job.status == "submitted" and run_pending_jobs() == 0


@pytest.mark.django_db
def test_moderate_takes_an_open_file_by_its_own_name(site):
    site.script.append(scripted_result())
    job = moderation.moderate(ContentFile(png_bytes(), name="uploads/holiday.png"))
    assert job.file_name.endswith("holiday.png") and job.media_kind == "image"
    run_pending_jobs()
    job.refresh_from_db()
    assert job.status == "done" and site.calls[0][2].startswith(b"\x89PNG")
