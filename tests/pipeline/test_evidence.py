"""Provider evidence URLs (which expire) are copied into our storage at ingest."""

from __future__ import annotations

import pytest
from django.test import override_settings

from moderation import pipeline
from moderation.evidence import download
from moderation.models import Frame, Job, Status
from moderation.providers import Frame as ResultFrame
from moderation.providers import Label, Result
from tests.conftest import SAMPLES, serving
from tests.testapp.models import Photo

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(tmp_path):
    (tmp_path / "frame.jpg").write_bytes((SAMPLES / "qrcode.jpg").read_bytes())
    with serving(tmp_path) as url:
        yield url


def remote_result(url):
    label = Label("pt_qrCode", 99, risk_level="medium")
    return Result(risk_level="medium", labels=[label],
                  frames=[ResultFrame(offset=5.0, risk_level="medium", labels=[label], image=url)])


def a_job(register, image_file):
    register(Photo)
    photo = Photo.objects.create(image=image_file())
    job = Job.objects.get(object_id=str(photo.pk))
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    return job


def test_provider_frame_url_is_copied(served, register, image_file):
    job = a_job(register, image_file)
    with override_settings(MODERATION={"ALLOW_PRIVATE_ADDRESSES": True}):
        pipeline.ingest(job, remote_result(f"{served}/frame.jpg"))
    frame = Frame.objects.get(job=job)
    with frame.thumbnail.open("rb") as fh:
        assert fh.read() == (SAMPLES / "qrcode.jpg").read_bytes()


def test_a_failed_copy_keeps_the_result(served, register, image_file, caplog):
    job = a_job(register, image_file)
    pipeline.ingest(job, remote_result(f"{served}/frame.jpg"))  # private address: refused
    job.refresh_from_db()
    assert job.status == Status.DONE and job.labels == ["pt_qrCode"]
    assert not Frame.objects.get(job=job).thumbnail
    assert "could not copy evidence" in caplog.text


def test_download_limits(served, settings):
    with override_settings(MODERATION={"ALLOW_PRIVATE_ADDRESSES": True}):
        assert download(f"{served}/missing.jpg") is None  # 404
        assert download("file:///etc/passwd") is None
        assert download(f"{served}/frame.jpg")[:2] == b"\xff\xd8"
    assert download(f"{served}/frame.jpg") is None  # loopback refused by default
