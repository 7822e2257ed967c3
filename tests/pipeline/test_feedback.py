"""Moderator feedback (moderation/feedback.py): requests, the local hash library with the
real engine on the committed samples, Alibaba 1.0 feedback through the real emulator
(throttling, outages, retries), and the status of each request."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone
from PIL import Image

from moderation import feedback, pipeline
from moderation.emulator import green as emulator_green
from moderation.emulator.app import Fault
from moderation.models import Decision, FeedbackRequest, Frame, HashEntry, Job, ReviewEvent
from moderation.providers import get_provider
from tests.conftest import SAMPLES, emulator_fixture
from tests.testapp.models import Photo

State = FeedbackRequest.State
GREEN, UID = "aliyun_green", "1234567890"
KEY_ID, SECRET = "LTAI5tGreenFeedback0001", "green-feedback-secret-000000000"


def variant(name: str, scale: float = 0.9, quality: int = 85) -> bytes:
    """The sample resized and re-encoded as JPEG: a near-duplicate, not the same bytes."""
    image = Image.open(SAMPLES / name).convert("RGB")
    image = image.resize((round(image.width * scale), round(image.height * scale)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def upload(register, data: bytes, name: str, provider: str = "local") -> Job:
    register(Photo, provider=provider)
    photo = Photo.objects.create(image=ContentFile(data, name=name))
    return Job.objects.get(object_id=str(photo.pk))


def make_due(item: FeedbackRequest) -> None:
    FeedbackRequest.objects.filter(pk=item.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def moderator(db):
    return User.objects.create_user("mod")


# --- asking ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_request_validates_records_and_queues_on_commit(register, scripted, image_file,
                                                        moderator,
                                                        django_capture_on_commit_callbacks):
    from django_q.brokers import get_broker

    job = upload(register, image_file().read(), "a.png", provider="scripted")
    other = upload(register, image_file().read(), "b.png", provider="scripted")
    frame = Frame.objects.create(job=job, offset=0)
    foreign = Frame.objects.create(job=other, offset=0)
    with pytest.raises(ValueError):
        feedback.request_feedback(job, Decision.AUTO_PASS)
    with pytest.raises(ValueError):
        feedback.request_feedback(job, Decision.REJECTED, frame_ids=[frame.pk, foreign.pk])
    assert not FeedbackRequest.objects.exists()

    broker = get_broker()
    before = broker.queue_size()
    with django_capture_on_commit_callbacks(execute=True):
        item = feedback.request_feedback(job, Decision.REJECTED, frame_ids=[frame.pk],
                                         scenes=["porn"], note="clearly spam", actor=moderator)
    assert broker.queue_size() == before + 1
    item.refresh_from_db()
    assert (item.status, item.provider, item.frame_ids, item.created_by) == (
        State.PENDING, "scripted", [frame.pk], moderator)
    event = ReviewEvent.objects.get(job=job, action=ReviewEvent.Action.FEEDBACK)
    assert (event.actor, event.reason, event.data["feedback"]) == (
        moderator, "clearly spam", item.pk)


@pytest.mark.django_db
def test_sweep_resends_due_and_lost_requests_only(register, scripted, image_file):
    job = upload(register, image_file().read(), "a.png", provider="scripted")
    item = feedback.request_feedback(job, Decision.APPROVED)
    assert feedback.sweep() == 0  # just asked for: its task is on the queue
    FeedbackRequest.objects.filter(pk=item.pk).update(
        created_at=timezone.now() - timedelta(hours=1))
    assert feedback.sweep() == 1  # never picked up: the task was lost
    FeedbackRequest.objects.filter(pk=item.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert feedback.sweep() == 0  # a retry whose time has not come, or a worker's hold
    make_due(item)
    assert feedback.sweep() == 1
    FeedbackRequest.objects.filter(pk=item.pk).update(status=State.SENT)
    assert feedback.sweep() == 0


# --- the local provider: hash library entries, with the real engine --------------------------


@pytest.mark.django_db
def test_local_approval_allows_similar_images_without_the_models(register, moderator):
    job = upload(register, (SAMPLES / "qrcode.jpg").read_bytes(), "qr.jpg")
    assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert "pt_qrCode" in job.labels  # flagged: the moderator says it is fine
    frame = job.frames.get()

    item = feedback.request_feedback(job, Decision.APPROVED, note="our own QR code",
                                     actor=moderator)
    assert feedback.send(item.pk) == "library"
    assert feedback.send(item.pk) == "skipped"  # delivered twice, done once
    entry = HashEntry.objects.get()
    assert (entry.list_type, entry.label, entry.pdq) == ("allow", "", job.raw_result["pdq"]["hash"])
    assert (entry.source_job, entry.source_frame, entry.created_by) == (job, frame, moderator)
    assert entry.note == "our own QR code"
    item.refresh_from_db()
    assert item.status == State.SENT and item.sent_at and item.attempts == 1
    sent = ReviewEvent.objects.get(job=job, action=ReviewEvent.Action.FEEDBACK_SENT)
    assert sent.data["added"] == 1 and sent.data["via"] == "library"

    again = feedback.request_feedback(job, Decision.APPROVED)
    assert feedback.send(again.pk) == "library"
    assert HashEntry.objects.count() == 1  # the same hash is not added twice

    similar = upload(register, variant("qrcode.jpg"), "qr-copy.jpg")
    assert pipeline.process(similar.pk) == "done"
    similar.refresh_from_db()
    assert similar.labels == [] and similar.suggestion == "pass"
    assert similar.raw_result["library_match"]["list_type"] == "allow"
    assert 0 < similar.raw_result["library_match"]["distance"] <= 31
    # the QR detector, NudeNet and OCR never ran
    assert not {"qr", "nudenet", "ocr"} & set(similar.raw_result["timings_ms"])


@pytest.mark.django_db
def test_local_rejection_blocks_under_the_worst_label(register, moderator):
    job = upload(register, (SAMPLES / "qrcode.jpg").read_bytes(), "qr.jpg")
    pipeline.process(job.pk)
    item = feedback.request_feedback(job, Decision.REJECTED, actor=moderator)
    assert feedback.send(item.pk) == "library"
    entry = HashEntry.objects.get()
    assert (entry.list_type, entry.label) == ("block", "pt_qrCode")

    similar = upload(register, variant("qrcode.jpg", scale=0.8), "qr-small.jpg")
    pipeline.process(similar.pk)
    similar.refresh_from_db()
    assert "pt_qrCode_lib" in similar.labels and similar.risk_level == "high"
    assert similar.suggestion == "block"


@pytest.mark.django_db
def test_video_frame_thumbnails_are_hashed_when_there_is_no_original(register, scripted,
                                                                    image_file):
    """A frame of a video is hashed from its thumbnail (the only image we keep)."""
    job = upload(register, image_file().read(), "a.png", provider="scripted")
    Job.objects.filter(pk=job.pk).update(media_kind="video")
    job.refresh_from_db()
    flagged = Frame.objects.create(job=job, offset=4.0, risk_level="high")
    flagged.thumbnail.save("f.jpg", ContentFile((SAMPLES / "benign.jpg").read_bytes()))
    Frame.objects.create(job=job, offset=5.0)  # clean, no thumbnail: not chosen
    conf = {**scripted_settings(), "LIBRARY_PRECHECK": True}
    with override_settings(MODERATION=conf):
        item = feedback.request_feedback(job, Decision.REJECTED)
        assert feedback.send(item.pk) == "library"
    entry = HashEntry.objects.get()
    assert entry.source_frame == flagged and entry.list_type == "block"


def scripted_settings():
    from django.conf import settings

    return {**settings.MODERATION,
            "PROVIDERS": {"scripted": {"BACKEND": "tests.providers.ScriptedProvider"}}}


@pytest.mark.django_db
def test_provider_without_feedback_and_without_precheck_is_unsupported(register, scripted,
                                                                        image_file):
    job = upload(register, image_file().read(), "a.png", provider="scripted")
    with override_settings(MODERATION={**scripted_settings(), "LIBRARY_PRECHECK": False}):
        item = feedback.request_feedback(job, Decision.APPROVED)
        assert feedback.send(item.pk) == "unsupported"
    item.refresh_from_db()
    assert item.status == State.NOT_SUPPORTED and item.error_code == "not_supported"
    assert not HashEntry.objects.exists()
    assert ReviewEvent.objects.filter(job=job, action="feedback_failed").exists()
    assert feedback.sweep() == 0  # final: never sent again


# --- Alibaba 1.0, through the emulator --------------------------------------------------------


emulator = emulator_fixture(uses=("no_proxy",), before=emulator_green.FEEDBACK.clear,
                            clear_providers=True, access_key_id=KEY_ID,
                            access_key_secret=SECRET, uid=UID)


def green_settings(live_server, emulator, **extra):
    return {
        "PUBLIC_BASE_URL": live_server.url, "ALLOW_PRIVATE_ADDRESSES": True,
        "RETRY_BACKOFF": 1,
        "PROVIDERS": {GREEN: {
            "BACKEND": "moderation.providers.aliyun.green.GreenProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET, "UID": UID,
                        "ENDPOINT": emulator.url},
        }},
        **extra,
    }


def received(path="/green/image/feedback"):
    return [item["body"] for item in emulator_green.FEEDBACK if item["path"] == path]


@pytest.mark.django_db(transaction=True)
def test_green_image_feedback_throttled_then_sent(live_server, emulator, register, moderator):
    with override_settings(MODERATION=green_settings(live_server, emulator)):
        get_provider.cache_clear()
        job = upload(register, (SAMPLES / "qrcode.jpg").read_bytes(), "qr.jpg", provider=GREEN)
        assert pipeline.process(job.pk) == "done"
        item = feedback.request_feedback(job, Decision.APPROVED, note="our QR code",
                                         actor=moderator)
        emulator.faults.add(Fault("throttle", count=1, match="/green/image/feedback"))
        assert feedback.send(item.pk) == "retry"
        item.refresh_from_db()
        assert item.status == State.PENDING and item.attempts == 0  # the attempt given back
        assert item.error_code and item.next_attempt_at > timezone.now()
        assert received() == []
        assert feedback.send(item.pk) == "skipped"  # not due yet
        make_due(item)
        assert feedback.sweep() == 1
        assert feedback.send(item.pk) == "sent"
    (body,) = received()
    assert body["suggestion"] == "pass" and body["note"] == "our QR code"
    assert body["scenes"] and body["label"] == "normal"
    # the original upload, by a signed expiring URL of the site: never an evidence file
    assert body["url"].startswith(f"{live_server.url}/moderation/media/")
    item.refresh_from_db()
    assert (item.status, item.attempts, item.error_code) == (State.SENT, 1, "")
    assert not HashEntry.objects.exists()  # 1.0 keeps its own feedback library
    actions = list(ReviewEvent.objects.filter(job=job, action__startswith="feedback")
                   .values_list("action", flat=True))
    assert actions == ["feedback", "feedback_sent"]


@pytest.mark.django_db(transaction=True)
def test_green_feedback_outage_fails_visibly_then_retried_by_hand(live_server, emulator,
                                                                  register, moderator):
    conf = green_settings(live_server, emulator, MAX_ATTEMPTS=2)
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        job = upload(register, (SAMPLES / "qrcode.jpg").read_bytes(), "qr.jpg", provider=GREEN)
        assert pipeline.process(job.pk) == "done"
        item = feedback.request_feedback(job, Decision.REJECTED, actor=moderator)
        emulator.faults.add(Fault("error", count=2, match="/green/image/feedback", status=503))
        assert feedback.send(item.pk) == "retry"
        item.refresh_from_db()
        assert item.attempts == 1 and item.status == State.PENDING
        make_due(item)
        assert feedback.send(item.pk) == "failed"
        item.refresh_from_db()
        assert item.status == State.FAILED and item.error_message
        assert ReviewEvent.objects.filter(job=job, action="feedback_failed").exists()
        assert feedback.sweep() == 0  # failed stays failed until someone retries it
        feedback.retry(item, actor=moderator)
        assert item.status == State.PENDING and item.attempts == 0
        assert feedback.send(item.pk) == "sent"
    (body,) = received()
    assert body["suggestion"] == "block" and body["label"] == "qrcode"


@pytest.mark.slow  # 3.2 s
@pytest.mark.django_db
def test_video_feedback_uses_the_engines_full_resolution_frame_hashes(register, moderator):
    """The local engine stores each frame's full-resolution PDQ hash on its row; feedback
    adds that, not the hash of the 320 px thumbnail."""
    from moderation.libraries import image_pdq

    media = SAMPLES.parent.parent / "tests" / "media" / "speech_ad.mp4"
    register(Photo, kinds={"image": "video"})
    photo = Photo.objects.create(image=ContentFile(media.read_bytes(), name="v.mp4"))
    job = Job.objects.get(object_id=str(photo.pk))
    assert pipeline.process(job.pk) == "done"
    frames = list(Frame.objects.filter(job=job))
    assert frames and all(len(f.pdq) == 64 and f.pdq_quality for f in frames)  # reused too
    assert "pdq" not in Job.objects.get(pk=job.pk).result["frames"][0]  # rows, not JSON
    flagged = next(f for f in frames if f.thumbnail)
    item = feedback.request_feedback(job, Decision.REJECTED, frame_ids=[flagged.pk],
                                     actor=moderator)
    assert feedback.send(item.pk) == "library"
    entry = HashEntry.objects.get()
    assert entry.pdq == flagged.pdq
    with flagged.thumbnail.open("rb") as fh:
        assert image_pdq(fh.read())[0] != flagged.pdq  # the thumbnail's hash differs
