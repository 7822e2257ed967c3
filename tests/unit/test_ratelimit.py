"""Account limits shared by all workers (moderation/ratelimit.py and the worker's task slots).

The budgets live in the database, so the concurrency tests use threads with their own
database connections (transactional_db); CI runs them on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from moderation import pipeline, ratelimit
from moderation.models import Job, RateBudget, Status
from moderation.pipeline.worker import claim_task_slot
from moderation.providers import ProviderError, Throttled, get_provider
from tests.conftest import SAMPLES
from tests.providers import ScriptedProvider, result
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db


class FakeClock:
    """time.time and time.sleep for the limiter, without waiting."""

    def __init__(self, start: float = 1_000_000.0):
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_calls_keep_the_cadence_of_the_rate():
    clock = FakeClock()
    times = []
    for _ in range(11):
        ratelimit.acquire("t:spacing", 10, clock=clock, sleep=clock.sleep)
        times.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # An idle budget gives at most half an interval of credit; then one turn per interval.
    assert gaps[0] >= 0.05 - 1e-9 and all(gap >= 0.1 - 1e-9 for gap in gaps[1:]), gaps
    assert times[-1] - times[0] == pytest.approx(0.95, abs=0.01)


def test_a_late_turn_does_not_push_the_schedule_back():
    clock = FakeClock()
    ratelimit.acquire("t:late", 10, clock=clock, sleep=clock.sleep)
    first = RateBudget.objects.get(key="t:late").next_at
    clock.now = first + 0.03  # the worker woke up 30 ms after its turn
    ratelimit.acquire("t:late", 10, clock=clock, sleep=clock.sleep)
    assert RateBudget.objects.get(key="t:late").next_at == pytest.approx(first + 0.1)


def test_no_limit_takes_no_turn():
    assert ratelimit.acquire("t:none", 0) == 0.0
    assert not RateBudget.objects.filter(key="t:none").exists()


def test_a_busy_budget_raises_throttled_with_retry_after():
    clock = FakeClock()
    RateBudget.objects.create(key="t:busy", next_at=clock.now + 30)
    with pytest.raises(Throttled) as caught:
        ratelimit.acquire("t:busy", 5, max_wait=2.0, clock=clock, sleep=clock.sleep)
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after >= 1.0
    assert clock.slept <= 2.0  # it gave up instead of waiting 30 s


def test_a_deleted_budget_row_is_made_again():
    ratelimit.acquire("t:gone", 100)
    RateBudget.objects.filter(key="t:gone").delete()  # as a flushed test database does
    ratelimit.acquire("t:gone", 100)
    assert RateBudget.objects.filter(key="t:gone").exists()


@pytest.mark.slow  # 1.5 s
@pytest.mark.django_db(transaction=True)
def test_threads_share_one_budget():
    """Three workers at once never exceed the rate in any one-second window."""
    rate, per_thread = 20, 10
    stamps: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(per_thread):
                ratelimit.acquire("t:threads", rate, max_wait=10)
                with lock:
                    stamps.append(time.time())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    stamps.sort()
    assert len(stamps) == 3 * per_thread
    most_in_a_second = max(
        sum(1 for t in stamps if start <= t < start + 1.0) for start in stamps
    )
    assert most_in_a_second <= rate + 1  # +1: the stamp is taken just after the turn
    assert stamps[-1] - stamps[0] >= (len(stamps) - 1) / rate * 0.9


# --- unfinished video task slots ------------------------------------------------------------


@pytest.fixture
def slotted():
    ScriptedProvider.script = []  # SlottedProvider shares its parent's script and calls
    ScriptedProvider.calls = []
    backend = "tests.providers.SlottedProvider"
    options = {"VIDEO_TASK_LIMIT": 2, "ACCOUNT": "acct"}
    providers = {"slotted": {"BACKEND": backend, "OPTIONS": options},
                 "slotted_too": {"BACKEND": backend, "OPTIONS": options}}
    with override_settings(MODERATION={"PROVIDERS": providers, "RETRY_BACKOFF": 0.01,
                                       "POLL_INTERVAL": 30}):
        get_provider.cache_clear()
        yield ScriptedProvider
    get_provider.cache_clear()


def _video_job(register, provider: str) -> Job:
    register(Photo, provider=provider, kinds={"image": "video"})
    unique = f"fake video bytes {provider} {time.time_ns()}".encode()  # no result reuse
    photo = Photo.objects.create(image=ContentFile(unique, name="v.mp4"))
    return Job.objects.get(object_id=str(photo.pk))


def test_the_third_video_task_waits_for_a_slot(slotted, register):
    jobs = [_video_job(register, alias) for alias in ("slotted", "slotted_too", "slotted")]
    slotted.script += [result(status="in_progress", task_id="t1"),
                       result(status="in_progress", task_id="t2")]
    assert pipeline.process(jobs[0].pk) == "submitted"
    assert pipeline.process(jobs[1].pk) == "submitted"  # another alias, the same account
    assert pipeline.process(jobs[2].pk) == "waiting"
    waiting = Job.objects.get(pk=jobs[2].pk)
    assert waiting.status == Status.PENDING and waiting.attempts == 0
    assert waiting.next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert [c[0] for c in slotted.calls] == ["submit", "submit"]  # the provider never heard

    slotted.script += [result(risk="none")]  # the first task finishes: a slot frees up
    Job.objects.filter(pk=jobs[0].pk).update(next_attempt_at=timezone.now())
    assert pipeline.process(jobs[0].pk) == "done"
    Job.objects.filter(pk=jobs[2].pk).update(next_attempt_at=timezone.now())
    slotted.script += [result(status="in_progress", task_id="t3")]
    assert pipeline.process(jobs[2].pk) == "submitted"
    assert Job.objects.get(pk=jobs[2].pk).provider_task_id == "t3"


def test_a_failed_submission_gives_its_slot_back(slotted, register):
    jobs = [_video_job(register, "slotted") for _ in range(2)]
    slotted.script += [ProviderError("outage", code="server_error")]
    assert pipeline.process(jobs[0].pk) == "retry"
    failed = Job.objects.get(pk=jobs[0].pk)
    assert failed.status == Status.PENDING and failed.error_code == "server_error"
    slotted.script += [result(status="in_progress", task_id="t2")]
    assert pipeline.process(jobs[1].pk) == "submitted"


def test_a_claimed_job_without_task_id_is_submitted_again(slotted, register):
    """A worker that died between claiming the slot and saving the task id."""
    job = _video_job(register, "slotted")
    Job.objects.filter(pk=job.pk).update(status=Status.SUBMITTED)
    slotted.script += [result(status="in_progress", task_id="t9")]
    assert pipeline.process(job.pk) == "submitted"
    assert [c[0] for c in slotted.calls] == ["submit"]
    assert Job.objects.get(pk=job.pk).provider_task_id == "t9"


def test_images_take_no_slot(slotted, register):
    register(Photo, provider="slotted")
    photo = Photo.objects.create(image=ContentFile((SAMPLES / "benign.jpg").read_bytes(),
                                                   name="b.jpg"))
    job = Job.objects.get(object_id=str(photo.pk))
    assert claim_task_slot(job, get_provider("slotted")) is True
    assert Job.objects.get(pk=job.pk).status == Status.PENDING


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_exceed_the_limit(slotted, register):
    jobs = [_video_job(register, "slotted") for _ in range(6)]
    provider = get_provider("slotted")
    outcomes: list[bool] = []
    barrier = threading.Barrier(len(jobs))

    def claim(job):
        try:
            barrier.wait(5)
            outcomes.append(claim_task_slot(Job.objects.get(pk=job.pk), provider))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == [False] * 4 + [True] * 2
    assert Job.objects.filter(status=Status.SUBMITTED).count() == 2


def test_throttled_retry_after_sets_the_next_try(scripted, register):
    register(Photo, provider="scripted")
    photo = Photo.objects.create(image=ContentFile((SAMPLES / "benign.jpg").read_bytes(),
                                                   name="b.jpg"))
    job = Job.objects.get(object_id=str(photo.pk))
    scripted.script += [Throttled("slow down", retry_after=120)]
    assert pipeline.process(job.pk) == "retry"
    job.refresh_from_db()
    assert job.attempts == 0 and job.status == Status.PENDING
    wait = (job.next_attempt_at - timezone.now()).total_seconds()
    assert 110 < wait <= 180
