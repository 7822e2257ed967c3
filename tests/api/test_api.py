"""The REST API (moderation.api) with the real local engine: permissions as in the admin,
filters, paginated frames, decisions, on-demand moderation, statistics, hash libraries."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from moderation import pipeline
from moderation.models import Frame, FrameLabel, HashEntry, Job, ReviewState, Status
from tests.conftest import SAMPLES
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db
API = "/api/moderation"
PDQ = "f" * 64


def user_with(django_user_model, name: str, *perms: str):
    user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def viewer(django_user_model):
    return client_for(user_with(django_user_model, "viewer", "moderation.view_job"))


@pytest.fixture
def reviewer(django_user_model):
    return client_for(user_with(django_user_model, "reviewer", "moderation.view_job",
                                "moderation.review_job"))


@pytest.fixture
def moderated(register):
    """Photos moderated by the real local engine: a QR code (review) and a benign image."""
    register(Photo, on_block="hide")
    made = {}
    for name in ("qrcode.jpg", "benign.jpg"):
        photo = Photo.objects.create(image=ContentFile((SAMPLES / name).read_bytes(), name=name))
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "done"
        made[name] = (photo, Job.objects.get(pk=job.pk))
    return made


def test_reading_jobs_needs_view_job(client, django_user_model, moderated):
    assert APIClient().get(f"{API}/jobs/").status_code in (401, 403)
    staff = client_for(user_with(django_user_model, "staff"))
    assert staff.get(f"{API}/jobs/").status_code == 403
    assert staff.get(f"{API}/stats/labels/").status_code == 403


def test_token_authentication(django_user_model, moderated):
    user = user_with(django_user_model, "script", "moderation.view_job")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(f"{API}/jobs/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    # Session auth comes first in the demo, so DRF answers 403 rather than 401.
    assert client.get(f"{API}/jobs/").status_code in (401, 403)


def test_list_filters(viewer, moderated):
    qr_job = moderated["qrcode.jpg"][1]
    body = viewer.get(f"{API}/jobs/").json()
    assert body["count"] == 2
    assert {row["content_type"] for row in body["results"]} == {"testapp.photo"}
    by_label = viewer.get(f"{API}/jobs/", {"label": "pt_qrCode"}).json()["results"]
    assert [row["id"] for row in by_label] == [qr_job.pk]
    assert viewer.get(f"{API}/jobs/", {"label": "pt_qr"}).json()["count"] == 0  # whole names
    assert viewer.get(f"{API}/jobs/", {"suggestion": "review"}).json()["count"] == 1
    assert viewer.get(f"{API}/jobs/", {"content_type": "testapp.photo",
                                       "status": "done"}).json()["count"] == 2
    assert viewer.get(f"{API}/jobs/", {"created_after": "2999-01-01"}).json()["count"] == 0
    bad = viewer.get(f"{API}/jobs/", {"created_after": "yesterday", "status": "nope"})
    assert bad.status_code == 400


def test_detail_and_paginated_frames(viewer, moderated):
    job = moderated["qrcode.jpg"][1]
    # A long video's worth of frames on the same job: served page by page.
    Frame.objects.bulk_create([Frame(job=job, offset=float(n)) for n in range(1, 121)])
    detail = viewer.get(f"{API}/jobs/{job.pk}/").json()
    assert detail["labels"] == ["pt_qrCode"] and detail["frames_url"].endswith(
        f"/jobs/{job.pk}/frames/")
    page = viewer.get(detail["frames_url"]).json()
    assert page["count"] == 121 and len(page["results"]) == 50 and page["next"]
    first = page["results"][0]
    assert first["labels"][0]["label"] == "pt_qrCode"
    assert first["thumbnail_url"].endswith(f"/moderation/evidence/frame/{first['id']}/")
    assert viewer.get(f"{API}/jobs/{job.pk}/slices/").json()["count"] == 0
    assert viewer.get(f"{API}/jobs/999999/").status_code == 404


def test_decisions_need_review_job_and_are_reversible(viewer, reviewer, moderated):
    photo, job = moderated["qrcode.jpg"]
    assert job.review_state == ReviewState.PENDING
    url = f"{API}/jobs/{job.pk}/decision/"
    assert viewer.post(url, {"decision": "rejected"}, format="json").status_code == 403
    assert reviewer.post(url, {"decision": "maybe"}, format="json").status_code == 400
    answer = reviewer.post(url, {"decision": "rejected", "reason": "spam QR"}, format="json")
    assert answer.status_code == 200 and answer.json()["decision"] == "rejected"
    photo.refresh_from_db()
    assert photo.hidden
    answer = reviewer.post(url, {"decision": "approved"}, format="json")
    assert answer.status_code == 200
    photo.refresh_from_db()
    assert not photo.hidden
    events = list(job.events.filter(action__in=["approved", "rejected"])
                  .values_list("action", "reason"))
    assert events == [("rejected", "spam QR"), ("approved", "")]


def test_a_decision_on_an_unfinished_job_is_a_conflict(reviewer, register):
    register(Photo)
    photo = Photo.objects.create(image=ContentFile((SAMPLES / "benign.jpg").read_bytes(),
                                                   name="b.jpg"))
    job = Job.objects.get(object_id=str(photo.pk))
    answer = reviewer.post(f"{API}/jobs/{job.pk}/decision/", {"decision": "approved"},
                           format="json")
    assert answer.status_code == 409


def test_moderate_on_demand_needs_add_job(viewer):
    upload = ContentFile((SAMPLES / "benign.jpg").read_bytes(), name="b.jpg")
    assert viewer.post(f"{API}/moderate/", {"file": upload}, format="multipart").status_code \
        == 403


@pytest.mark.django_db(transaction=True)
def test_moderate_a_file_and_wait_for_the_worker(django_user_model):
    client = client_for(user_with(django_user_model, "api", "moderation.add_job",
                                  "moderation.view_job"))
    upload = ContentFile((SAMPLES / "qrcode.jpg").read_bytes(), name="qr.jpg")
    queued = client.post(f"{API}/moderate/", {"file": upload}, format="multipart")
    assert queued.status_code == 202 and queued.json()["status"] == "pending"

    def worker():  # what a qcluster worker does with the queued task
        time.sleep(0.3)
        for job in Job.objects.filter(status=Status.PENDING):
            pipeline.process(job.pk)

    upload = ContentFile((SAMPLES / "qrcode.jpg").read_bytes(), name="qr2.jpg")
    thread = threading.Thread(target=worker)
    thread.start()
    answer = client.post(f"{API}/moderate/?wait=20", {"file": upload, "scenes": ["qrcode"]},
                         format="multipart")
    thread.join()
    assert answer.status_code == 201, answer.json()
    assert answer.json()["labels"] == ["pt_qrCode"] and answer.json()["status"] == "done"


def test_moderate_rejects_bad_input(django_user_model):
    client = client_for(user_with(django_user_model, "api", "moderation.add_job"))
    assert client.post(f"{API}/moderate/", {}, format="json").status_code == 400
    both = {"url": "https://example.com/a.mp4",
            "file": ContentFile(b"x", name="x.png")}
    assert client.post(f"{API}/moderate/", both, format="multipart").status_code == 400
    assert client.post(f"{API}/moderate/?wait=99", {"url": "https://example.com/a.mp4"},
                       format="json").status_code == 400
    assert client.post(f"{API}/moderate/", {"url": "https://example.com/a.mp4",
                                            "provider": "ghost"},
                       format="json").status_code == 400
    assert Job.objects.count() == 0  # nothing half-made


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)",
                                 "gopher://example.com/", "http://10.0.0.5/a.mp4",
                                 "rtsp://169.254.169.254/live", "rtmp:///no-host"])
def test_moderate_refuses_urls_it_must_not_fetch(django_user_model, url):
    client = client_for(user_with(django_user_model, "api", "moderation.add_job"))
    answer = client.post(f"{API}/moderate/", {"url": url}, format="json")
    assert answer.status_code == 400 and "url" in answer.json()
    assert Job.objects.count() == 0


def test_moderate_takes_the_stream_schemes_the_docs_promise(django_user_model):
    client = client_for(user_with(django_user_model, "api", "moderation.add_job"))
    for url in ("rtmp://live.example.com/app/key", "rtsp://cam.example.com/1",
                "srt://live.example.com:9000", "https://example.com/live/index.m3u8"):
        answer = client.post(f"{API}/moderate/", {"url": url}, format="json")
        assert answer.status_code == 202, (url, answer.json())
    assert Job.objects.filter(media_kind="live").count() == 4


def test_label_counts_and_timeline(viewer, moderated):
    labels = viewer.get(f"{API}/stats/labels/").json()
    assert {"label": "pt_qrCode", "jobs": 1} in labels
    timeline = viewer.get(f"{API}/stats/timeline/").json()
    assert sum(row["jobs"] for row in timeline) == 2
    assert {row["suggestion"] for row in timeline} == {"review", "pass"}
    assert viewer.get(f"{API}/stats/labels/", {"since": "tomorrow"}).status_code == 400


def test_hash_library_entries(django_user_model, viewer):
    assert viewer.get(f"{API}/library/").status_code == 403  # libraries need their own perm
    curator = client_for(user_with(django_user_model, "curator", "moderation.view_hashentry",
                                   "moderation.add_hashentry",
                                   "moderation.delete_hashentry"))
    made = curator.post(f"{API}/library/", {"list_type": "block", "label": "spam",
                                            "pdq": PDQ.upper()}, format="json")
    assert made.status_code == 201 and made.json()["pdq"] == PDQ
    assert HashEntry.objects.get().created_by.username == "curator"
    again = curator.post(f"{API}/library/", {"list_type": "block", "pdq": PDQ}, format="json")
    assert again.status_code == 400
    assert curator.post(f"{API}/library/", {"list_type": "allow", "pdq": "xyz"},
                        format="json").status_code == 400
    assert curator.get(f"{API}/library/", {"list_type": "block"}).json()["count"] == 1
    assert curator.get(f"{API}/library/", {"list_type": "allow"}).json()["count"] == 0
    entry = HashEntry.objects.get()
    assert curator.patch(f"{API}/library/{entry.pk}/", {"note": "x"},
                         format="json").status_code == 403  # no change permission
    assert curator.delete(f"{API}/library/{entry.pk}/").status_code == 204


def test_frame_labels_come_with_frames_in_constant_queries(viewer, moderated,
                                                           django_assert_max_num_queries):
    job = moderated["qrcode.jpg"][1]
    frames = Frame.objects.bulk_create([Frame(job=job, offset=float(n)) for n in range(1, 50)])
    FrameLabel.objects.bulk_create([FrameLabel(frame=f, label="pt_qrCode", confidence=90)
                                    for f in frames])
    with django_assert_max_num_queries(12):
        assert viewer.get(f"{API}/jobs/{job.pk}/frames/").status_code == 200


def test_dates_with_odd_offsets_and_extremes(viewer, moderated):
    """Found by schemathesis on PostgreSQL: an ISO offset of -18:08 was a server error."""
    odd = viewer.get(f"{API}/jobs/", {"created_after": "0984-06-18T19:15:04.5-18:08"})
    assert odd.status_code == 200 and odd.json()["count"] == 2
    assert viewer.get(f"{API}/jobs/", {"created_before": "0001-01-01T00:00:00+14:00"}
                      ).status_code == 400


def test_feedback_needs_send_feedback_and_is_queued(viewer, django_user_model, moderated):
    from moderation.models import FeedbackRequest

    job = moderated["qrcode.jpg"][1]
    url = f"{API}/jobs/{job.pk}/feedback/"
    assert viewer.post(url, {"decision": "rejected"}, format="json").status_code == 403
    sender = client_for(user_with(django_user_model, "sender", "moderation.view_job",
                                  "moderation.send_feedback"))
    frame = job.frames.get()
    answer = sender.post(url, {"decision": "rejected", "frame_ids": [frame.pk],
                               "note": "spam QR"}, format="json")
    assert answer.status_code == 202, answer.json()
    request = FeedbackRequest.objects.get()
    assert (request.job_id, request.decision, request.frame_ids, request.status) == (
        job.pk, "rejected", [frame.pk], "pending")
    assert answer.json()["id"] == request.pk
    other = moderated["benign.jpg"][1].frames.get()
    assert sender.post(url, {"decision": "rejected", "frame_ids": [other.pk]},
                       format="json").status_code == 400  # a frame of another job


def test_a_decision_respects_a_moderators_claim(reviewer, django_user_model, moderated):
    from moderation import claims

    _photo, job = moderated["qrcode.jpg"]
    alice = user_with(django_user_model, "alice", "moderation.review_job")
    assert claims.claim(job, alice)
    answer = reviewer.post(f"{API}/jobs/{job.pk}/decision/", {"decision": "approved"},
                           format="json")
    assert answer.status_code == 409 and "claimed" in answer.json()["detail"]
    job.refresh_from_db()
    assert job.review_state == ReviewState.PENDING
