"""Our Content Moderation 1.0 client against the local emulator, through the pipeline: the
emulator fetches the upload from the site's signed media URL (a live server), answers in the
1.0 vocabulary, and the job ends as rows, by polling (280 first) or by a signed callback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from moderation import pipeline
from moderation.models import AudioSlice, Frame, Job, ReviewEvent, Status
from moderation.providers import get_provider
from tests.conftest import SAMPLES, emulator_fixture, serving
from tests.media.make_videos import TIMELINES
from tests.testapp.models import Photo

# slow: 11 s for the module in a full run
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_proxy")]

ALIAS, UID = "aliyun_green", "1234567890"
KEY_ID, SECRET = "LTAI5tGreenE2e0000001", "green-e2e-secret-0000000000000"
MEDIA = Path(__file__).resolve().parents[1] / "media"
QR_START, QR_END = TIMELINES["speech_ad.mp4"]["screen"][0][:2]
PROFANITY_AT = TIMELINES["speech_ad.mp4"]["speech"][2][0]


emulator = emulator_fixture(clear_providers=True, access_key_id=KEY_ID, access_key_secret=SECRET,
                            uid=UID, callback_retries=(0.2, 0.5, 1.0))


def green_settings(live_server, emulator, **extra):
    return {
        "PUBLIC_BASE_URL": live_server.url, "ALLOW_PRIVATE_ADDRESSES": True,
        "PROVIDERS": {ALIAS: {
            "BACKEND": "moderation.providers.aliyun.green.GreenProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET, "UID": UID,
                        "ENDPOINT": emulator.url},
        }},
        **extra,
    }


def upload(register, media: Path, name: str, kind: str = "video", **options) -> Job:
    get_provider.cache_clear()
    register(Photo, provider=ALIAS, kinds={"image": kind}, **options)
    photo = Photo.objects.create(image=ContentFile(media.read_bytes(), name=name))
    return Job.objects.get(object_id=str(photo.pk))


def test_video_job_polls_through_280_and_becomes_rows_with_evidence(live_server, emulator,
                                                                     register):
    conf = green_settings(live_server, emulator, POLL_INTERVAL=0, POLL_INTERVAL_MAX=0)
    with override_settings(MODERATION=conf):
        job = upload(register, MEDIA / "speech_ad.mp4", "v.mp4")
        outcomes = [pipeline.process(job.pk)]
        job.refresh_from_db()
        assert outcomes == ["submitted"] and job.provider_task_id.startswith("vi")
        deadline = time.monotonic() + 90
        while outcomes[-1] != "done" and time.monotonic() < deadline:
            time.sleep(0.5)
            outcomes.append(pipeline.process(job.pk))
    assert outcomes[-1] == "done", outcomes
    assert "in_progress" in outcomes  # per-task 280 while the emulator worked
    job.refresh_from_db()
    assert job.status == Status.DONE and job.suggestion == "review"
    qr = Frame.objects.filter(job=job, labels__label="pt_qrCode").order_by("offset")
    assert qr and qr.first().offset >= QR_START and qr.last().offset <= QR_END
    assert all(frame.thumbnail for frame in qr)  # the temporary frame URL was copied
    with qr.first().thumbnail.open("rb") as fh:
        assert fh.read(2) == b"\xff\xd8"
    assert qr.first().labels.get().service == "green"
    slices = list(AudioSlice.objects.filter(job=job).order_by("start"))
    profane = [s for s in slices if "profanity" in s.label_names]
    assert profane and abs(profane[0].start - PROFANITY_AT) <= 1 and "fucking" in profane[0].text
    assert any(s.text and not s.label_names for s in slices)  # clean sentences are rows too
    assert job.frame_summary["pt_qrCode"] == qr.count()
    assert job.audio_summary["profanity"] == 1
    assert job.raw_result["data"][0]["taskId"] == job.provider_task_id


def test_video_job_finished_by_a_signed_callback(live_server, emulator, register):
    conf = green_settings(live_server, emulator, CALLBACK_BASE_URL=live_server.url,
                          POLL_INTERVAL=3600, POLL_INTERVAL_MAX=3600)
    with override_settings(MODERATION=conf):
        job = upload(register, MEDIA / "clean.mp4", "c.mp4")
        assert pipeline.process(job.pk) == "submitted"
        deadline = time.monotonic() + 60
        while job.status != Status.DONE and time.monotonic() < deadline:
            time.sleep(0.3)
            job.refresh_from_db()
    assert job.status == Status.DONE, "the callback did not finish the job"
    # The stored raw result is the callback's content: one data[] element, ours.
    assert job.raw_result["taskId"] == job.provider_task_id
    assert job.raw_result["dataId"] == job.data_id
    assert job.suggestion == "pass" and job.risk_level == "none"
    assert AudioSlice.objects.filter(job=job).exists()  # sentences, though all clean
    assert ReviewEvent.objects.filter(job=job, action="completed").count() == 1


def test_async_image_job_finished_by_a_signed_callback(live_server, emulator, register):
    conf = green_settings(live_server, emulator, CALLBACK_BASE_URL=live_server.url,
                          POLL_INTERVAL=3600, POLL_INTERVAL_MAX=3600)
    conf["PROVIDERS"][ALIAS]["OPTIONS"]["ASYNC_IMAGES"] = True
    with override_settings(MODERATION=conf):
        job = upload(register, SAMPLES / "qrcode.jpg", "q.jpg", kind="image")
        assert pipeline.process(job.pk) == "submitted"
        job.refresh_from_db()
        assert job.provider_task_id.startswith("img")
        deadline = time.monotonic() + 30
        while job.status != Status.DONE and time.monotonic() < deadline:
            time.sleep(0.2)
            job.refresh_from_db()
    assert job.status == Status.DONE and "pt_qrCode" in job.labels
    assert job.raw_result["taskId"] == job.provider_task_id
    assert Frame.objects.get(job=job).labels.get().label == "pt_qrCode"


def test_live_job_is_polled_in_the_worker_until_the_stream_ends(live_server, emulator):
    conf = green_settings(live_server, emulator)
    conf["PROVIDERS"][ALIAS]["OPTIONS"]["LIVE_POLL_INTERVAL"] = 0.2
    with serving(MEDIA) as media_url, override_settings(MODERATION=conf):
        get_provider.cache_clear()
        job = pipeline.create_adhoc_job(url=f"{media_url}/speech_ad.mp4", kind="live",
                                        provider=ALIAS)
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert job.status == Status.DONE and job.media_kind == "live"
    qr = Frame.objects.filter(job=job, labels__label="pt_qrCode")
    assert qr and all(frame.thumbnail for frame in qr)
    assert AudioSlice.objects.filter(job=job).count() >= 3
    assert "profanity" in job.labels and job.suggestion == "review"


def test_adhoc_frames_have_no_urls_and_fail_as_not_supported(live_server, emulator):
    from tests.conftest import png_bytes

    with override_settings(MODERATION=green_settings(live_server, emulator)):
        get_provider.cache_clear()
        job = pipeline.create_adhoc_job(frames=[(0.0, png_bytes())], provider=ALIAS)
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "no_frame_urls"
