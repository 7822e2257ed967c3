"""Review-queue alerts (moderation/alerts.py): one alert per episode by e-mail and webhook,
the webhook through the network guard to a real loopback server, failures logged, the
sweeper running the check, and system check E016 on bad settings."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.checks import run_checks
from django.utils import timezone

from moderation import alerts, tasks
from moderation.models import AlertState, Job
from tests.pipeline.test_review import make_job

pytestmark = pytest.mark.django_db


@contextmanager
def webhook(status: int = 204) -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "json": json.loads(body),
                             "type": self.headers.get("Content-Type")})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/secret-token", received
    finally:
        server.shutdown()
        server.server_close()


def configure(settings, **alert_settings):
    settings.MODERATION = {**settings.MODERATION, "ALLOWED_NETWORKS": ["127.0.0.1/32"],
                           "ALERTS": alert_settings}


def resolve_all():
    Job.objects.filter(review_state="pending").update(review_state="resolved",
                                                      decision="approved")


def test_queue_size_alert_fires_once_per_episode(settings, mailoutbox):
    with webhook() as (url, received):
        configure(settings, QUEUE_SIZE=3, EMAILS=["ops@example.com"], WEBHOOK_URL=url)
        make_job(), make_job()
        assert alerts.check() == [] and not mailoutbox and not received  # 2 < 3
        make_job()
        [alert] = alerts.check()
        assert (alert.key, alert.value, alert.threshold) == ("queue_size", 3, 3)
        make_job()
        assert alerts.check() == [] and alerts.check() == []  # same episode: once
        assert len(mailoutbox) == 1 and len(received) == 1
        mail = mailoutbox[0]
        assert mail.to == ["ops@example.com"]
        assert mail.subject == "Review queue: 3 items waiting"
        assert "holds 3 items (alert threshold: 3)" in mail.body
        hook = received[0]
        assert hook["path"] == "/hooks/secret-token" and hook["type"] == "application/json"
        assert hook["json"]["event"] == "moderation.queue_alert"
        assert hook["json"]["alert"] == "queue_size" and hook["json"]["value"] == 3
        assert hook["json"]["queue"]["size"] == 3

        resolve_all()  # the queue empties: the episode ends, nothing is sent
        assert alerts.check() == []
        state = AlertState.objects.get(key="queue_size")
        assert not state.active and state.cleared_at is not None
        assert len(mailoutbox) == 1 and len(received) == 1

        for _ in range(3):
            make_job()
        assert [a.key for a in alerts.check()] == ["queue_size"]  # a new episode
        assert len(mailoutbox) == 2 and len(received) == 2


def test_oldest_item_alert_and_the_sweeper_runs_the_check(settings, mailoutbox):
    configure(settings, OLDEST_MINUTES=60, EMAILS=["ops@example.com"])
    make_job(age_minutes=30)
    tasks.sweep()
    assert not mailoutbox
    make_job(age_minutes=90)
    tasks.sweep()
    tasks.sweep()
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject == "Review queue: the oldest item has waited 90 minutes"
    assert AlertState.objects.get(key="oldest_minutes").active
    assert not AlertState.objects.filter(key="queue_size").exists()  # not watched


def test_two_sweepers_at_once_send_one_alert(settings, mailoutbox):
    """The episode switch is a conditional UPDATE: the second check finds it on."""
    configure(settings, QUEUE_SIZE=1, EMAILS=["ops@example.com"])
    make_job()
    now = timezone.now()
    assert alerts._start_episode("queue_size", 1, now) is True
    assert alerts._start_episode("queue_size", 1, now) is False
    assert alerts.check() == [] and not mailoutbox


def test_nothing_watched_costs_no_query(settings, django_assert_num_queries):
    make_job()
    with django_assert_num_queries(0):
        assert alerts.check() == []


def test_webhook_to_a_private_address_is_refused_and_logged(settings, mailoutbox, caplog):
    with webhook() as (url, received):
        settings.MODERATION = {**settings.MODERATION, "ALLOWED_NETWORKS": [],
                               "ALERTS": {"QUEUE_SIZE": 1, "WEBHOOK_URL": url,
                                          "EMAILS": ["ops@example.com"]}}
        make_job()
        [alert] = alerts.check()  # no exception
    assert received == []
    assert "webhook to http://127.0.0.1 failed" in caplog.text and "private" in caplog.text
    assert "secret-token" not in caplog.text  # the URL's path is not logged
    assert len(mailoutbox) == 1  # the e-mail still went
    assert AlertState.objects.get(key="queue_size").active  # once per episode all the same


def test_webhook_errors_are_logged_not_raised(settings, caplog):
    with webhook(status=500) as (url, received):
        configure(settings, QUEUE_SIZE=1, WEBHOOK_URL=url, WEBHOOK_TIMEOUT=2)
        make_job()
        assert len(alerts.check()) == 1
    assert len(received) == 1 and "answered 500" in caplog.text
    with webhook() as (url, _received):
        dead = url  # the server is gone after the block: connection refused
    assert alerts.post_webhook(dead, {"x": 1}, timeout=1) is False
    assert "failed" in caplog.text


def test_a_failing_mail_backend_is_logged(settings, caplog):
    configure(settings, QUEUE_SIZE=1, EMAILS=["ops@example.com"])
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    make_job()
    assert len(alerts.check()) == 1
    assert "e-mail 'Review queue: 1 items waiting' to 1 recipient(s) failed" in caplog.text


@pytest.mark.parametrize(("moderation", "expected"), [
    ({"ALERTS": {"QUEUE_SIZE": 0, "EMAILS": ["a@b.c"]}}, "QUEUE_SIZE'] = 0 is not a positive"),
    ({"ALERTS": {"OLDEST_MINUTES": True, "EMAILS": ["a@b.c"]}}, "OLDEST_MINUTES'] = True"),
    ({"ALERTS": {"EMAILS": "ops@example.com"}}, "is not a list of e-mail addresses"),
    ({"ALERTS": {"WEBHOOK_URL": "ftp://hooks.example.com/x"}}, "is not an http(s) URL"),
    ({"ALERTS": {"QUEUE_SIZE": 5}}, "names no EMAILS nor WEBHOOK_URL"),
    ({"ALERTS": {"QUEUE": 5}}, "unknown keys 'QUEUE'"),
    ({"ALERTS": ["QUEUE_SIZE"]}, "is not a dict"),
    ({"ALERTS": {"WEBHOOK_TIMEOUT": -1}}, "WEBHOOK_TIMEOUT'] = -1"),
    ({"NOTIFY_UPLOADER": True}, "UPLOADER_EMAIL names no function"),
    ({"NOTIFY_UPLOADER": True, "UPLOADER_EMAIL": "tests.nowhere.email"}, "cannot be imported"),
])
def test_bad_settings_fail_check_e016(settings, moderation, expected):
    settings.MODERATION = {**settings.MODERATION, **moderation}
    errors = [e for e in run_checks() if e.id == "moderation.E016"]
    assert len(errors) == 1 and expected in errors[0].msg


def test_good_settings_pass_check_e016(settings):
    settings.MODERATION = {**settings.MODERATION, "NOTIFY_UPLOADER": True,
                           "UPLOADER_EMAIL": "tests.pipeline.test_notifications.uploader_email",
                           "ALERTS": {"QUEUE_SIZE": 50, "OLDEST_MINUTES": 30.5,
                                      "EMAILS": ["ops@example.com"],
                                      "WEBHOOK_URL": "https://hooks.example.com/x"}}
    assert [e for e in run_checks() if e.id == "moderation.E016"] == []
