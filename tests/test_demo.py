"""The demo site: upload page and a public list of posts that may be shown."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_q.models import Schedule

from demo_project.blog.models import Post
from moderation import pipeline
from moderation.models import Job

from .conftest import SAMPLES

pytestmark = pytest.mark.django_db


def test_upload_creates_a_post_and_a_job(client, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("ad.png", (SAMPLES / "ad_text.png").read_bytes(), "image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("blog:upload"), {"title": "hi", "image": upload})
    assert response.status_code == 302
    post = Post.objects.get()
    job = Job.objects.get()
    assert job.content_object == post and job.field_name == "image"
    # not shown until moderated
    page = client.get(reverse("blog:list")).content.decode()
    assert "1 post waiting" in page and "<h2>hi</h2>" not in page


def test_upload_form_requires_media(client):
    response = client.post(reverse("blog:upload"), {"title": "empty"})
    assert response.status_code == 200 and "Attach an image or a video" in response.content.decode()
    assert not Post.objects.exists()


def test_upload_of_a_stream_url(client):
    response = client.post(reverse("blog:upload"), {"title": "live",
                                                   "stream_url": "https://example.com/a.m3u8"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert (job.media_kind, job.field_name) == ("live", "stream_url")


def test_list_shows_passed_posts_and_hides_blocked_ones(client, image_file):
    shown = Post.objects.create(title="fine", image=image_file())
    blocked = Post.objects.create(title="bad", image=image_file("b.png", color=(0, 0, 0)))
    for post, risk in ((shown, "none"), (blocked, "high")):
        job = Job.objects.get(object_id=str(post.pk))
        from tests.providers import result
        Job.objects.filter(pk=job.pk).update(status="in_progress")
        pipeline.ingest(job, result(risk, "nonLabel" if risk == "none" else "x_lib"))
    blocked.refresh_from_db()
    assert blocked.hidden  # on_block="hide"
    page = client.get(reverse("blog:list")).content.decode()
    assert "<h2>fine</h2>" in page and "<h2>bad</h2>" not in page


def test_sweeper_schedule_is_created_on_migrate():
    schedule = Schedule.objects.get(name="moderation sweeper")
    assert schedule.func == "moderation.tasks.sweep" and schedule.minutes == 1
    assert schedule.repeats == -1
