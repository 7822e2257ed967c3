"""Recovery after a worker dies (issue 10, item 8).

A worker's lease is renewed by a heartbeat while its step runs, so a dead worker's job is
handed on by the sweeper within about LEASE_SECONDS + 15 s; the attempt is counted when
the lease is taken, so a job that kills its worker every time ends at MAX_ATTEMPTS; the
engine's pool children exit with the worker that owns them. The integration tests
``kill -9`` a real qcluster worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from demo_project.blog.models import Post
from moderation import pipeline
from moderation.models import Job, ReviewEvent, Status
from moderation.pipeline.jobs import LOST_TASK_SECONDS
from moderation.pipeline.worker import Lease, LeaseLost
from moderation.providers.base import Provider
from moderation.schedule import HALF_PAST_NAME, SWEEPER_NAME, ensure_sweeper_schedule
from tests.conftest import png_bytes, wait_for
from tests.providers import ScriptedProvider, result

# slow: 77 s for the module in a full run
pytestmark = pytest.mark.slow

# --- the lease and its heartbeat (no cluster) ----------------------------------------------


def _adhoc_job(provider: str) -> Job:
    return pipeline.create_adhoc_job(kind="image", name="pic.png", content=png_bytes(),
                                     provider=provider)


@pytest.mark.django_db
def test_the_attempt_is_counted_when_a_submitting_step_takes_the_lease(scripted):
    job = _adhoc_job("scripted")
    lease = Lease(job.pk)
    assert lease.take()
    job.refresh_from_db()
    assert job.attempts == 1 and job.lease_until > timezone.now()
    assert not Lease(job.pk).take()  # held: a second delivery gets nothing, counts nothing
    lease.release()
    # A poll of a task the provider already has is not an attempt.
    Job.objects.filter(pk=job.pk).update(status=Status.SUBMITTED, provider_task_id="T-1")
    assert Lease(job.pk).take()
    job.refresh_from_db()
    assert job.attempts == 1


@pytest.mark.django_db
def test_a_job_whose_worker_died_each_time_fails_at_max_attempts(scripted):
    job = _adhoc_job("scripted")
    with override_settings(MODERATION={**settings.MODERATION, "MAX_ATTEMPTS": 3,
                                       "PROVIDERS": {"scripted": {
                                           "BACKEND": "tests.providers.ScriptedProvider"}}}):
        for _ in range(3):  # a worker takes the job and dies: its lease simply runs out
            assert Lease(job.pk).take()
            Job.objects.filter(pk=job.pk).update(lease_until=timezone.now())
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_code, job.attempts) == (Status.FAILED, "worker_lost", 3)
    assert "each of 3 attempts" in job.error_message and job.lease_until is None
    assert ScriptedProvider.calls == []  # the provider was not asked a fourth time
    assert job.events.filter(action="failed", data__code="worker_lost").count() == 1


@pytest.mark.django_db
def test_the_sweeper_hands_on_a_dead_workers_job_once(scripted):
    now = timezone.now()
    dead, alive, queued, lost = (_adhoc_job("scripted") for _ in range(4))
    recently = now - timedelta(seconds=20)
    Job.objects.filter(pk=dead.pk).update(enqueued_at=recently,
                                          lease_until=now - timedelta(seconds=1))
    Job.objects.filter(pk=alive.pk).update(enqueued_at=recently,
                                           lease_until=now + timedelta(seconds=20))
    # Waiting in a backlog for longer than a lease: its task is still queued.
    Job.objects.filter(pk=queued.pk).update(enqueued_at=now - timedelta(minutes=5))
    # Never run in LOST_TASK_SECONDS: its task was lost (Redis drops a dying worker's).
    Job.objects.filter(pk=lost.pk).update(
        enqueued_at=now - timedelta(seconds=LOST_TASK_SECONDS + 1))
    assert pipeline.sweep(now) == 2
    assert set(Job.objects.filter(enqueued_at__gte=now).values_list("pk", flat=True)) == {
        dead.pk, lost.pk}
    assert pipeline.sweep(now) == 0  # their new tasks are queued: not enqueued again


class SlowProvider(Provider):
    """Answers after ``DELAY`` seconds; ``DURING(job_pk)`` runs meanwhile (as another
    worker would)."""

    capabilities = frozenset({"image", "sync"})
    default_scenes = ("porn",)
    during = None

    def submit(self, media, request):
        if SlowProvider.during is not None:
            SlowProvider.during()
        time.sleep(self.options["DELAY"])
        return result("none")


def _slow(delay: float, lease_seconds: float):
    providers = {"slow": {"BACKEND": "tests.security.test_recovery.SlowProvider",
                          "OPTIONS": {"DELAY": delay}}}
    return override_settings(MODERATION={**settings.MODERATION, "PROVIDERS": providers,
                                         "LEASE_SECONDS": lease_seconds})


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_the_lease_while_the_step_runs():
    """A step three times longer than the lease keeps its job: nobody else takes it."""
    job = _adhoc_job("slow")
    seen, stop = [], threading.Event()

    def another_worker():
        while not stop.is_set():
            seen.append(Lease(job.pk).take())
            time.sleep(0.1)
        connection.close()

    with _slow(delay=1.8, lease_seconds=0.6):
        SlowProvider.during = threading.Thread(target=another_worker, daemon=True).start
        try:
            assert pipeline.process(job.pk) == "done"
        finally:
            stop.set()
            SlowProvider.during = None
    job.refresh_from_db()
    assert job.status == Status.DONE and job.lease_until is None and job.attempts == 1
    assert len(seen) >= 10 and not any(seen)


@pytest.mark.django_db(transaction=True)
def test_a_step_whose_lease_was_taken_over_gives_up_before_ingesting():
    """The heartbeat finds another holder (this worker stalled past its lease): the step
    stops at its next safe point and leaves the job to the new holder."""
    job = _adhoc_job("slow")

    def stall_then_lose_the_job():
        Job.objects.filter(pk=job.pk).update(lease_until=timezone.now() + timedelta(hours=1))

    with _slow(delay=0.8, lease_seconds=0.6):
        SlowProvider.during = stall_then_lose_the_job
        try:
            assert pipeline.process(job.pk) == "lost"
        finally:
            SlowProvider.during = None
    job.refresh_from_db()
    # in progress: the new holder's (a job is in_progress once a worker starts it)
    assert job.status == Status.IN_PROGRESS and not job.frames.exists()
    assert job.lease_until > timezone.now() + timedelta(minutes=50)  # the new holder's
    # the attempt did reach the provider (its "submitted" event is written first), but the
    # step completes nothing
    assert job.events.filter(action="submitted").count() == 1
    assert not job.events.filter(action="completed").exists()


@pytest.mark.django_db
def test_renewing_a_lease_someone_else_holds_fails():
    job = _adhoc_job("local")
    lease = Lease(job.pk)
    assert lease.take() and lease.renew()
    lease.check()
    Job.objects.filter(pk=job.pk).update(lease_until=None)  # cancelled, or handed on
    assert not lease.renew() and lease.lost
    with pytest.raises(LeaseLost):
        lease.check()


@pytest.mark.django_db
def test_a_one_minute_sweeper_sweeps_every_half_minute():
    Schedule.objects.filter(name__in=[SWEEPER_NAME, HALF_PAST_NAME]).delete()
    ensure_sweeper_schedule()
    first = Schedule.objects.get(name=SWEEPER_NAME)
    half = Schedule.objects.get(name=HALF_PAST_NAME)
    assert (first.func, half.func) == ("moderation.tasks.sweep",) * 2
    assert first.minutes == half.minutes == 1 and first.repeats == half.repeats == -1
    assert 29 <= (half.next_run - first.next_run).total_seconds() <= 31
    with override_settings(MODERATION={**settings.MODERATION, "SWEEPER_MINUTES": 5}):
        ensure_sweeper_schedule()
        assert list(Schedule.objects.filter(name__startswith="moderation sweeper")
                    .values_list("name", "minutes")) == [(SWEEPER_NAME, 5)]


# --- pool children exit with their owner ---------------------------------------------------


def test_a_pool_child_exits_when_its_owner_is_killed():
    """exit_with() in a real child process whose owner is not its parent (as with the
    forkserver): SIGKILL the owner and the child is gone at once."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    code = ("import sys, time; from moderation.providers.local.pool import exit_with; "
            "exit_with(int(sys.argv[1])); print('watching', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(owner.pid)],
                             stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    try:
        assert child.stdout.readline().strip() == "watching"
        assert child.poll() is None
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        started = time.monotonic()
        assert child.wait(timeout=5) == 0
        assert time.monotonic() - started < 2
    finally:
        for proc in (owner, child):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# --- a real qcluster worker killed with SIGKILL --------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _tree(pid: int) -> list[int]:
    """``pid``'s descendants, from /proc."""
    out, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        out += kids
        todo += kids
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan reparented to a non-reaping init stays one)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _busy_worker(cluster_pid: int) -> tuple[int, list[int]] | None:
    """The qcluster worker whose engine pool is up (a forkserver with children): its pid
    and its descendants."""
    for pid in _tree(cluster_pid):
        for kid in _children(pid):
            if "forkserver" in _cmdline(kid) and _children(kid):
                return pid, _tree(pid)
    return None


def _make_video(path: Path, seconds: int) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size=160x120:rate=5:duration={seconds}", "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", str(path)], check=True)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_killed_worker_job_is_done_once_by_another_within_90_s(start_qcluster, tmp_path):
    ensure_sweeper_schedule()  # the schedule as migrate makes it (a flush may have run)
    video = tmp_path / "long.mp4"
    _make_video(video, 60)
    cluster = start_qcluster()
    post = Post.objects.create(title="video", video=ContentFile(video.read_bytes(),
                                                                name="long.mp4"))
    job = Job.objects.get(object_id=str(post.pk))
    assert wait_for(lambda: _busy_worker(cluster.pid) is not None, 120), "no pool started"
    time.sleep(1.0)  # the children load their models: mid-job
    worker, tree = _busy_worker(cluster.pid)
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    job.refresh_from_db()
    assert job.status in (Status.PENDING, Status.SUBMITTED, Status.IN_PROGRESS), \
        "finished before the kill"

    # Nothing of the killed worker's tree stays: pool children, forkserver, tracker.
    assert wait_for(lambda: not any(_running(pid) for pid in tree), 15), [
        (pid, _cmdline(pid)[:80]) for pid in tree if _running(pid)]
    done = wait_for(lambda: Job.objects.filter(pk=job.pk, status=Status.DONE).exists(), 90)
    took = time.monotonic() - killed_at
    print(f"\nkill -9 recovery: job done {took:.1f} s after the kill")
    assert done, Job.objects.filter(pk=job.pk).values("status", "attempts", "lease_until")
    assert took <= 90
    assert cluster.poll() is None, "the cluster died"
    # The step releases its lease just after the commit that made the job done.
    assert wait_for(lambda: Job.objects.filter(pk=job.pk, lease_until=None).exists(), 10)
    job.refresh_from_db()
    assert job.attempts == 2
    assert ReviewEvent.objects.filter(job=job, action="completed").count() == 1
    offsets = list(job.frames.values_list("offset", flat=True))
    assert len(offsets) == len(set(offsets)) == len(job.result["frames"]) > 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_job_that_kills_its_worker_every_time_fails_at_max_attempts(start_qcluster, tmp_path):
    tally = tmp_path / "calls.txt"
    conf = {"MAX_ATTEMPTS": 2, "LEASE_SECONDS": 3, "PROVIDERS": {"killer": {
        "BACKEND": "tests.providers.WorkerKillingProvider", "OPTIONS": {"TALLY": str(tally)}}}}
    with override_settings(MODERATION={**settings.MODERATION, **conf}):
        cluster = start_qcluster(moderation=conf)
        job = _adhoc_job("killer")

        def failed():
            pipeline.sweep()  # what the sweeper schedule does, every half second here
            return Job.objects.filter(pk=job.pk, status=Status.FAILED).exists()

        assert wait_for(failed, 90), Job.objects.filter(pk=job.pk).values()
    job.refresh_from_db()
    assert (job.error_code, job.attempts) == ("worker_lost", 2)
    assert len(tally.read_text().split()) == 2  # the provider's work ran twice, not more
    assert cluster.poll() is None, "the cluster died"


@pytest.mark.parametrize(("key", "value", "bad"), [
    ("LEASE_SECONDS", 30, False), ("LEASE_SECONDS", 2.5, True), ("LEASE_SECONDS", "30", True),
    ("SWEEPER_MINUTES", 1, False), ("SWEEPER_MINUTES", 0, True), ("SWEEPER_MINUTES", 0.5, True),
])
def test_bad_lease_or_sweeper_settings_are_reported(key, value, bad):
    from moderation.checks import check_settings

    with override_settings(MODERATION={**settings.MODERATION, key: value}):
        ids = [error.id for error in check_settings()]
    assert ("moderation.E019" in ids) is bad
