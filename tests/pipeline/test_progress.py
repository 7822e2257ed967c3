"""Live progress of a running job: the local engine reports how far it has got, the worker
writes it onto the job (throttled) where another connection sees it while the step runs,
the job is ``in_progress`` from the start and its "submitted" event is written first."""

from __future__ import annotations

import threading
import time

import pytest
from django.core.files.base import ContentFile
from django.db import connections

from demo_project.blog.models import Post
from moderation import pipeline
from moderation.models import Job, ReviewEvent, Status
from moderation.pipeline import progress, worker
from moderation.pipeline.progress import ProgressWriter, describe
from moderation.providers import Media, ModerationError, ModerationRequest, get_provider
from tests.conftest import SAMPLES

MEDIA = SAMPLES.parent.parent / "tests" / "media"
CLIP = MEDIA / "speech_ad.mp4"  # 24 s, 720p frames and speech
CLIP_SECONDS = 24.0


class Watcher:
    """Reads the job's status, progress and "submitted" event from its own thread (its own
    connection) every 20 ms while the step runs in the test's thread."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.seen: list[tuple[str, dict, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                row = Job.objects.filter(pk=self.job_id).values("status", "progress").get()
                submitted = ReviewEvent.objects.filter(
                    job_id=self.job_id, action=ReviewEvent.Action.SUBMITTED).exists()
                sample = (row["status"], row["progress"], submitted)
                if not self.seen or self.seen[-1] != sample:
                    self.seen.append(sample)
                self.stop.wait(0.02)
        finally:
            connections.close_all()

    def __enter__(self) -> Watcher:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)


@pytest.fixture
def recorded_writers(monkeypatch):
    """The worker's ProgressWriters, counting the reports they hear besides their writes."""
    writers: list[ProgressWriter] = []

    class Recording(ProgressWriter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.reports: list[tuple[float, float, str]] = []
            writers.append(self)

        def __call__(self, done, total, unit="s"):
            self.reports.append((done, total, unit))
            super().__call__(done, total, unit)

    monkeypatch.setattr(worker, "ProgressWriter", Recording)
    return writers


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_video_shows_growing_progress_to_another_connection(monkeypatch,
                                                                      recorded_writers):
    # Writes every 0.2 s rather than 1 s, so that a run of a few seconds shows several.
    monkeypatch.setattr(progress, "INTERVAL", 0.2)
    post = Post.objects.create(title="v", video=ContentFile(CLIP.read_bytes(),
                                                            name="speech_ad.mp4"))
    job = Job.objects.get(object_id=str(post.pk))
    assert job.status == Status.PENDING and job.progress == {}

    with Watcher(job.pk) as watcher:
        started = time.monotonic()
        assert pipeline.process(job.pk) == "done"
        wall = time.monotonic() - started
        time.sleep(0.1)  # the watcher's last look, at the finished job

    running = [(progress_, submitted) for status, progress_, submitted in watcher.seen
               if status == Status.IN_PROGRESS]
    assert running, watcher.seen
    # in progress from the start, before any progress was reported, and only then done
    statuses = [status for status, _p, _s in watcher.seen]
    assert statuses[-1] == Status.DONE
    assert set(statuses) <= {Status.PENDING, Status.IN_PROGRESS, Status.DONE}
    assert statuses.index(Status.IN_PROGRESS) < statuses.index(Status.DONE)
    # the "submitted" event is there while the engine still works
    assert any(submitted for _p, submitted in running)
    shown = [describe(p) for p, _s in running if p]
    assert len(shown) >= 3, watcher.seen
    assert all(s["unit"] == "s" and s["total"] == pytest.approx(CLIP_SECONDS, abs=0.5)
               for s in shown)
    dones = [s["done"] for s in shown]
    assert dones == sorted(dones)
    assert dones[0] < CLIP_SECONDS / 2 and dones[-1] > dones[0]
    assert len(set(dones)) >= 3

    (writer,) = recorded_writers
    # The engine reported on every frame and speech piece; the writer wrote a few of them,
    # at most one per interval (plus the first).
    assert len(writer.reports) > writer.writes >= 3
    assert writer.writes <= 1 + wall / 0.2
    reported = [done for done, _t, _u in writer.reports]
    assert reported == sorted(reported) and reported[-1] == pytest.approx(CLIP_SECONDS, abs=0.5)

    job.refresh_from_db()
    assert job.status == Status.DONE
    actions = list(ReviewEvent.objects.filter(job=job).order_by("pk")
                   .values_list("action", flat=True))
    assert actions.index("submitted") < actions.index("completed")


@pytest.mark.django_db
def test_the_writer_throttles_to_one_write_per_interval_and_step():
    job = pipeline.create_adhoc_job(name="a.mp4", content=b"x")
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    now = [0.0]
    writer = ProgressWriter(job.pk, interval=1.0, min_step=0.01, clock=lambda: now[0])
    # 1000 reports over 10 s of a 90 s video: at most one write a second
    for step in range(1000):
        now[0] = step * 0.01
        writer(step * 0.09, 90.0, "s")
    assert writer.writes == 10  # at 0, 1, ... 9 s
    job.refresh_from_db()
    assert job.progress["unit"] == "s" and job.progress["total"] == 90.0
    assert job.progress["done"] == 81.0 and job.progress["at"]  # what was said at 9 s
    # a long pause without advance writes nothing; less than 1 % of the total neither
    before = writer.writes
    now[0] = 100.0
    writer(job.progress["done"], 90.0, "s")
    writer(job.progress["done"] + 0.5, 90.0, "s")
    assert writer.writes == before
    writer(90.0, 90.0, "s")
    assert writer.writes == before + 1
    # a finished job keeps what it had
    Job.objects.filter(pk=job.pk).update(status=Status.DONE, progress={})
    now[0] = 200.0
    ProgressWriter(job.pk)(1.0, 90.0, "s")
    job.refresh_from_db()
    assert job.progress == {}
    with pytest.raises(ValueError):
        writer(1.0, 2.0, "bytes")


@pytest.mark.slow
@pytest.mark.django_db
def test_a_frame_sequence_reports_frames():
    reports = []
    frames = [(float(i), (SAMPLES / "benign.jpg").read_bytes()) for i in range(12)]
    media = Media(name="seq", kind="frames", frames=frames)
    request = ModerationRequest(scenes=["porn"], progress=lambda *a: reports.append(a),
                                options={"audio": False})
    result = get_provider("local").submit(media, request)
    assert result.finished and len(result.frames) == 12
    assert reports[0] == (0.0, 12.0, "frames") and reports[-1] == (12.0, 12.0, "frames")
    assert [done for done, _t, _u in reports] == sorted(done for done, _t, _u in reports)


@pytest.mark.django_db
def test_a_retry_after_an_error_waits_as_pending_without_progress(monkeypatch):
    job = pipeline.create_adhoc_job(name="v.mp4", content=CLIP.read_bytes())
    provider = get_provider(job.provider)

    def fail(media, request):
        request.report_progress(3.0, CLIP_SECONDS)
        assert Job.objects.get(pk=job.pk).status == Status.IN_PROGRESS
        raise ModerationError("the engine hiccuped", code="engine_busy")

    monkeypatch.setattr(provider, "submit", fail)
    assert pipeline.process(job.pk) == "retry"
    job.refresh_from_db()
    assert job.status == Status.PENDING
    assert job.progress["done"] == 3.0  # kept until the next attempt starts afresh
    assert describe(job.progress)["percent"] == 12
