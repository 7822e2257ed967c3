"""End to end through a real ``qcluster`` subprocess and the real local engine.

Rows are committed (transactional test), the commit hook enqueues on the configured broker
(the ORM broker on SQLite, Redis in the PostgreSQL run), and a separate worker process
loads the models, moderates the sample media and the bad inputs, and writes the results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile

import moderation
from demo_project.blog.models import Post
from moderation.models import Frame, Job, Status
from tests.conftest import SAMPLES, png_bytes, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def png_claiming(width: int, height: int) -> bytes:
    """A 1-pixel PNG whose header claims another size (a bomb, or 0x0)."""
    import struct
    import zlib

    raw = png_bytes(size=(1, 1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return raw[:8] + header + raw[8 + 25:]


BAD_INPUTS = {
    "empty.png": (b"", "empty_file"),
    "truncated.jpg": ((SAMPLES / "benign.jpg").read_bytes()[:2000], "corrupt_image"),
    "notes.png": (b"just some text, not an image\n" * 20, "not_an_image"),
    "bomb.png": (png_claiming(60000, 60000), "image_too_large"),
    "zero.png": (png_claiming(0, 0), "empty_image"),
}


@pytest.fixture
def qcluster(start_qcluster):
    return start_qcluster()



@pytest.mark.slow  # 6.2 s
def test_real_worker_moderates_samples_and_survives_bad_inputs(qcluster):
    posts = {
        "benign": Post.objects.create(title="benign", image=ContentFile(
            (SAMPLES / "benign.jpg").read_bytes(), name="benign.jpg")),
        "qrcode": Post.objects.create(title="qr", image=ContentFile(
            (SAMPLES / "qrcode.jpg").read_bytes(), name="qrcode.jpg")),
    }
    for name, (data, _code) in BAD_INPUTS.items():
        posts[name] = Post.objects.create(title=name, image=ContentFile(data, name=name))
    # The bad files go first in the queue: the worker must keep going after them.
    posts["ad"] = Post.objects.create(title="ad", image=ContentFile(
        (SAMPLES / "ad_text.png").read_bytes(), name="ad_text.png"))
    # A video: frames and speech in the worker's own process pool (daemonize_workers off).
    posts["video"] = Post.objects.create(title="video", video=ContentFile(
        (ROOT / "tests" / "media" / "clean.mp4").read_bytes(), name="clean.mp4"))
    assert Job.objects.count() == len(posts)

    def all_finished():
        return not Job.objects.unfinished().exists()

    assert wait_for(all_finished), list(Job.objects.values("field_name", "status", "error_message"))
    assert qcluster.poll() is None, "the cluster died"

    def job_of(key):
        return Job.objects.get(object_id=str(posts[key].pk))

    benign = job_of("benign")
    assert (benign.status, benign.suggestion, benign.decision) == (Status.DONE, "pass", "auto_pass")
    qr = job_of("qrcode")
    assert qr.status == Status.DONE and "pt_qrCode" in qr.labels and qr.suggestion == "review"
    ad = job_of("ad")
    assert "pt_toDirectContact_tii" in ad.labels and ad.suggestion == "review"
    assert Frame.objects.get(job=ad).thumbnail  # evidence stored by the worker
    for name, (_data, code) in BAD_INPUTS.items():
        job = job_of(name)
        assert (job.status, job.error_code) == (Status.FAILED, code), name
        assert job.error_message and "\n" not in job.error_message
    video = job_of("video")
    assert (video.status, video.decision) == (Status.DONE, "auto_pass")
    assert video.frames.count() == 12 and video.slices.count() >= 1
    assert video.raw_result["parallelism"] == "processes"
    shown = set(moderation.visible(Post.objects.all()).values_list("title", flat=True))
    assert shown == {"benign", "video"}
