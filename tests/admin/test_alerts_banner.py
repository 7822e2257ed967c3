"""The review-queue alert as a banner (moderation/alerts.py ``active_alerts``): the console's
queue page and the overview show each episode in progress as an admin warning message,
nothing when ALERTS watches nothing or no episode is on, at the cost of one query (none
when nothing is watched); the text is translated."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from moderation import alerts
from moderation.models import AlertState
from tests.pipeline.test_review import make_job, moderator

pytestmark = pytest.mark.django_db

QUEUE = "admin:moderation_job_queue"
OVERVIEW = "admin:moderation_job_overview"
PAGES = (QUEUE, OVERVIEW)


def configure(settings, **alert_settings):
    settings.MODERATION = {**settings.MODERATION, "ALERTS": alert_settings}


@pytest.fixture
def staff(client):
    client.force_login(moderator("lead", "view_job", "review_job"))
    return client


def page(client, name: str) -> str:
    response = client.get(reverse(name))
    assert response.status_code == 200
    return response.content.decode()


def queries(client, name: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        page(client, name)
    return len(captured.captured_queries)


@pytest.mark.parametrize("name", PAGES)
def test_banner_shows_the_episode_in_progress(staff, settings, mailoutbox, name):
    configure(settings, QUEUE_SIZE=3, OLDEST_MINUTES=60, EMAILS=["ops@example.com"])
    for _ in range(2):
        make_job()
    alerts.check()
    assert 'id="mod-queue-alerts"' not in page(staff, name)  # 2 < 3: no episode

    make_job(age_minutes=95)
    started = alerts.check()
    assert {a.key for a in started} == {"queue_size", "oldest_minutes"}
    since = timezone.localtime(AlertState.objects.get(key="queue_size").since)
    body = page(staff, name)
    assert '<ul class="messagelist mod-queue-alerts" id="mod-queue-alerts"' in body
    assert (f'<li class="warning" data-alert="queue_size">Queue alert since '
            f'{since:%H:%M}: 3 items waiting (threshold 3).</li>') in body
    assert ("the oldest item has waited 95 minutes (threshold 60).</li>") in body
    assert body.index('data-alert="queue_size"') < body.index('data-alert="oldest_minutes"')

    AlertState.objects.filter(key="oldest_minutes").update(active=False)
    body = page(staff, name)
    assert 'data-alert="queue_size"' in body and 'data-alert="oldest_minutes"' not in body


@pytest.mark.parametrize("name", PAGES)
def test_no_banner_when_alerts_are_not_configured(staff, name):
    """An active row left from an earlier configuration shows nothing once ALERTS is unset."""
    make_job()
    AlertState.objects.create(key="queue_size", active=True, value=50, since=timezone.now())
    assert "mod-queue-alerts" not in page(staff, name)


def test_an_episode_of_an_earlier_day_shows_its_date(settings):
    configure(settings, QUEUE_SIZE=1, EMAILS=["ops@example.com"])
    since = timezone.now() - timedelta(days=2)
    AlertState.objects.create(key="queue_size", active=True, value=1, since=since)
    [alert] = alerts.active_alerts()
    assert alert.message.startswith("Queue alert since ")
    assert f"{timezone.localtime(since):%H:%M}: 1 item waiting (threshold 1)." in alert.message
    assert alert.message != alerts.ActiveAlert("queue_size", 1, 1, timezone.now()).message


def test_banner_in_chinese(settings):
    configure(settings, QUEUE_SIZE=50, OLDEST_MINUTES=60, EMAILS=["ops@example.com"])
    now = timezone.now()
    AlertState.objects.create(key="queue_size", active=True, value=52, since=now)
    AlertState.objects.create(key="oldest_minutes", active=True, value=95.4, since=now)
    with translation.override("zh-hans"):
        messages = [alert.message for alert in alerts.active_alerts()]
    assert all("Queue alert" not in text for text in messages), messages
    assert "52" in messages[0] and "50" in messages[0]
    assert "95" in messages[1] and "60" in messages[1]


@pytest.mark.parametrize("name", PAGES)
def test_banner_costs_one_query_and_none_when_nothing_is_watched(staff, settings, name):
    for _ in range(3):
        make_job()
    page(staff, name)  # warm caches (content types, session)
    unwatched = queries(staff, name)
    configure(settings, QUEUE_SIZE=3, EMAILS=["ops@example.com"])
    watched_quiet = queries(staff, name)
    alerts.check()
    assert AlertState.objects.get(key="queue_size").active
    watched_alert = queries(staff, name)
    assert "mod-queue-alerts" in page(staff, name)
    print(f"queries on {name}: {unwatched} unwatched, {watched_quiet} watched, "
          f"{watched_alert} during an alert")
    assert watched_quiet == watched_alert == unwatched + 1
