"""IMM through the pipeline: our client against the emulator, results ingested as rows.

IMM reads OSS only, so the media must reach the provider as an OSS location. Two ways need no
pipeline change: an ad-hoc job whose URL is ``oss://bucket/key`` (``adhoc_media`` hands the
URL over as is), and a registered field on a storage whose URLs are OSS URLs (here a
FileSystemStorage writing into the emulator's OSS root with an OSS ``base_url``). A field on
a plain storage fails visibly with ``imm_needs_oss``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from moderation import pipeline
from moderation.models import Frame, Job, Status
from moderation.providers import get_provider
from tests.conftest import SAMPLES, emulator_fixture
from tests.testapp.models import Photo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_proxy")]

KEY_ID, SECRET = "LTAI5tImmE2eKeyId00001", "imm-e2e-secret-00000000000000"
BUCKET = "demo-bucket"
OSS_BASE_URL = f"https://{BUCKET}.oss-cn-hangzhou.aliyuncs.com/"
MEDIA = Path(__file__).resolve().parents[1] / "media"


emulator = emulator_fixture(access_key_id=KEY_ID, access_key_secret=SECRET)


def imm_settings(emulator) -> dict:
    return {
        "POLL_INTERVAL": 0, "POLL_INTERVAL_MAX": 0,
        "PROVIDERS": {"aliyun_imm": {
            "BACKEND": "moderation.providers.aliyun.imm.ImmProvider",
            "OPTIONS": {"ACCESS_KEY_ID": KEY_ID, "ACCESS_KEY_SECRET": SECRET,
                        "PROJECT_NAME": "demo-project", "ENDPOINT": emulator.url},
        }},
    }


def run(job: Job, limit: float = 90) -> list[str]:
    """Process the job until it is finished (bounded); the outcomes."""
    outcomes = [pipeline.process(job.pk)]
    deadline = time.monotonic() + limit
    while outcomes[-1] in ("submitted", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.3)
        outcomes.append(pipeline.process(job.pk))
    return outcomes


@pytest.mark.slow  # 2.5 s
def test_adhoc_oss_video_is_submitted_polled_and_ingested(emulator, tmp_path):
    shutil.copy(MEDIA / "speech_ad.mp4", tmp_path / "speech_ad.mp4")
    with override_settings(MODERATION=imm_settings(emulator)):
        get_provider.cache_clear()
        job = pipeline.create_adhoc_job(url=f"oss://{BUCKET}/speech_ad.mp4",
                                        provider="aliyun_imm")
        assert job.media_kind == "video"
        outcomes = run(job)
    assert outcomes[0] == "submitted" and outcomes[-1] == "done", outcomes
    assert "in_progress" in outcomes  # Status Running while the emulator worked
    job.refresh_from_db()
    assert job.status == Status.DONE and job.provider_task_id.startswith("VideoModeration-")
    assert job.suggestion == "review" and job.risk_level == "medium"
    assert {"pt_qrCode", "pt_toDirectContact_tii"} <= set(job.labels)
    qr = Frame.objects.filter(job=job, labels__label="pt_qrCode").order_by("offset")
    assert qr and qr.first().offset >= 5 and qr.last().offset <= 9
    assert job.frame_summary["pt_qrCode"] == qr.count()
    assert job.raw_result["ModerationResult"]["Suggestion"] == "review"


def test_field_on_an_oss_storage(emulator, tmp_path, register):
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(tmp_path), "base_url": OSS_BASE_URL}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        "moderation_evidence": {"BACKEND": "moderation.storage.PrivateFileSystemStorage",
                                "OPTIONS": {"location": str(tmp_path / "evidence")}},
    }
    with override_settings(MODERATION=imm_settings(emulator), STORAGES=storages):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_imm")
        photo = Photo.objects.create(image=ContentFile((SAMPLES / "qrcode.jpg").read_bytes(),
                                                       name="qr.jpg"))
        assert (tmp_path / photo.image.name).is_file()  # the "bucket" holds the upload
        job = Job.objects.get(object_id=str(photo.pk))
        outcomes = run(job)
    assert outcomes[-1] == "done", outcomes
    job.refresh_from_db()
    assert job.provider_task_id.startswith("ImageModeration-")
    assert job.raw_result["ModerationResult"]["URI"] == f"oss://{BUCKET}/{photo.image.name}"
    assert job.labels == ["pt_qrCode"]
    assert job.suggestion == "review"
    assert Frame.objects.get(job=job).labels.get().label == "pt_qrCode"


def test_field_on_a_plain_storage_fails_visibly(emulator, register):
    with override_settings(MODERATION=imm_settings(emulator)):
        get_provider.cache_clear()
        register(Photo, provider="aliyun_imm")
        photo = Photo.objects.create(image=ContentFile((SAMPLES / "benign.jpg").read_bytes(),
                                                       name="b.jpg"))
        job = Job.objects.get(object_id=str(photo.pk))
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.status == Status.FAILED and job.error_code == "imm_needs_oss"
    assert "OSS" in job.error_message
