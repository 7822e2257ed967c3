"""Admin pages for jobs, and the permission-checked evidence view."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from moderation import pipeline
from moderation.models import Frame, Job
from tests.providers import result
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_jobs(register, scripted, image_file):
    register(Photo, provider="scripted")

    def make(n):
        for i in range(n):
            Photo.objects.create(title=f"p{i}", image=image_file(f"p{i}.png", color=(i, 9, 9)))
            scripted.script.append(result("medium", "pt_qrCode"))
        for job in Job.objects.filter(status="pending"):
            pipeline.process(job.pk)
        return list(Job.objects.all())

    return make


def user_with(*perms, staff=True):
    user = User.objects.create_user(f"u{User.objects.count()}", password="pw", is_staff=staff)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_job_list_and_page_render(client, admin_user, finished_jobs):
    job = finished_jobs(2)[0]
    client.force_login(admin_user)
    page = client.get(reverse("admin:moderation_job_changelist"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "pt_qrCode" in body and reverse("moderation:frame-thumbnail",
                                           args=[job.frames.get().pk]) in body
    detail = client.get(reverse("admin:moderation_job_change", args=[job.pk]))
    assert detail.status_code == 200
    assert "Flagged frames (1)" in detail.content.decode()
    assert "pt_qrCode" in detail.content.decode()
    for flt in ("?status__exact=done", "?risk_level__exact=medium", "?q=p1"):
        assert client.get(reverse("admin:moderation_job_changelist") + flt).status_code == 200


def test_job_list_query_count_does_not_grow(client, admin_user, finished_jobs):
    finished_jobs(2)
    client.force_login(admin_user)
    url = reverse("admin:moderation_job_changelist")
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    finished_jobs(6)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_job_page_lists_only_flagged_rows_of_a_long_video(client, admin_user,
                                                          finished_jobs):
    """A 2-hour video's 7,200 frames stay on the paginated review page; the change page
    shows the flagged ones and stays small."""
    from moderation.models import AudioSlice

    job = finished_jobs(1)[0]
    Frame.objects.bulk_create([Frame(job=job, offset=float(n)) for n in range(1, 3601)])
    AudioSlice.objects.bulk_create([AudioSlice(job=job, start=n, end=n + 1, text=f"line {n}")
                                    for n in range(500)] + [
        AudioSlice(job=job, start=600, end=601, text="flagged words", risk_level="high")])
    client.force_login(admin_user)
    page = client.get(reverse("admin:moderation_job_change", args=[job.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and len(body) < 300_000
    assert body.count('class="mod-seg-item ') == 1  # the one flagged frame of 3,601
    assert "flagged words" in body and "line 499" not in body


def test_evidence_needs_login_and_permission(client, finished_jobs):
    frame = Frame.objects.get(job=finished_jobs(1)[0])
    url = reverse("moderation:frame-thumbnail", args=[frame.pk])
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    client.force_login(user_with())
    assert client.get(url).status_code == 403
    client.force_login(user_with("view_job"))
    ok = client.get(url)
    assert ok.status_code == 200
    assert ok["Cache-Control"] == "private, no-store"
    assert b"".join(ok.streaming_content) == b"\xff\xd8\xff\xe0 fake jpeg bytes"


def test_evidence_is_not_under_media_root(finished_jobs, settings):
    frame = Frame.objects.get(job=finished_jobs(1)[0])
    path = frame.thumbnail.path
    assert not path.startswith(str(settings.MEDIA_ROOT))
    with pytest.raises(ValueError):
        frame.thumbnail.url  # noqa: B018 - no public URL exists


def test_retry_action(client, admin_user, register, scripted, image_file):
    from moderation.providers import MediaError

    register(Photo, provider="scripted")
    Photo.objects.create(image=image_file())
    job = Job.objects.get()
    scripted.script.append(MediaError("bad", code="corrupt_image"))
    pipeline.process(job.pk)
    client.force_login(admin_user)
    response = client.post(reverse("admin:moderation_job_changelist"),
                           {"action": "retry_jobs", "_selected_action": [job.pk]})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "pending" and job.events.filter(action="requeued").exists()


def test_review_events_are_append_only(finished_jobs):
    from django.core.exceptions import PermissionDenied

    event = finished_jobs(1)[0].events.first()
    event.reason = "rewritten"
    with pytest.raises(PermissionDenied):
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()
