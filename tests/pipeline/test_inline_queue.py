"""The queue is one setting away: with MODERATION["TASK_QUEUE"] pointed at the inline
adapter, a real upload is moderated when its transaction commits, a failed step is retried
by the sweeper's schedule (kept in memory), and django-q2's tables (its ORM broker's OrmQ,
its Schedule) are never touched."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import override_settings
from django_q.brokers import get_broker
from django_q.models import OrmQ, Schedule

from moderation import schedule, signals, taskqueue
from moderation.models import Job, Status
from moderation.providers import ProviderError
from moderation.taskqueue import inline
from tests.providers import result
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db(transaction=True)  # real commits, as on a site


@pytest.fixture
def inline_queue(scripted):
    """The inline adapter, and the state of django-q2's tables to compare with after."""
    before = (OrmQ.objects.count(), list(Schedule.objects.values_list("pk", "next_run")),
              get_broker().queue_size())
    with override_settings(MODERATION={**settings.MODERATION, "TASK_QUEUE":
                                       "moderation.taskqueue.inline"}):
        assert taskqueue.adapter() is inline
        yield before
    inline.remove_schedules(list(inline.schedules()))


def untouched(before) -> bool:
    return before == (OrmQ.objects.count(),
                      list(Schedule.objects.values_list("pk", "next_run")),
                      get_broker().queue_size())


def test_an_upload_is_moderated_when_its_transaction_commits(inline_queue, scripted,
                                                             register, image_file):
    register(Photo, provider="scripted", on_block="hide")
    scripted.script.append(result("high", "porn"))
    blocked = []

    def on_blocked(**kwargs):
        blocked.append(kwargs["job"].pk)

    signals.content_blocked.connect(on_blocked)
    try:
        photo = Photo.objects.create(image=image_file())  # autocommit: the job runs now
    finally:
        signals.content_blocked.disconnect(on_blocked)
    job = Job.objects.get(object_id=str(photo.pk))
    assert (job.status, job.suggestion, job.attempts) == (Status.DONE, "block", 1)
    assert job.enqueued_at and job.lease_until is None  # queued through the pipeline, released
    assert blocked == [job.pk]
    assert [call[0] for call in scripted.calls] == ["submit"]
    assert untouched(inline_queue)


def test_a_failed_step_is_retried_by_the_sweeper_kept_in_memory(inline_queue, scripted,
                                                                register, image_file):
    register(Photo, provider="scripted")
    scripted.script += [ProviderError("outage", code="service_unavailable"),
                        result("none", "nonLabel")]
    schedule.ensure_sweeper_schedule()  # what migrate does: here, in memory
    assert set(inline.schedules()) == {schedule.SWEEPER_NAME, schedule.HALF_PAST_NAME}
    photo = Photo.objects.create(image=image_file())
    job = Job.objects.get(object_id=str(photo.pk))
    assert (job.status, job.attempts, job.error_code) == (
        Status.PENDING, 1, "service_unavailable")
    time.sleep(0.05)  # the backoff (RETRY_BACKOFF 0.01 s) runs out
    assert inline.run_schedules() == [schedule.SWEEPER_NAME]  # the half-past one: in 30 s
    job.refresh_from_db()
    assert (job.status, job.attempts, job.error_code) == (Status.DONE, 2, "")
    assert len(scripted.calls) == 2
    assert untouched(inline_queue)
