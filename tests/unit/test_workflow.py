"""The workflow engine's shared parts: one lease mechanism (moderation.leases) and one
queue adapter (moderation.taskqueue), the only place that talks to django-q2."""

from __future__ import annotations

import ast
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import Schedule
from django_q.signing import SignedPackage

import moderation
from moderation import leases, pipeline, retrying, taskqueue
from moderation.models import Job
from moderation.providers import ModerationError, Throttled
from tests.conftest import png_bytes

PACKAGE = Path(moderation.__file__).parent
ADAPTER = PACKAGE / "taskqueue" / "django_q2.py"


def _job() -> Job:
    return pipeline.create_adhoc_job(kind="image", name="pic.png", content=png_bytes(),
                                     provider="scripted")


def _rows(job: Job):
    return Job.objects.filter(pk=job.pk)


# --- the queue adapter alone imports django_q ----------------------------------------------


def _imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_only_the_queue_adapter_imports_django_q():
    """Anywhere else (function-level imports included) a Celery or Django Tasks adapter
    would have to hunt for it."""
    importers = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
        if any(name == "django_q" or name.startswith("django_q.")
               for name in _imports_of(path)))
    assert importers == [str(ADAPTER.relative_to(PACKAGE))]


@pytest.mark.django_db
def test_enqueue_puts_a_named_task_for_the_dotted_path_on_the_broker():
    broker = get_broker()
    broker.purge_queue()
    taskqueue.enqueue("moderation.tasks.process_job", 41, name="moderation-job-41")
    [(ack_id, payload)] = broker.dequeue()
    broker.acknowledge(ack_id)
    task = SignedPackage.loads(payload)
    assert (task["func"], task["args"], task["name"], task["group"]) == (
        "moderation.tasks.process_job", (41,), "moderation-job-41", "moderation")


@pytest.mark.django_db
def test_a_schedule_is_created_once_updated_in_place_and_removed():
    taskqueue.remove_schedules(["wf test"])
    taskqueue.ensure_schedule("wf test", "moderation.tasks.sweep", minutes=1, first_run_in=30)
    first = Schedule.objects.get(name="wf test")
    assert (first.func, first.minutes, first.repeats) == ("moderation.tasks.sweep", 1, -1)
    assert 25 <= (first.next_run - timezone.now()).total_seconds() <= 31
    taskqueue.ensure_schedule("wf test", "moderation.tasks.sweep", minutes=5)
    again = Schedule.objects.get(name="wf test")
    assert (again.pk, again.minutes, again.next_run) == (first.pk, 5, first.next_run)
    taskqueue.remove_schedules(["wf test", "no such schedule"])
    assert not Schedule.objects.filter(name="wf test").exists()


@pytest.mark.django_db
def test_tasks_go_to_the_apps_own_cluster_when_one_is_named():
    with override_settings(MODERATION={**settings.MODERATION, "QUEUE": "moderation-only"}):
        taskqueue.ensure_schedule("wf cluster", "moderation.tasks.sweep", minutes=2)
    assert Schedule.objects.get(name="wf cluster").cluster == "moderation-only"


# --- one lease mechanism --------------------------------------------------------------------


@pytest.mark.django_db
def test_of_two_takers_of_a_free_row_one_wins(scripted):
    job = _job()
    now = timezone.now()
    mine, theirs = leases.until(60, now), leases.until(90, now)
    free = _rows(job).filter(leases.free("lease_until", now))
    assert leases.take(free, "lease_until", mine, attempts=7)
    assert not leases.take(free, "lease_until", theirs, attempts=8)
    job.refresh_from_db()
    assert (job.lease_until, job.attempts) == (mine, 7)


@pytest.mark.django_db
def test_a_hold_that_ran_out_is_free_again(scripted):
    job = _job()
    past = timezone.now() - timedelta(seconds=1)
    _rows(job).update(lease_until=past)
    assert leases.take(_rows(job).filter(leases.free("lease_until", timezone.now())),
                       "lease_until", leases.until(60))


@pytest.mark.django_db
def test_a_holder_that_lost_the_row_neither_renews_nor_frees_it(scripted):
    job = _job()
    mine = leases.until(60)
    assert leases.take(_rows(job), "lease_until", mine)
    assert leases.renew(_rows(job), "lease_until", mine, mine + timedelta(seconds=5))
    theirs = leases.until(120)
    _rows(job).update(lease_until=theirs)  # ours ran out, somebody else took it
    assert not leases.renew(_rows(job), "lease_until", mine, leases.until(600))
    assert not leases.release(_rows(job), "lease_until", mine)
    job.refresh_from_db()
    assert job.lease_until == theirs
    assert leases.release(_rows(job), "lease_until", theirs)
    job.refresh_from_db()
    assert job.lease_until is None


@pytest.mark.slow  # 0.9 s
def test_the_heartbeat_renews_until_the_block_ends_and_stops_when_the_hold_is_lost():
    beats: list[float] = []
    lost_after = 3

    def renew() -> bool:
        beats.append(time.monotonic())
        return len(beats) < lost_after

    with leases.heartbeat(renew, 0.05, "test 1"):
        time.sleep(0.5)
    assert len(beats) == lost_after  # stopped at the first "lost", not 10 beats
    threads = [t.name for t in threading.enumerate()]
    assert "moderation-lease (test 1)" not in threads
    beats.clear()
    with leases.heartbeat(lambda: beats.append(0) or True, 0.05, "test 2"):
        time.sleep(0.3)
    count = len(beats)
    time.sleep(0.15)
    assert count >= 2 and len(beats) == count  # no beat after the block


# --- one retry rule, one sweep ---------------------------------------------------------------


@override_settings(MODERATION={**settings.MODERATION, "RETRY_BACKOFF": 10,
                               "RETRY_BACKOFF_MAX": 60, "MAX_ATTEMPTS": 4})
def test_a_failed_step_backs_off_exponentially_until_its_attempts_are_spent():
    outage = ModerationError("down", code="service_unavailable")
    for attempts, low, high in ((1, 5, 10), (2, 10, 20), (3, 20, 40)):
        delay, recorded = retrying.next_try(attempts, outage)
        assert low <= delay <= high and recorded == attempts
    assert 30 <= retrying.backoff_seconds(9) <= 60  # capped
    assert retrying.next_try(4, outage) == (None, 4)  # MAX_ATTEMPTS: give up


@override_settings(MODERATION={**settings.MODERATION, "RETRY_BACKOFF": 10,
                               "MAX_ATTEMPTS": 4})
def test_a_throttled_step_waits_its_retry_after_and_gets_its_attempt_back():
    delay, recorded = retrying.next_try(4, Throttled("slow down", retry_after=20))
    assert 20 <= delay <= 30 and recorded == 3  # not given up at MAX_ATTEMPTS
    delay, recorded = retrying.next_try(1, Throttled("slow down"))
    assert 5 <= delay <= 10 and recorded == 0


@pytest.mark.django_db
def test_a_sweep_enqueues_each_due_row_once_and_counts_them(scripted):
    jobs = [_job() for _ in range(3)]
    sent: list[int] = []
    due = Job.objects.filter(pk__in=[jobs[0].pk, jobs[2].pk]).order_by("pk")
    assert retrying.resend(due, sent.append) == 2
    assert sent == [jobs[0].pk, jobs[2].pk]
