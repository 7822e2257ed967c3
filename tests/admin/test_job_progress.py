"""Live progress in the admin and the API (issue 14, item 2): a running job shows
"analysing: 37 s of 90 s (41 %)" with a bar on its page and in the list, kept current by
progress.js through a small JSON view; its risk reads "pending", not a green "none"."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from moderation.models import Job, Status
from tests.pipeline.test_review import make_job, moderator

pytestmark = pytest.mark.django_db

PROGRESS = "admin:moderation_job_progress"
SEEN = {"done": 37.2, "total": 90.0, "unit": "s", "at": "2026-12-04T18:00:00+00:00"}


def running_job(progress=None, status=Status.IN_PROGRESS) -> Job:
    return Job.objects.create(media_kind="video", provider="local", status=status,
                              file_name="videos/long.mp4",
                              progress=SEEN if progress is None else progress)


@pytest.fixture
def viewer():
    return moderator("viewer", "view_job")


def bar_of(html: str, job: Job) -> str:
    found = re.search(rf'<span class="mod-progress" data-mod-progress data-job="{job.pk}"'
                      r'.*?</progress></span>', html, re.S)
    assert found, html
    return found.group(0)


def test_the_job_page_shows_the_progress_and_a_bar(client, viewer):
    job = running_job()
    client.force_login(viewer)
    page = client.get(reverse("admin:moderation_job_change", args=[job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    bar = bar_of(html, job)
    assert "analysing: 37 s of 90 s (41\u00a0%)" in bar
    assert '<progress class="mod-progress-bar" max="100" value="41">' in bar
    assert "data-reload" in bar  # the page reloads once the job is done
    assert f'data-url="{reverse(PROGRESS)}"' in bar
    assert "moderation/progress.js" in html and "moderation/progress.css" in html
    assert "Frames: analysing…" in html
    # risk: "pending", not "none" in green
    assert '<span class="mod-risk-pending">pending</span>' in html
    assert '<b style="color:#2e7d32">none</b>' not in html


def test_the_list_shows_progress_only_for_running_jobs(client, viewer):
    job = running_job()
    waiting = running_job(progress={}, status=Status.PENDING)
    started = running_job(progress={})  # in progress, nothing reported yet
    frames = running_job(progress={"done": 3, "total": 12, "unit": "frames"})
    done = make_job("none", pending=False)
    client.force_login(viewer)
    html = client.get(reverse("admin:moderation_job_changelist")).content.decode()
    assert "analysing: 37 s of 90 s (41\u00a0%)" in bar_of(html, job)
    assert "data-reload" not in bar_of(html, job)
    assert "waiting for a worker" in bar_of(html, waiting)
    started_bar = bar_of(html, started)
    assert "analysing…" in started_bar and '<progress class="mod-progress-bar"></progress>' \
        in started_bar  # indeterminate
    assert "analysing: 3 of 12 frames (25\u00a0%)" in bar_of(html, frames)
    assert f'data-job="{done.pk}"' not in html
    assert html.count('<span class="mod-risk-pending">pending</span>') == 4
    assert html.count('<b style="color:#2e7d32">none</b>') == 1  # the finished clean job


def test_the_json_view_answers_for_the_polled_jobs_in_one_query(client, viewer):
    jobs = [running_job() for _ in range(5)]
    done = make_job("high", pending=False)
    client.force_login(viewer)
    query = "&".join(f"id={job.pk}" for job in [*jobs, done]) + "&id=x&id=999999"
    client.get(reverse(PROGRESS) + "?" + query)  # session and permission caches warm
    with CaptureQueriesContext(connection) as queries:
        answer = client.get(reverse(PROGRESS) + "?" + query).json()
    job_queries = [q for q in queries.captured_queries if '"moderation_job"' in q["sql"]]
    assert len(job_queries) == 1
    by_id = {row["id"]: row for row in answer["jobs"]}
    assert set(by_id) == {job.pk for job in jobs} | {done.pk}
    assert by_id[jobs[0].pk] == {
        "id": jobs[0].pk, "status": "in_progress", "status_display": "in progress",
        "finished": False, "text": "analysing: 37 s of 90 s (41\u00a0%)", "percent": 41}
    assert by_id[done.pk]["finished"] is True and by_id[done.pk]["percent"] is None


def test_the_json_view_needs_view_job(client):
    job = running_job()
    url = reverse(PROGRESS) + f"?id={job.pk}"
    client.force_login(moderator("nobody"))
    assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302  # to the admin login


def test_the_api_exposes_progress_while_the_job_runs(admin_user):
    job = running_job()
    done = make_job("none", pending=False)
    Job.objects.filter(pk=done.pk).update(progress=SEEN)  # stale: not shown once finished
    api = APIClient()
    api.force_authenticate(admin_user)
    detail = api.get(reverse("moderation-api:job-detail", args=[job.pk])).json()
    assert detail["status"] == "in_progress"
    assert detail["progress"] == {"done": 37.2, "total": 90.0, "unit": "s", "percent": 41}
    listed = {row["id"]: row for row in api.get(reverse("moderation-api:job-list")).json()
              ["results"]}
    assert listed[job.pk]["progress"]["percent"] == 41
    assert listed[done.pk]["progress"] is None


def test_the_review_page_of_a_running_job_says_pending_and_analysing(client):
    job = running_job()
    client.force_login(moderator("mod", "view_job", "review_job"))
    html = client.get(reverse("admin:moderation_job_review", args=[job.pk])).content.decode()
    assert '<span class="mod-risk mod-risk-pending">pending</span> in progress' in html
    assert '<p class="mod-analysing">analysing…</p>' in html
    assert "mod-risk-none" not in html and "No frames." not in html
    done = make_job("none", pending=False)
    html = client.get(reverse("admin:moderation_job_review", args=[done.pk])).content.decode()
    assert "mod-risk-pending" not in html and "analysing…" not in html
