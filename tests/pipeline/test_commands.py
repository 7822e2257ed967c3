"""The operator commands: moderation_scan, _poll, _retry, _cancel, _purge, _stats.

Real rows and real files (media and evidence under the test root); bad inputs exit with
status 2 (CommandError.returncode here, SystemExit in tests/test_commands_cli.py).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from demo_project.blog.models import Post
from moderation import operations, pipeline
from moderation.models import (
    Decision,
    Frame,
    HashEntry,
    Job,
    ReviewEvent,
    ReviewState,
    Status,
)
from moderation.operations import BadInput, RateLimiter, parse_when
from moderation.storage import evidence_storage
from tests.providers import result
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def run_json(*args):
    return json.loads(run(*args, "--json"))


def fails(*args) -> str:
    """The command's message; it must exit with status 2."""
    with pytest.raises(CommandError) as info:
        run(*args)
    assert info.value.returncode == 2, str(info.value)
    return str(info.value)


@pytest.fixture
def old_photos(image_file):
    """Photos saved before Photo was registered (no jobs): what a backfill finds."""

    def make(n=5, empty=0):
        photos = [Photo.objects.create(title=f"p{i}",
                                       image=image_file(f"p{i}.png", color=(i, 40, 80)))
                  for i in range(n)]
        photos += [Photo.objects.create(title="empty") for _ in range(empty)]
        return photos

    return make


@pytest.fixture
def photos_registered(register, scripted):
    """Register Photo (scripted provider, hide on block) once the photos exist."""
    return lambda **options: register(Photo, provider="scripted",
                                      **{"on_block": "hide", **options})


def photo_jobs():
    return Job.objects.filter(content_type__model="photo")


# --- moderation_scan ----------------------------------------------------------------------


def test_scan_creates_one_job_per_file_and_resumes(old_photos, photos_registered):
    photos = old_photos(5, empty=1)
    photos_registered()
    assert not photo_jobs().exists()

    text = run("moderation_scan", "testapp.Photo", "--limit", "2", "--batch", "2")
    assert photo_jobs().count() == 2
    assert f"resume with --start-after {photos[1].pk}" in text

    # Run again: what has a job is skipped, the rest is done.
    data = run_json("moderation_scan", "testapp.Photo", "--batch", "2")
    assert (data["created"], data["existing"], data["finished"]) == (3, 2, True)
    assert data["total"] == 5  # the empty photo is not even read
    jobs = photo_jobs()
    assert jobs.count() == 5
    assert sorted(int(j.object_id) for j in jobs) == sorted(p.pk for p in photos[:5])
    for job in jobs:
        assert job.is_current and job.status == Status.PENDING
        assert job.options["apply_block"] is False and job.provider == "scripted"
        assert job.file_name == Photo.objects.get(pk=job.object_id).image.name
        assert ReviewEvent.objects.filter(job=job, action="created").exists()

    data = run_json("moderation_scan", "testapp.Photo")
    assert (data["created"], data["existing"]) == (0, 5)


def test_scan_start_after_skips_to_the_position(old_photos, photos_registered):
    photos = old_photos(4)
    photos_registered()
    data = run_json("moderation_scan", "testapp.Photo", "--start-after", str(photos[1].pk))
    assert data["created"] == 2 and data["total"] == 2
    assert sorted(photo_jobs().values_list("object_id", flat=True)) == sorted(
        str(p.pk) for p in photos[2:])
    assert "not a primary key" in fails("moderation_scan", "testapp.Photo",
                                        "--start-after", "abc")


def test_scan_dry_run_counts_only(old_photos, photos_registered):
    old_photos(3)
    photos_registered()
    text = run("moderation_scan", "testapp.Photo", "--dry-run")
    assert "would create 3 jobs" in text
    assert not photo_jobs().exists()


def test_scan_enqueues_each_job_when_it_commits(old_photos, photos_registered,
                                                django_capture_on_commit_callbacks,
                                                monkeypatch):
    old_photos(2)
    photos_registered()
    queued = []
    monkeypatch.setattr("moderation.pipeline.jobs.enqueue_job", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        run("moderation_scan", "testapp.Photo")
    assert sorted(queued) == sorted(photo_jobs().values_list("pk", flat=True))
    assert all(job.enqueued_at for job in photo_jobs())


def test_backfilled_block_does_not_hide_without_apply(old_photos, photos_registered, scripted):
    photo = old_photos(1)[0]
    photos_registered()
    run("moderation_scan", "testapp.Photo")
    job = photo_jobs().get()
    scripted.script.append(result("high", "pornographic_adultContent"))
    assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    photo.refresh_from_db()
    assert (job.suggestion, job.decision) == ("block", Decision.AUTO_BLOCK)
    assert photo.hidden is False
    event = ReviewEvent.objects.get(job=job, action="auto_block")
    assert event.data == {"block_action": "skipped"} and "--apply" in event.reason
    assert run_json("moderation_stats")["blocks_not_applied"] == 1

    # --resubmit --apply: a new job whose block verdict hides the photo
    run("moderation_scan", "testapp.Photo", "--resubmit", "--apply")
    new = photo_jobs().get(is_current=True)
    assert new.pk != job.pk and "apply_block" not in new.options
    scripted.script.append(result("high", "pornographic_adultContent"))
    pipeline.process(new.pk)
    photo.refresh_from_db()
    assert photo.hidden is True


def test_saved_uploads_still_hide(photos_registered, scripted, image_file):
    """Jobs from saves (not the scan) apply the block action as before."""
    photos_registered()
    photo = Photo.objects.create(image=image_file())
    job = photo_jobs().get()
    assert "apply_block" not in job.options
    scripted.script.append(result("high", "pornographic_adultContent"))
    pipeline.process(job.pk)
    photo.refresh_from_db()
    assert photo.hidden is True


def test_scan_resubmit_and_files_changed_outside_a_save(old_photos, photos_registered):
    photos = old_photos(3)
    photos_registered()
    run("moderation_scan", "testapp.Photo")
    first = {j.object_id: j.pk for j in photo_jobs()}

    # A name changed by a queryset update (no signal): a new job without --resubmit.
    Photo.objects.filter(pk=photos[0].pk).update(image=photos[1].image.name)
    data = run_json("moderation_scan", "testapp.Photo")
    assert (data["created"], data["existing"]) == (1, 2)
    replaced = Job.objects.get(pk=first[str(photos[0].pk)])
    assert not replaced.is_current and replaced.status == Status.CANCELLED

    # Bytes replaced under the same name: only --resubmit sees it.
    data = run_json("moderation_scan", "testapp.Photo", "--resubmit")
    assert data["created"] == 3
    assert photo_jobs().filter(is_current=True).count() == 3
    assert photo_jobs().count() == 7

    # Without a date field, --since applies to the jobs: moderated since then = done.
    assert Photo._meta.get_field("title") and operations.date_field_of(Photo) is None
    data = run_json("moderation_scan", "testapp.Photo", "--resubmit", "--since", "1h")
    assert (data["created"], data["existing"], data["date_field"]) == (0, 3, None)


def test_scan_since_filters_on_the_models_date_field(image_file):
    posts = [Post.objects.create(title=f"t{i}", image=image_file(f"b{i}.png"))
             for i in range(3)]
    Job.objects.all().delete()  # as if the posts predated the registration
    Post.objects.filter(pk=posts[0].pk).update(created_at=timezone.now() - timedelta(days=10))
    data = run_json("moderation_scan", "blog.Post", "--since", "2d", "--field", "image")
    assert (data["date_field"], data["created"], data["total"]) == ("created_at", 2, 2)
    assert sorted(Job.objects.values_list("object_id", flat=True)) == sorted(
        str(p.pk) for p in posts[1:])
    assert set(Job.objects.values_list("field_name", flat=True)) == {"image"}
    day = (timezone.now() - timedelta(days=20)).date().isoformat()
    data = run_json("moderation_scan", "blog.Post", "--since", day, "--field", "image",
                    "--date-field", "created_at")
    assert (data["created"], data["existing"]) == (1, 2)


def test_scan_all_registered_models(old_photos, photos_registered):
    old_photos(2)
    photos_registered()
    data = run_json("moderation_scan", "--all", "--dry-run")
    by_model = {item["model"]: item for item in data}
    assert by_model["testapp.Photo"]["created"] == 2 and "blog.Post" in by_model


@pytest.mark.parametrize("args,needle", [
    (["nope.Model"], "unknown model 'nope.Model'"),
    (["Photo"], "unknown model"),
    (["testapp.Unregistered"], "not registered for moderation"),
    (["testapp.Photo", "--field", "nope"], "has no field 'nope'"),
    (["testapp.Photo", "--field", "title"], "is not moderated"),
    (["testapp.Photo", "--since", "yesterday-ish"], "is not a date"),
    (["testapp.Photo", "--since", "2024-02-30"], "is not a date"),
    (["testapp.Photo", "--rate", "0"], "--rate must be > 0"),
    (["testapp.Photo", "--rate", "-5"], "--rate must be > 0"),
    (["testapp.Photo", "--batch", "0"], "--batch must be > 0"),
    (["testapp.Photo", "--limit", "-1"], "--limit must be > 0"),
    (["testapp.Photo", "--since", "1d", "--date-field", "title"], "is not a date field"),
    ([], "give --all"),
    (["testapp.Photo", "--all"], "give --all"),
    (["--all", "--field", "image"], "need one model"),
])
def test_scan_bad_inputs_exit_2(photos_registered, args, needle):
    photos_registered()
    assert needle in fails("moderation_scan", *args)


def test_rate_limiter_keeps_an_even_cadence():
    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(9):
        limiter.wait()
    assert now[0] - 100.0 == pytest.approx(8 / 4)  # 9 calls: 8 intervals of 1/4 s
    now[0] += 10  # an idle spell is not saved up as a burst
    limiter.wait()
    limiter.wait()
    assert slept[-1] == pytest.approx(0.25)
    assert RateLimiter(None).wait() == 0


def test_scan_rate_paces_job_creation(old_photos, photos_registered):
    """N jobs at --rate R take (N - 1) / R seconds (a fake clock; then a short real run)."""
    old_photos(5)
    registration = photos_registered()
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    report = operations.scan(registration, rate=2, clock=lambda: now[0], sleep=sleep)
    assert report.created == 5 and now[0] == pytest.approx(4 / 2)

    import time

    started = time.monotonic()
    run("moderation_scan", "testapp.Photo", "--resubmit", "--rate", "20")
    assert time.monotonic() - started >= 4 / 20


def test_progress_line_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = operations.Progress(stream, label="scan", total=10, clock=lambda: 5.0)
    bar.update(4, "at pk 4", force=True)
    bar.close()
    assert stream.getvalue().startswith("\rscan: [########") and "4/10" in stream.getvalue()
    assert stream.getvalue().endswith("\n")
    plain = io.StringIO()
    operations.Progress(plain, label="scan").update(1, force=True)
    assert plain.getvalue() == ""


def test_parse_when():
    now = timezone.now()
    assert parse_when("7d", now=now) == now - timedelta(days=7)
    assert parse_when("90m", now=now) == now - timedelta(minutes=90)
    day = parse_when("2024-03-01")
    assert timezone.is_aware(day) and (day.year, day.month, day.day, day.hour) == (2024, 3, 1, 0)
    assert parse_when("2024-03-01T12:30:00+00:00").hour == 12
    with pytest.raises(BadInput):
        parse_when("soon")


# --- moderation_poll ----------------------------------------------------------------------


def test_poll_processes_due_jobs_in_this_process(old_photos, photos_registered, scripted):
    old_photos(3)
    photos_registered()
    run("moderation_scan", "testapp.Photo")
    scripted.script += [result("none"), result("none")]
    data = run_json("moderation_poll", "--limit", "2")
    assert data == {"mode": "process", "due": 3, "jobs": {"done": 2}, "feedback": {}}
    assert photo_jobs().filter(status=Status.DONE).count() == 2
    scripted.script.append(result("medium", "pt_qrCode"))
    text = run("moderation_poll")
    assert "processed 1 of 1 due jobs (done 1)" in text
    assert photo_jobs().filter(review_state=ReviewState.PENDING).count() == 1
    assert "processed 0 of 0 due jobs" in run("moderation_poll")


def test_poll_enqueue_only_puts_jobs_on_the_queue(old_photos, photos_registered, monkeypatch):
    old_photos(3)
    photos_registered()
    run("moderation_scan", "testapp.Photo")
    queued = []
    monkeypatch.setattr("moderation.pipeline.jobs.enqueue_job", queued.append)
    data = run_json("moderation_poll", "--enqueue", "--provider", "scripted")
    assert data["jobs"] == {"enqueued": 3} and len(queued) == 3
    assert photo_jobs().filter(status=Status.PENDING).count() == 3
    # enqueued just now: not again until the task is overdue
    assert run_json("moderation_poll", "--enqueue")["jobs"] == {}


def test_poll_bad_inputs_exit_2(scripted):
    assert "--limit must be > 0" in fails("moderation_poll", "--limit", "0")
    assert "unknown provider 'nope'" in fails("moderation_poll", "--provider", "nope")


# --- moderation_retry / moderation_cancel -------------------------------------------------


def adhoc(status=Status.PENDING, provider="scripted", **fields) -> Job:
    return Job.objects.create(media_kind="image", provider=provider, status=status,
                              file_name="x.png", **fields)


def test_retry_failed_and_expired_jobs(scripted, django_capture_on_commit_callbacks,
                                       monkeypatch):
    failed = adhoc(Status.FAILED, error_code="provider_failed", attempts=5)
    expired = adhoc(Status.EXPIRED, provider="local")
    superseded = adhoc(Status.FAILED, is_current=False)
    done = adhoc(Status.DONE)
    queued = []
    monkeypatch.setattr("moderation.pipeline.jobs.enqueue_job", queued.append)

    data = run_json("moderation_retry", "--failed", "--dry-run")
    assert (data["retried"], data["superseded"]) == (1, 1)
    assert Job.objects.get(pk=failed.pk).status == Status.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        text = run("moderation_retry", "--failed")
    assert "retried 1 jobs (failed 1)" in text and "skipped 1 superseded" in text
    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error_code) == (Status.PENDING, 0, "")
    assert queued == [failed.pk]
    assert ReviewEvent.objects.filter(job=failed, action="requeued").exists()

    data = run_json("moderation_retry", "--expired", "--provider", "scripted")
    assert data["retried"] == 0
    data = run_json("moderation_retry", "--job", str(superseded.pk), str(done.pk),
                    str(expired.pk))
    assert data["by_status"] == {"failed": 1, "expired": 1} and data["not_retryable"] == 1
    assert Job.objects.get(pk=done.pk).status == Status.DONE


def test_retry_bad_inputs_exit_2(scripted):
    assert "--failed, --expired" in fails("moderation_retry")
    assert "no job with id 999999" in fails("moderation_retry", "--job", "999999")
    assert "unknown provider" in fails("moderation_retry", "--failed", "--provider", "nope")


def test_cancel_unfinished_jobs(scripted, django_capture_on_commit_callbacks, monkeypatch):
    pending = adhoc()
    other = adhoc(provider="local")
    running = adhoc(Status.IN_PROGRESS, provider_task_id="task-1")
    done = adhoc(Status.DONE)
    cancelled_at_provider = []
    monkeypatch.setattr("moderation.pipeline.jobs.enqueue_provider_cancel",
                        lambda alias, task: cancelled_at_provider.append((alias, task)))

    assert run_json("moderation_cancel", "--pending", "--dry-run")["cancelled"] == 2
    data = run_json("moderation_cancel", "--pending", "--provider", "scripted")
    assert data["by_status"] == {"pending": 1}
    assert Job.objects.get(pk=pending.pk).status == Status.CANCELLED
    assert Job.objects.get(pk=running.pk).status == Status.IN_PROGRESS

    with django_capture_on_commit_callbacks(execute=True):
        text = run("moderation_cancel", "--job", str(running.pk), str(done.pk),
                   "--reason", "provider outage")
    assert "cancelled 1 jobs (in_progress 1)" in text and "1 named jobs" in text
    running.refresh_from_db()
    assert running.status == Status.CANCELLED and running.error_message == "provider outage"
    assert cancelled_at_provider == [("scripted", "task-1")]

    assert run_json("moderation_cancel", "--all-unfinished")["cancelled"] == 1
    assert Job.objects.get(pk=other.pk).status == Status.CANCELLED
    assert ReviewEvent.objects.filter(action="cancelled").count() == 3


def test_cancel_bad_inputs_exit_2(scripted):
    assert "--pending or --all-unfinished" in fails("moderation_cancel")
    assert "no job with id" in fails("moderation_cancel", "--job", "424242")
    assert "unknown provider" in fails("moderation_cancel", "--pending", "--provider", "x")


# --- moderation_purge ---------------------------------------------------------------------


@pytest.fixture
def finished_photo(photos_registered, scripted, image_file):
    """A photo whose job finished with a thumbnail in evidence storage."""
    photos_registered()
    made = []

    def make(risk="high"):
        made.append(risk)  # different bytes each time: no result is reused
        photo = Photo.objects.create(image=image_file(color=(len(made), 200, 100)))
        job = photo_jobs().get(object_id=str(photo.pk), is_current=True)
        scripted.script.append(result(risk, "porn" if risk != "none" else "nonLabel"))
        pipeline.process(job.pk)
        job.refresh_from_db()
        assert job.status == Status.DONE
        return photo, job

    return make


def age(job, days):
    Job.objects.filter(pk=job.pk).update(completed_at=timezone.now() - timedelta(days=days))


def thumbnail_of(job) -> str:
    return Frame.objects.get(job=job).thumbnail.name


def test_purge_deletes_old_superseded_jobs_and_their_evidence(
        finished_photo, scripted, image_file, django_capture_on_commit_callbacks):
    storage = evidence_storage()
    photo, old = finished_photo("none")
    photo.image = image_file("new.png", color=(1, 2, 3))
    photo.save()  # a new current job; the old one is superseded
    old.refresh_from_db()
    assert not old.is_current
    _, held = finished_photo()
    held_photo = Photo.objects.get(pk=held.object_id)
    held_photo.image = image_file("held2.png", color=(9, 9, 9))
    held_photo.save()
    _, current = finished_photo()
    for job in (old, held, current):
        age(job, 60)
    Job.objects.filter(pk=held.pk).update(legal_hold=True)
    recent_photo, recent = finished_photo()
    recent_photo.delete()  # not current any more, but finished just now
    name = thumbnail_of(old)
    size = storage.size(name)
    assert storage.exists(name) and size > 0

    dry = run_json("moderation_purge", "--older-than", "30", "--dry-run")
    assert (dry["jobs"], dry["files"], dry["bytes"]) == (1, 1, size)
    assert Job.objects.filter(pk=old.pk).exists() and storage.exists(name)

    with django_capture_on_commit_callbacks(execute=True):
        data = run_json("moderation_purge", "--older-than", "30")
    assert (data["jobs"], data["files"], data["bytes"]) == (1, 1, size)
    assert data["rows"]["moderation.Job"] == 1 and data["rows"]["moderation.Frame"] == 1
    assert data["rows"]["moderation.ReviewEvent"] >= 3
    assert data["rows"] == dry["rows"]
    assert not Job.objects.filter(pk=old.pk).exists()
    assert not storage.exists(name)  # gone with its row, on commit
    for kept in (held, current, recent):
        assert Job.objects.filter(pk=kept.pk).exists()
        assert storage.exists(thumbnail_of(kept))

    # --include-current takes the current job too (not the held one)
    with django_capture_on_commit_callbacks(execute=True):
        text = run("moderation_purge", "--older-than", "30", "--include-current")
    assert "deleted 1 jobs" in text and "1 evidence files" in text
    assert not Job.objects.filter(pk=current.pk).exists()
    assert Job.objects.filter(pk=held.pk).exists()


def test_purge_keeps_reviews_blocks_library_sources_and_unfinished(
        finished_photo, image_file, django_capture_on_commit_callbacks):
    jobs = {}
    for name, risk in (("review", "medium"), ("blocked", "high"), ("library", "none"),
                       ("plain", "none")):
        photo, job = finished_photo(risk)
        photo.delete()  # retires the job: not current
        age(job, 90)
        jobs[name] = job
    assert Job.objects.get(pk=jobs["review"].pk).review_state == ReviewState.PENDING
    HashEntry.objects.create(list_type="block", pdq="0" * 64,
                             source_frame=Frame.objects.get(job=jobs["library"]))
    unfinished = adhoc(Status.PENDING, created_at=timezone.now() - timedelta(days=90))
    with django_capture_on_commit_callbacks(execute=True):
        data = run_json("moderation_purge", "--older-than", "30", "--keep-blocked")
    assert data["jobs"] == 1
    assert set(Job.objects.values_list("pk", flat=True)) == {
        jobs["review"].pk, jobs["blocked"].pk, jobs["library"].pk, unfinished.pk}
    with django_capture_on_commit_callbacks(execute=True):
        assert run_json("moderation_purge", "--older-than", "30")["jobs"] == 1  # the block
    assert HashEntry.objects.get().source_frame is not None


def test_purge_frees_the_inputs_of_adhoc_jobs(django_capture_on_commit_callbacks):
    storage = evidence_storage()
    job = pipeline.create_adhoc_job(name="in.png", content=b"\x89PNG" + b"x" * 96)
    Job.objects.filter(pk=job.pk).update(status=Status.DONE, completed_at=timezone.now()
                                         - timedelta(days=40))
    assert storage.exists(job.file_name)
    with django_capture_on_commit_callbacks(execute=True):
        data = run_json("moderation_purge", "--older-than", "7", "--batch", "1")
    assert (data["jobs"], data["files"], data["bytes"]) == (1, 1, 100)
    assert not storage.exists(job.file_name)


def test_purge_bad_inputs_exit_2():
    assert "--older-than must be >= 0" in fails("moderation_purge", "--older-than", "-1")
    assert "--batch must be > 0" in fails("moderation_purge", "--older-than", "1",
                                          "--batch", "0")
    with pytest.raises(CommandError, match="--older-than"):
        run("moderation_purge")  # required


# --- moderation_stats ---------------------------------------------------------------------


def test_stats_counts_queue_and_provider_errors(scripted):
    now = timezone.now()
    minutes = [timedelta(minutes=m) for m in range(6)]
    adhoc(Status.DONE, suggestion="block", decision=Decision.AUTO_BLOCK, risk_level="high",
          labels=["pornographic_adultContent", "pt_qrCode"], created_at=now - minutes[5],
          submitted_at=now - minutes[4], completed_at=now - minutes[3])
    adhoc(Status.DONE, suggestion="review", labels=["pt_qrCode"],
          review_state=ReviewState.PENDING, created_at=now - minutes[5],
          submitted_at=now - minutes[3], completed_at=now - minutes[1])
    adhoc(Status.DONE, suggestion="pass", decision=Decision.AUTO_PASS, provider="local")
    adhoc(Status.FAILED, error_code="file_missing")
    adhoc(Status.FAILED, error_code="file_missing")
    adhoc(Status.EXPIRED, error_code="expired")
    adhoc(Status.PENDING, error_code="throttled", created_at=now - timedelta(hours=2),
          next_attempt_at=now - minutes[1])
    adhoc(Status.PENDING, created_at=now - timedelta(hours=1),
          next_attempt_at=now + timedelta(hours=1))
    adhoc(Status.CANCELLED, created_at=now - timedelta(days=30))

    data = run_json("moderation_stats")
    assert data["jobs"] == 9
    assert data["by_status"] == {"done": 3, "pending": 2, "failed": 2, "expired": 1,
                                 "cancelled": 1}
    assert data["by_suggestion"] == {"block": 1, "pass": 1, "review": 1}
    assert data["by_label"] == {"pt_qrCode": 2, "pornographic_adultContent": 1}
    assert data["review_pending"] == 1 and data["blocks_not_applied"] == 0
    queue = data["queue"]
    assert (queue["unfinished"], queue["due"]) == (2, 1)
    assert queue["oldest_due_seconds"] == pytest.approx(7200, abs=60)
    assert queue["oldest_pending_seconds"] == pytest.approx(7200, abs=60)
    assert queue["median_wait_seconds"] == pytest.approx(90, abs=1)  # 60 s and 120 s
    assert queue["median_completion_seconds"] == pytest.approx(180, abs=1)  # 120 s, 240 s
    scripted_figures = data["providers"]["scripted"]
    assert scripted_figures["finished"] == 5 and scripted_figures["failed"] == 2
    assert scripted_figures["expired"] == 1 and scripted_figures["retrying"] == 1
    assert scripted_figures["error_rate"] == pytest.approx(3 / 5)
    assert scripted_figures["top_errors"] == {"file_missing": 2, "expired": 1}
    assert data["providers"]["local"]["error_rate"] == 0

    recent = run_json("moderation_stats", "--since", "1d")
    assert recent["jobs"] == 8 and "cancelled" not in recent["by_status"]
    assert recent["queue"]["unfinished"] == 2  # the queue is always now

    text = run("moderation_stats", "--top", "1")
    assert "jobs: 9" in text and "pt_qrCode" in text and "error rate 60.0%" in text
    assert "file_missing" in text and "expired  " not in text.split("providers:")[1]


def test_stats_of_an_empty_database_and_bad_inputs():
    text = run("moderation_stats")
    assert "jobs: 0" in text and "oldest due: -" in text
    assert "is not a date" in fails("moderation_stats", "--since", "last tuesday")
    assert "--top must be >= 0" in fails("moderation_stats", "--top", "-1")


# --- moderation_libraries -----------------------------------------------------------------

PDQ_A, PDQ_B, PDQ_C = "a" * 64, "0123456789abcdef" * 4, "F" * 64


def test_libraries_import_and_export_round_trip(tmp_path):
    source = tmp_path / "hashes.csv"
    source.write_text(f"pdq,label,note\n{PDQ_A},pornographic_adultContent,from tx\n"
                      f"{PDQ_B}\n{PDQ_B}\nnot-a-hash\n{PDQ_C},,,allow\n", encoding="utf-8")
    err = io.StringIO()
    out = io.StringIO()
    call_command("moderation_libraries", "import", str(source), "--label", "spam_lib",
                 stdout=out, stderr=err)
    assert "added 3 entries; 0 already listed, 1 repeated lines, 1 bad lines" in out.getvalue()
    assert "line 5:" in err.getvalue() and "not a 64-digit hex PDQ hash" in err.getvalue()
    entries = {e.pdq: e for e in HashEntry.objects.all()}
    assert entries[PDQ_A].label == "pornographic_adultContent"
    assert entries[PDQ_A].note == "from tx" and entries[PDQ_A].list_type == "block"
    assert entries[PDQ_B].label == "spam_lib"
    assert entries[PDQ_C.lower()].list_type == "allow"

    again = run_json("moderation_libraries", "import", str(source))
    assert (again["added"], again["present"]) == (0, 3)

    target = tmp_path / "out.csv"
    call_command("moderation_libraries", "export", str(target), "--list", "block",
                 stdout=io.StringIO(), stderr=io.StringIO())
    lines = target.read_text().splitlines()
    assert lines[0] == "pdq,label,note,list_type" and len(lines) == 3
    assert f"{PDQ_A},pornographic_adultContent,from tx,block" in lines
    everything = run("moderation_libraries", "export")
    assert everything.count("\n") == 4 and f"{PDQ_C.lower()},spam_lib,,allow" in everything

    # the export imports into an empty database as it was
    HashEntry.objects.all().delete()
    (tmp_path / "all.csv").write_text(everything)
    run("moderation_libraries", "import", str(tmp_path / "all.csv"))
    assert sorted(HashEntry.objects.values_list("pdq", "list_type")) == sorted(
        [(PDQ_A, "block"), (PDQ_B, "block"), (PDQ_C.lower(), "allow")])


def test_libraries_dry_run_strict_and_bad_inputs(tmp_path):
    source = tmp_path / "mixed.csv"
    source.write_text(f"{PDQ_A}\nzzz\n")
    assert run_json("moderation_libraries", "import", str(source), "--dry-run")["added"] == 1
    assert not HashEntry.objects.exists()
    assert "1 bad lines; nothing imported" in fails(
        "moderation_libraries", "import", str(source), "--strict")
    assert not HashEntry.objects.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("nope\nstill nope\n")
    assert "no line could be read" in fails("moderation_libraries", "import", str(bad))
    assert "no such file" in fails("moderation_libraries", "import", str(tmp_path / "x.csv"))
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    assert "UTF-8" in fails("moderation_libraries", "import", str(binary))
    assert "No such file" in fails("moderation_libraries", "export",
                                   str(tmp_path / "missing" / "out.csv"))
