"""Hostile request values on the admin's newer surfaces (overview period, live progress,
console, reason codes, undo, the wellness preference, X-Sendfile, the uploader's e-mail):
each is bounded, refused or ignored, never a 500 or an effect beyond the permission."""

from __future__ import annotations

import os
from datetime import date

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from moderation import overview, pipeline, review
from moderation.admin.progress import MAX_POLLED
from moderation.models import Job, ModeratorPreference
from moderation.storage import evidence_storage
from tests.admin.test_job_progress import running_job
from tests.pipeline.test_review import make_job, moderator, pending_photo_factory
from tests.security.test_file_delivery import _settings

pytestmark = pytest.mark.django_db

#: str.isdigit() says yes to most of these (superscript, Arabic-Indic and full-width digits);
#: int() or the database says no, or takes them for another number
NOT_IDS = ["\u00b2", "\u0661\u0662", "\uff19", "9" * 30, "9" * 5000, "-1", "1.0", " 1"]


@pytest.fixture
def viewer():
    return moderator("viewer", "view_job")


@pytest.fixture
def alice():
    return moderator("alice", "view_job", "review_job", "send_feedback")


# --- the overview's period ------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    {"from": "0001-01-01", "to": "0001-01-02"}, {"to": "0001-01-05"},
    {"from": "0001-01-01", "to": "0001-01-01"}, {"from": "0001-01-01", "to": "9999-12-31"},
    {"days": "9" * 30}, {"days": "36500"}, {"days": "-5"},
])
def test_overview_period_is_bounded_whatever_the_query(client, viewer, query):
    client.force_login(viewer)
    response = client.get(reverse("admin:moderation_job_overview"), query)
    assert response.status_code == 200
    p = response.context["figures"]["period"]
    assert overview.EARLIEST <= p.first <= p.last <= timezone.localdate()
    assert len(p.days) <= overview.MAX_DAYS


def test_overview_period_clamps_days_before_the_earliest():
    p = overview.period(first=date(1, 1, 1), last=date(1, 1, 5))
    assert (p.first, p.last) == (overview.EARLIEST, overview.EARLIEST)


# --- request values that name rows ----------------------------------------------------------


def test_progress_ignores_ids_that_are_not_plain_numbers(client, viewer):
    job = running_job()
    client.force_login(viewer)
    url = reverse("admin:moderation_job_progress")
    answer = client.get(url, {"id": [*NOT_IDS, str(job.pk)]})
    assert answer.status_code == 200
    assert [row["id"] for row in answer.json()["jobs"]] == [job.pk]


def test_progress_answers_for_at_most_max_polled_ids(client, viewer):
    job = running_job()
    client.force_login(viewer)
    url = reverse("admin:moderation_job_progress")
    late = client.get(url, {"id": ["0"] * MAX_POLLED + [str(job.pk)]}).json()
    assert late == {"jobs": []}  # the id past the bound is not read


@pytest.mark.parametrize("value", NOT_IDS)
def test_queue_content_type_filter_that_is_not_an_id_is_dropped(client, alice, value):
    make_job()
    client.force_login(alice)
    assert client.get(reverse("admin:moderation_job_queue"),
                      {"content_type": value}).status_code == 200
    # the filters kept in the session for "next" do not break the console either
    assert client.get(reverse("admin:moderation_job_queue_next")).status_code == 302


@pytest.mark.parametrize("value", ["abc", "\u00b2"])
def test_job_page_of_an_id_that_is_not_a_number_is_the_admins_own_answer(client, alice, value):
    client.force_login(alice)
    response = client.get(f"/admin/moderation/job/{value}/change/")
    assert response.status_code == 302  # "does not exist", back to the admin index


def test_feedback_frame_ids_that_are_not_ids_are_ignored(client, alice):
    job = make_job()
    client.force_login(alice)
    response = client.post(reverse("admin:moderation_job_feedback", args=[job.pk]),
                           {"decision": "approved", "frame_ids": NOT_IDS})
    assert response.status_code == 302


# --- reason codes ---------------------------------------------------------------------------


def test_an_unknown_reason_code_is_refused_and_echoed_bounded(client, alice):
    job = make_job()
    client.force_login(alice)
    response = client.post(reverse("admin:moderation_job_decide", args=[job.pk]),
                           {"decision": "reject", "reason_code": "x" * 100_000,
                            "reason": "n" * 100_000}, follow=True)
    [message] = [str(m) for m in response.context["messages"]]
    assert message.startswith("Unknown reason code " + "x" * 50 + "…")
    assert len(message) < 200
    job.refresh_from_db()
    assert job.review_state == "pending" and job.decision == ""
    with pytest.raises(review.UnknownReason) as refused:
        review.decide(job, "reject", alice, reason_code="y" * 10_000)
    assert len(str(refused.value)) < 1000


# --- POST-only, CSRF and one's own preference -----------------------------------------------


@pytest.mark.parametrize("name", ["undo", "preferences"])
def test_undo_and_preference_are_post_only_with_csrf(alice, name):
    job = make_job()
    url = reverse(f"admin:moderation_job_{name}", args=[job.pk] if name == "undo" else [])
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get(url, {"reveal_flagged": "1"}).status_code == 405
    assert client.post(url, {"reveal_flagged": "1"}).status_code == 403  # no CSRF token
    assert not ModeratorPreference.objects.filter(reveal_flagged=True).exists()


def test_the_preference_is_always_ones_own(client, alice):
    bob = moderator("bob", "view_job")
    client.force_login(alice)
    client.post(reverse("admin:moderation_job_preferences"),
                {"reveal_flagged": "1", "user": bob.pk, "user_id": bob.pk})
    assert list(ModeratorPreference.objects.values_list("user_id", "reveal_flagged")) == [
        (alice.pk, True)]


# --- X-Sendfile never names another file ----------------------------------------------------


@pytest.mark.parametrize("upload", ["a%2F..%2F..%2Fsecret.png", "clé中.png"])
def test_x_sendfile_hands_over_only_names_the_server_reads_as_they_are(client, alice, upload):
    """mod_xsendfile unescapes %XX: an uploaded "a%2F..%2F..%2Fsecret.png" would make Apache
    send ``<dir>/a/../../secret.png``; a non-ASCII path is MIME-encoded by Django. Both
    go through Django instead, which reads the file the job holds."""
    job = pipeline.create_adhoc_job(name=upload, content=b"\x89PNG the upload")
    path = evidence_storage().path(job.file_name)
    assert os.path.basename(path) == upload
    client.force_login(alice)
    with override_settings(MODERATION=_settings(FILE_DELIVERY="x-sendfile")):
        response = client.get(reverse("moderation:job-media", args=[job.pk]))
    assert response.status_code == 200 and "X-Sendfile" not in response
    assert b"".join(response.streaming_content) == b"\x89PNG the upload"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- the uploader's e-mail after commit -----------------------------------------------------


def address_with_a_newline(instance, job) -> str:
    return f"{instance.title}@example.com"


def broken_address_function(instance, job) -> str:
    raise RuntimeError("the site's UPLOADER_EMAIL failed")


@pytest.mark.parametrize("function", ["address_with_a_newline", "broken_address_function"])
def test_an_uploader_e_mail_failure_is_logged_and_the_decision_stands(
        settings, register, scripted, image_file, mailoutbox, caplog, function,
        django_capture_on_commit_callbacks):
    settings.MODERATION = {**settings.MODERATION, "NOTIFY_UPLOADER": True,
                           "UPLOADER_EMAIL": f"{__name__}.{function}"}
    photo, job = pending_photo_factory(register, scripted, image_file)("t")
    photo.title = "x\r\nBcc: everyone@example.com"
    photo.save()
    with django_capture_on_commit_callbacks(execute=True):
        review.decide(job, "reject", moderator("mod", "review_job"))
    assert Job.objects.get(pk=job.pk).decision == "rejected"
    assert mailoutbox == []
    assert "moderation e-mail" in caplog.text


# --- escaping on the overview and the banner; nginx locations -------------------------------


def test_overview_escapes_label_and_moderator_names(client, viewer):
    hostile = '<img src=x onerror="alert(1)">'
    make_job(labels=(hostile,), pending=False)
    decided = make_job()
    review.decide(decided, "approve", moderator(hostile, "review_job"))
    client.force_login(viewer)
    body = client.get(reverse("admin:moderation_job_overview")).content.decode()
    assert hostile not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body


def test_accel_location_stays_inside_a_mapped_directory_and_escapes_the_name():
    from moderation.serving import _accel_location

    with override_settings(MODERATION=_settings(FILE_DELIVERY_LOCATIONS={"/srv/media": "/_p/"})):
        assert _accel_location("/srv/media-private/x.png") is None  # a sibling, not inside
        assert _accel_location("/srv/media/a%2F..%2Fb?c#d\r\n.png") == \
            "/_p/a%252F..%252Fb%3Fc%23d%0D%0A.png"
