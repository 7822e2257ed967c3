"""Our Alibaba 2.0 client against the local emulator, through the pipeline: the emulator
fetches the file from the site's signed media URL (a live server), moderates it with the
local engine and answers in the 2.0 vocabulary, which becomes rows."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from moderation import pipeline
from moderation.models import Frame, Job, Status
from moderation.providers import get_provider
from tests.conftest import SAMPLES, emulator_fixture
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db(transaction=True)

KEY_ID, SECRET = "LTAI5tE2eKeyId00000001", "e2e-secret-000000000000000000"


emulator = emulator_fixture(access_key_id=KEY_ID, access_key_secret=SECRET, uid="1234567890",
                            port=0)


def guardrails_settings(live_server, emulator, secret=SECRET):
    return {
        "PUBLIC_BASE_URL": live_server.url,
        "PROVIDERS": {"aliyun_guardrails": {
            "BACKEND": "moderation.providers.aliyun.guardrails.GuardrailsProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": secret,
                        "ENDPOINT": emulator.url},
        }},
    }


def test_image_through_client_emulator_and_signed_url(live_server, emulator, register):
    with override_settings(MODERATION=guardrails_settings(live_server, emulator)):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_guardrails")
        photo = Photo.objects.create(image=ContentFile((SAMPLES / "qrcode.jpg").read_bytes(),
                                                       name="qr.jpg"))
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert job.status == Status.DONE and job.provider == "aliyun_guardrails"
    assert "pt_qrCode" in job.labels and job.suggestion == "review"
    assert job.raw_result["Code"] == 200 and job.raw_result["Data"]["Result"]
    frame = Frame.objects.get(job=job)
    assert frame.labels.get().label == "pt_qrCode"


def test_wrong_secret_is_a_visible_auth_failure(live_server, emulator, register):
    with override_settings(MODERATION=guardrails_settings(live_server, emulator, "wrong")):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_guardrails")
        photo = Photo.objects.create(image=ContentFile((SAMPLES / "benign.jpg").read_bytes(),
                                                       name="b.jpg"))
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code and "SignatureDoesNotMatch" in job.error_message


def test_auth_failure_is_surfaced_by_a_check_and_the_admin(live_server, emulator, register,
                                                           admin_client):
    from django.core import checks

    from moderation.health import auth_failures

    with override_settings(MODERATION=guardrails_settings(live_server, emulator, "wrong")):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_guardrails")
        photo = Photo.objects.create(image=ContentFile((SAMPLES / "benign.jpg").read_bytes(),
                                                       name="b.jpg"))
        job = Job.objects.get(object_id=str(photo.pk))
        assert auth_failures() == []
        assert pipeline.process(job.pk) == "failed"
        [failure] = auth_failures()
        assert (failure.provider, failure.jobs, failure.code) == (
            "aliyun_guardrails", 1, "signature_mismatch")
        warnings = [m for m in checks.run_checks(databases=["default"])
                    if m.id == "moderation.W003"]
        assert len(warnings) == 1 and "aliyun_guardrails" in warnings[0].msg
        assert not [m for m in checks.run_checks() if m.id == "moderation.W003"]  # no db named
        page = admin_client.get("/admin/moderation/job/")
        assert b"refused our credentials" in page.content

    # Fixed settings: the retried job succeeds and the warning goes away.
    with override_settings(MODERATION=guardrails_settings(live_server, emulator)):
        get_provider.cache_clear()
        pipeline.retry(job)
        assert pipeline.process(job.pk) == "done"
        assert auth_failures() == []


@pytest.mark.slow  # 2.3 s
def test_video_submit_polls_and_ingests_with_evidence_copied(live_server, emulator, register):
    import time

    from moderation.models import AudioSlice

    media = SAMPLES.parent.parent / "tests" / "media" / "speech_ad.mp4"
    conf = {**guardrails_settings(live_server, emulator), "POLL_INTERVAL": 0,
            "POLL_INTERVAL_MAX": 0, "ALLOW_PRIVATE_ADDRESSES": True}
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_guardrails", kinds={"image": "video"})
        photo = Photo.objects.create(image=ContentFile(media.read_bytes(), name="v.mp4"))
        job = Job.objects.get(object_id=str(photo.pk))
        outcomes = [pipeline.process(job.pk)]
        job.refresh_from_db()
        assert outcomes == ["submitted"] and job.provider_task_id
        deadline = time.monotonic() + 90
        while outcomes[-1] != "done" and time.monotonic() < deadline:
            time.sleep(0.5)
            outcomes.append(pipeline.process(job.pk))
    assert outcomes[-1] == "done", outcomes
    assert "in_progress" in outcomes  # the emulator answered 280 while it worked
    job.refresh_from_db()
    qr = Frame.objects.filter(job=job, labels__label="pt_qrCode").order_by("offset")
    assert qr and qr.first().offset >= 4 and qr.last().offset <= 10
    assert all(frame.thumbnail for frame in qr)  # TempUrl copied into our storage
    profane = [s for s in AudioSlice.objects.filter(job=job) if "profanity" in s.label_names]
    assert profane and abs(profane[0].start - 14) <= 1 and profane[0].clip
    assert job.frame_summary["pt_qrCode"] == qr.count()


def test_cancelled_job_cancels_its_task_at_the_provider(live_server, emulator, register):
    from django_q.brokers import get_broker

    from moderation import tasks
    from moderation.providers import Expired, ModerationRequest

    media = SAMPLES.parent.parent / "tests" / "media" / "clean.mp4"
    conf = {**guardrails_settings(live_server, emulator), "ALLOW_PRIVATE_ADDRESSES": True}
    with override_settings(MODERATION=conf):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_guardrails", kinds={"image": "video"})
        photo = Photo.objects.create(image=ContentFile(media.read_bytes(), name="v.mp4"))
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "submitted"
        job.refresh_from_db()
        broker = get_broker()
        before = broker.queue_size()
        photo.delete()  # cancels the job; the provider's task is cancelled by a queued task
        assert broker.queue_size() == before + 1
        assert Job.objects.get(pk=job.pk).status == Status.CANCELLED
        assert tasks.cancel_at_provider("aliyun_guardrails", job.provider_task_id) == "cancelled"
        with pytest.raises(Expired):  # the emulator forgot the task
            get_provider("aliyun_guardrails").fetch(job.provider_task_id, ModerationRequest())
        # A second cancel finds nothing: logged and reported, never raised.
        assert tasks.cancel_at_provider("aliyun_guardrails", job.provider_task_id) == "expired"
