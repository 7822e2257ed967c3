"""The ``sync`` capability is enforced (issue 12 review): a provider that declares it answers
an image from ``submit`` with a finished result. One that answers "processing" with a task
id instead has a bug; the worker fails the job at once with a clear error (``sync_violation``,
not retried) rather than polling a provider that promised not to need it. Without ``sync``
the same answer is an ordinary asynchronous task, polled with ``fetch``."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from moderation import pipeline
from moderation.models import Job, ReviewEvent, Status
from moderation.pipeline.worker import check_sync
from moderation.providers import SYNC, Media, Result
from moderation.testing import ScriptedProvider
from tests.providers import result
from tests.testapp.models import Photo

ALIAS = "promises-sync"

pytestmark = pytest.mark.django_db


class SyncScriptedProvider(ScriptedProvider):
    """The scripted provider (the same ``script`` and ``calls``), declaring ``sync``."""

    capabilities = frozenset({"image", "video", "audio", SYNC})


@pytest.fixture
def job_for(register, scripted, image_file):
    """``job_for(sync)``: a photo's job at the scripted provider, declaring ``sync`` or not."""
    overrides = []

    def make(sync: bool) -> Job:
        backend = (f"{__name__}.SyncScriptedProvider" if sync
                   else "moderation.testing.ScriptedProvider")
        override = override_settings(MODERATION={**settings.MODERATION,
                                                 "PROVIDERS": {ALIAS: {"BACKEND": backend}}})
        override.enable()
        overrides.append(override)
        register(Photo, provider=ALIAS)
        photo = Photo.objects.create(image=image_file())
        return Job.objects.filter(object_id=str(photo.pk)).get()

    yield make
    for override in reversed(overrides):
        override.disable()


def test_a_sync_provider_answering_an_image_unfinished_fails_the_job_clearly(job_for):
    job = job_for(sync=True)
    ScriptedProvider.script.append(result(status="processing", task_id="T-9"))
    assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "sync_violation"
    assert job.error_message == (
        f"provider {ALIAS!r} declares `sync` but answered an image with status 'processing' "
        "(task 'T-9'): a sync provider's submit returns a finished result")
    assert job.attempts == 1 and job.completed_at
    event = ReviewEvent.objects.filter(job=job, action=ReviewEvent.Action.FAILED).get()
    assert event.reason == job.error_message and event.data == {"code": "sync_violation"}
    # Not polled, not retried: the provider was asked once.
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    assert pipeline.process(job.pk) == "skipped"
    assert [call[0] for call in ScriptedProvider.calls] == ["submit"]


def test_without_sync_the_same_answer_is_polled(job_for):
    job = job_for(sync=False)
    ScriptedProvider.script += [result(status="processing", task_id="T-9"), result("high")]
    assert pipeline.process(job.pk) == "submitted"
    job.refresh_from_db()
    assert job.status == Status.SUBMITTED and job.provider_task_id == "T-9"
    assert not job.error_code
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    assert pipeline.process(job.pk) == "done"
    assert [call[:2] for call in ScriptedProvider.calls] == [("submit", job.file_name),
                                                             ("fetch", "T-9")]
    assert Job.objects.get(pk=job.pk).risk_level == "high"


def test_a_sync_provider_answering_at_once_is_not_affected(job_for):
    job = job_for(sync=True)
    ScriptedProvider.script.append(result("high"))
    assert pipeline.process(job.pk) == "done"
    assert Job.objects.get(pk=job.pk).risk_level == "high"


def test_sync_is_about_images_and_a_failed_answer_is_finished():
    provider = SyncScriptedProvider(ALIAS)
    running = Result(status="in_progress", task_id="V-1")
    assert check_sync(provider, Media("v.mp4", "video"), running) is None  # polled as usual
    assert check_sync(provider, Media("p.jpg", "image"),
                      Result(status="failed", task_id="I-1")) is None
    assert check_sync(ScriptedProvider(ALIAS), Media("p.jpg", "image"), running) is None
