"""The pipeline's steps against a scripted provider: outcomes, errors, retries, reuse, leases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from moderation import pipeline, signals
from moderation.models import Decision, Frame, FrameLabel, Job, ReviewState, Status
from moderation.providers import Expired, MediaError, ProviderError, Throttled
from tests.providers import result
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo_job(register, scripted, image_file):
    def make(color=(200, 30, 30), **options):
        register(Photo, provider="scripted", **{"on_block": "hide", **options})
        photo = Photo.objects.create(image=image_file(color=color))
        return photo, Job.objects.filter(object_id=str(photo.pk)).get()

    return make


@pytest.fixture
def received():
    got = []

    def handler(signal, **kwargs):
        got.append((signal, kwargs["job"].pk))

    for sig in (signals.job_submitted, signals.job_completed, signals.review_required,
                signals.content_blocked):
        sig.connect(handler, weak=False)
    yield got
    for sig in (signals.job_submitted, signals.job_completed, signals.review_required,
                signals.content_blocked):
        sig.disconnect(handler)


def names(received):
    sig_names = {signals.job_submitted: "submitted", signals.job_completed: "completed",
                 signals.review_required: "review", signals.content_blocked: "blocked"}
    return [sig_names[s] for s, _ in received]


def test_pass_stores_rows_and_shows(photo_job, scripted, received,
                                    django_capture_on_commit_callbacks):
    photo, job = photo_job()
    scripted.script.append(result("none", "nonLabel"))
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.suggestion, job.decision) == (Status.DONE, "pass", Decision.AUTO_PASS)
    assert job.attempts == 1 and job.sha256 and job.completed_at
    frame = Frame.objects.get(job=job)
    assert frame.offset == 0 and frame.thumbnail  # a single image keeps its thumbnail
    assert FrameLabel.objects.get(frame=frame).label == "nonLabel"
    assert job.raw_result == {"answer": "none"}
    assert names(received) == ["submitted", "completed"]
    # the provider saw the real bytes of the stored file
    assert scripted.calls[0][2].startswith(b"\x89PNG")


def test_medium_risk_goes_to_review(photo_job, scripted, received,
                                    django_capture_on_commit_callbacks):
    photo, job = photo_job()
    scripted.script.append(result("medium", "pt_qrCode"))
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.process(job.pk)
    job.refresh_from_db()
    assert job.suggestion == "review" and job.review_state == ReviewState.PENDING
    assert job.decision == "" and job.labels == ["pt_qrCode"]
    assert "review" in names(received)
    photo.refresh_from_db()
    assert not photo.hidden


def test_high_risk_blocks_and_hides(photo_job, scripted, received,
                                    django_capture_on_commit_callbacks):
    photo, job = photo_job()
    scripted.script.append(result("high", "pornographic_adultContent"))
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.process(job.pk)
    job.refresh_from_db()
    photo.refresh_from_db()
    assert job.decision == Decision.AUTO_BLOCK and photo.hidden
    assert "blocked" in names(received)
    # hiding is an UPDATE, not a save: no new moderation job
    assert Job.objects.count() == 1


def test_registration_policy_overrides_default(photo_job, scripted):
    photo, job = photo_job(policy={"medium": "block"})
    scripted.script.append(result("medium", "pt_qrCode"))
    pipeline.process(job.pk)
    job.refresh_from_db()
    assert job.suggestion == "block"


def test_callable_block_action(photo_job, scripted, django_capture_on_commit_callbacks):
    photo, job = photo_job(on_block="tests.pipeline.test_pipeline.record_block")
    BLOCKED.clear()
    scripted.script.append(result("high", "x_lib"))
    pipeline.process(job.pk)
    assert [(photo.pk, job.pk)] == BLOCKED


BLOCKED: list = []


def record_block(instance, job):
    BLOCKED.append((instance.pk, job.pk))


def test_media_error_fails_without_retry(photo_job, scripted):
    photo, job = photo_job()
    scripted.script.append(MediaError("not an image", code="not_an_image"))
    assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_code, job.error_message) == (
        Status.FAILED, "not_an_image", "not an image")
    assert job.events.filter(action="failed").exists()


def test_outage_retries_with_backoff_then_fails(photo_job, scripted):
    photo, job = photo_job()
    with override_settings(MODERATION={"PROVIDERS": {"scripted": {
            "BACKEND": "tests.providers.ScriptedProvider"}}, "MAX_ATTEMPTS": 3,
            "RETRY_BACKOFF": 10}):
        for attempt in (1, 2):
            scripted.script.append(ProviderError("503 from provider"))
            assert pipeline.process(job.pk) == "retry"
            job.refresh_from_db()
            assert job.status == Status.PENDING and job.attempts == attempt
            wait = (job.next_attempt_at - timezone.now()).total_seconds()
            assert 10 * 2 ** (attempt - 1) / 2 - 1 <= wait <= 10 * 2 ** (attempt - 1)
            # not due yet: a second delivery does nothing
            assert pipeline.process(job.pk) == "skipped"
            Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
        scripted.script.append(ProviderError("503 again"))
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "provider_error"
    # retryable by hand
    pipeline.retry(job)
    assert job.status == Status.PENDING and job.attempts == 0 and not job.error_code


def test_throttling_waits_without_spending_attempts(photo_job, scripted):
    photo, job = photo_job()
    for _ in range(8):  # more than MAX_ATTEMPTS: throttling never fails a job
        scripted.script.append(Throttled("480 too many"))
        assert pipeline.process(job.pk) == "retry"
        Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    job.refresh_from_db()
    assert job.status == Status.PENDING and job.attempts == 0 and job.error_code == "throttled"


def test_crash_in_engine_is_visible_and_retried(photo_job, scripted):
    photo, job = photo_job()
    scripted.script.append(ZeroDivisionError("boom"))
    assert pipeline.process(job.pk) == "retry"
    job.refresh_from_db()
    assert job.error_code == "internal_error" and "ZeroDivisionError" in job.error_message
    assert job.lease_until is None


def test_async_provider_is_polled_until_done(photo_job, scripted):
    photo, job = photo_job()
    scripted.script += [result(status="in_progress", task_id="T-1"),
                        result(status="in_progress"), result("none")]
    assert pipeline.process(job.pk) == "submitted"
    job.refresh_from_db()
    assert job.provider_task_id == "T-1" and job.status == Status.IN_PROGRESS
    assert pipeline.process(job.pk) == "skipped"  # next poll not due
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    assert pipeline.process(job.pk) == "in_progress"
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    assert pipeline.process(job.pk) == "done"
    assert [c[0] for c in scripted.calls] == ["submit", "fetch", "fetch"]
    assert scripted.calls[1][1] == "T-1"


def test_expired_result(photo_job, scripted):
    photo, job = photo_job()
    scripted.script += [result(status="in_progress", task_id="T-2"), Expired("409")]
    pipeline.process(job.pk)
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    assert pipeline.process(job.pk) == "expired"
    assert Job.objects.get(pk=job.pk).status == Status.EXPIRED


def test_same_bytes_reuse_the_result(photo_job, scripted, image_file):
    photo, job = photo_job()
    scripted.script.append(result("medium", "pt_qrCode"))
    pipeline.process(job.pk)
    other = Photo.objects.create(image=image_file("copy.png"))  # same bytes, new name
    second = Job.objects.get(object_id=str(other.pk))
    assert pipeline.process(second.pk) == "reused"
    second.refresh_from_db()
    assert second.reused_from_id == job.pk
    assert second.risk_level == "medium" and second.review_state == ReviewState.PENDING
    assert len(scripted.calls) == 1  # no second provider call
    frame = second.frames.get()
    assert frame.thumbnail and frame.thumbnail.name != job.frames.get().thumbnail.name


def test_a_result_of_an_older_engine_version_is_not_reused(photo_job, scripted, image_file,
                                                          monkeypatch):
    """An engine that now looks further (every frame of an animation, samples over the whole
    video) bumps its result_version: what its older self said is not taken for its answer."""
    photo, job = photo_job()
    scripted.script.append(result("none"))
    pipeline.process(job.pk)
    assert Job.objects.get(pk=job.pk).result["result_version"] == "1"
    monkeypatch.setattr(scripted, "result_version", "2", raising=False)
    other = Photo.objects.create(image=image_file("copy.png"))
    scripted.script.append(result("medium", "pt_qrCode"))
    second = Job.objects.get(object_id=str(other.pk))
    assert pipeline.process(second.pk) == "done"  # asked again, not reused
    assert len(scripted.calls) == 2
    assert Job.objects.get(pk=second.pk).result["result_version"] == "2"
    third = Photo.objects.create(image=image_file("third.png"))
    assert pipeline.process(Job.objects.get(object_id=str(third.pk)).pk) == "reused"


def test_different_scenes_do_not_reuse(photo_job, scripted, image_file, register):
    photo, job = photo_job()
    scripted.script.append(result("none"))
    pipeline.process(job.pk)
    register(Photo, provider="scripted", scenes=["qrcode"])
    other = Photo.objects.create(image=image_file("copy.png"))
    scripted.script.append(result("none"))
    assert pipeline.process(Job.objects.get(object_id=str(other.pk)).pk) == "done"
    assert len(scripted.calls) == 2


def test_a_backfill_job_reuses_a_normal_result(photo_job, scripted, image_file):
    """moderation_scan marks its jobs apply_block=False: that changes what is done with the
    verdict, not the verdict, so the same bytes are not moderated twice."""
    photo, job = photo_job()
    scripted.script.append(result("none"))
    pipeline.process(job.pk)
    other = Photo.objects.create(image=image_file("copy.png"))
    second = Job.objects.get(object_id=str(other.pk))
    Job.objects.filter(pk=second.pk).update(options={**second.options, "apply_block": False})
    assert pipeline.process(second.pk) == "reused"
    assert len(scripted.calls) == 1


def test_a_leased_job_is_not_run_twice(photo_job, scripted):
    photo, job = photo_job()
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(minutes=5))
    assert pipeline.process(job.pk) == "skipped"
    assert scripted.calls == []
    # an expired lease (a dead worker) is taken over
    Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    scripted.script.append(result("none"))
    assert pipeline.process(job.pk) == "done"
    assert pipeline.process(job.pk) == "skipped"  # a duplicate delivery after done


def test_cancelled_while_running_keeps_cancelled(photo_job, scripted):
    photo, job = photo_job()
    pipeline._cancel(Job.objects.filter(pk=job.pk), "test")
    pipeline.ingest(job, result("high", "x_lib"))
    job.refresh_from_db()
    assert job.status == Status.CANCELLED and not job.frames.exists()


def test_ingest_replaces_rows(photo_job, scripted):
    photo, job = photo_job()
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    pipeline.ingest(job, result("low", "a_label"))
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    pipeline.ingest(job, result("none", "nonLabel"))
    assert Frame.objects.filter(job=job).count() == 1
    assert list(FrameLabel.objects.filter(frame__job=job).values_list("label", flat=True)) == [
        "nonLabel"]


def test_sweep_enqueues_due_and_lost_jobs_once(photo_job, scripted):
    from django_q.brokers import get_broker

    photo, job = photo_job()
    broker = get_broker()
    before = broker.queue_size()
    # never enqueued (e.g. the commit hook ran in a process that died)
    assert pipeline.sweep() == 1
    assert broker.queue_size() == before + 1
    assert pipeline.sweep() == 0  # enqueued just now: not again
    # the task was lost: after the lease time the sweeper sends it again
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now() - timedelta(hours=1))
    assert pipeline.sweep() == 1
    # a retry whose time has come is enqueued again
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    assert pipeline.sweep() == 1
    # finished jobs are left alone
    Job.objects.filter(pk=job.pk).update(status=Status.DONE)
    assert pipeline.sweep() == 0


def test_object_deleted_before_submit(photo_job, scripted):
    photo, job = photo_job()
    Photo.objects.filter(pk=photo.pk).delete()  # queryset delete still sends post_delete
    job.refresh_from_db()
    assert job.status == Status.CANCELLED


def test_moderator_decisions(photo_job, scripted, received, django_capture_on_commit_callbacks):
    from django.contrib.auth.models import User

    import moderation

    photo, job = photo_job()
    scripted.script.append(result("high", "x_lib"))
    pipeline.process(job.pk)
    photo.refresh_from_db()
    assert photo.hidden
    moderator = User.objects.create_user("mod")
    pipeline.resolve(job, Decision.APPROVED, actor=moderator, reason="a false positive")
    photo.refresh_from_db()
    job.refresh_from_db()
    assert not photo.hidden and job.review_state == ReviewState.RESOLVED
    assert list(moderation.visible(Photo.objects.all())) == [photo]
    event = job.events.get(action="approved")
    assert (event.actor, event.reason) == (moderator, "a false positive")
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.resolve(job, Decision.REJECTED, actor=moderator)
    photo.refresh_from_db()
    assert photo.hidden and "blocked" in names(received)
    with pytest.raises(ValueError):
        pipeline.resolve(job, "maybe")


def test_replaced_and_deleted_evidence_leaves_no_files(photo_job, scripted,
                                                       django_capture_on_commit_callbacks):
    photo, job = photo_job()
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    pipeline.ingest(job, result("medium", "pt_qrCode"))
    first = Frame.objects.get(job=job).thumbnail
    storage, first_name = first.storage, first.name
    assert storage.exists(first_name)
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.ingest(job, result("medium", "pt_qrCode"))
    assert not storage.exists(first_name)  # the replaced row took its file along
    second_name = Frame.objects.get(job=job).thumbnail.name
    with django_capture_on_commit_callbacks(execute=True):
        job.delete()
    assert not storage.exists(second_name)


def test_polls_back_off_with_the_time_waited(photo_job, scripted):
    from datetime import timedelta as td

    photo, job = photo_job()
    job.submitted_at = timezone.now()
    assert pipeline.worker.poll_delay(job) == 30  # the first poll: POLL_INTERVAL
    job.submitted_at = timezone.now() - td(minutes=10)
    assert 149 <= pipeline.worker.poll_delay(job) <= 151  # a quarter of 600 s
    job.submitted_at = timezone.now() - td(hours=2)
    assert pipeline.worker.poll_delay(job) == 300  # capped
