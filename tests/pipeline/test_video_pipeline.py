"""Videos, frame sequences and live streams through the pipeline with the real engine:
rows per frame and per slice, evidence, live progress and a mid-stream block."""

from __future__ import annotations

import subprocess

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from demo_project.blog.models import Post
from moderation import pipeline, signals
from moderation.models import AudioSlice, Frame, Job, Status
from tests.conftest import SAMPLES, serving
from tests.media.make_videos import TIMELINES

# slow: 15 s for the module in a full run
pytestmark = pytest.mark.slow

MEDIA = SAMPLES.parent.parent / "tests" / "media"
QR_START, QR_END = TIMELINES["speech_ad.mp4"]["screen"][0][:2]
CAPTION_START, CAPTION_END = TIMELINES["speech_ad.mp4"]["screen"][1][:2]
AD_AT = TIMELINES["speech_ad.mp4"]["speech"][1][0]
PROFANITY_AT = TIMELINES["speech_ad.mp4"]["speech"][2][0]


def flagged_offsets(job, label):
    return sorted(Frame.objects.filter(job=job, labels__label=label)
                  .values_list("offset", flat=True))


@pytest.mark.django_db
def test_video_file_becomes_frame_and_slice_rows(django_capture_on_commit_callbacks,
                                                  admin_client):
    post = Post.objects.create(title="v", video=ContentFile(
        (MEDIA / "speech_ad.mp4").read_bytes(), name="speech_ad.mp4"))
    job = Job.objects.get(object_id=str(post.pk))
    assert job.media_kind == "video"
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert job.status == Status.DONE
    assert Frame.objects.filter(job=job).count() == 24  # one per second
    qr = flagged_offsets(job, "pt_qrCode")
    assert qr and qr[0] >= QR_START - 1 and qr[-1] <= QR_END + 1
    caption = flagged_offsets(job, "pt_toDirectContact_tii")
    assert caption and caption[0] >= CAPTION_START - 1 and caption[-1] <= CAPTION_END + 1
    assert job.frame_summary["pt_qrCode"] == len(qr)
    for frame in Frame.objects.filter(job=job):
        assert bool(frame.thumbnail) == (frame.risk_level != "none")
    slices = list(AudioSlice.objects.filter(job=job))
    profane = [s for s in slices if "profanity" in s.label_names]
    assert profane and abs(profane[0].start - PROFANITY_AT) <= 1
    # Whisper base (the default) hears "this is a fucking scam used to piddit it".
    assert profane[0].clip and "fucking" in profane[0].risk_words
    assert profane[0].language == "en"
    # "cheap pills" (a configured keyword, so a hotword) is in the transcript, and keyword
    # spotting finds it too; the slice says so.
    # contraband_drug's speech label is its family, "contraband" (vocabulary.py).
    keyword = [s for s in slices if "contraband" in s.label_names]
    assert keyword and abs(keyword[0].start - AD_AT) <= 1 and "cheap pills" in keyword[0].risk_words
    found_by = {lbl["service"] for lbl in keyword[0].labels if lbl["label"] == "contraband"}
    assert found_by == {"asr+kws"}
    assert job.audio_summary["profanity"] == 1
    assert job.suggestion == "block" and job.decision == "auto_block"  # contraband: high
    assert Post.objects.get(pk=post.pk).hidden
    # the job page shows the transcript, who found what, and a permission-checked player
    from django.urls import reverse

    page = admin_client.get(reverse("admin:moderation_job_change", args=[job.pk]))
    body = page.content.decode()
    assert "This is a fucking scam" in body and "(asr+kws" in body
    assert reverse("moderation:slice-clip", args=[profane[0].pk]) in body
    clip = admin_client.get(reverse("moderation:slice-clip", args=[profane[0].pk]))
    assert clip.status_code == 200 and b"".join(clip.streaming_content)[:4] == b"RIFF"


@pytest.mark.django_db
def test_registration_interval_reaches_the_engine(register, image_file):
    from tests.testapp.models import Photo

    register(Photo, kinds={"image": "video"}, interval=4, max_frames=5, audio=False)
    photo = Photo.objects.create(image=ContentFile((MEDIA / "clean.mp4").read_bytes(),
                                                   name="clean.mp4"))
    job = Job.objects.get(object_id=str(photo.pk))
    assert job.options == {"interval": 4, "max_frames": 5, "audio": False}
    assert pipeline.process(job.pk) == "done"
    assert list(Frame.objects.filter(job=job).values_list("offset", flat=True)) == [0, 4, 8]
    assert not AudioSlice.objects.filter(job=job).exists()
    job.refresh_from_db()
    assert job.risk_level == "none" and job.decision == "auto_pass"


@pytest.mark.django_db
def test_frame_sequence_is_one_job(django_capture_on_commit_callbacks):
    frames = [(0.0, (SAMPLES / "benign.jpg").read_bytes()),
              (5.0, (SAMPLES / "qrcode.jpg").read_bytes()),
              (10.0, (SAMPLES / "ad_text.png").read_bytes())]
    job = pipeline.create_adhoc_job(frames=frames)
    assert job.media_kind == "frames" and job.content_type is None
    assert pipeline.process(job.pk) == "done"
    rows = {f.offset: [lbl.label for lbl in f.labels.all()] for f in job.frames.all()}
    assert rows == {0.0: ["nonLabel"], 5.0: ["pt_qrCode"], 10.0: ["pt_toDirectContact_tii"]}
    job.refresh_from_db()
    assert job.frame_summary == {"pt_qrCode": 1, "pt_toDirectContact_tii": 1}


@pytest.mark.django_db
def test_bad_video_fails_clearly():
    job = pipeline.create_adhoc_job(name="broken.mp4",
                                    content=(MEDIA / "speech_ad.mp4").read_bytes()[:30000])
    assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "corrupt_media" and job.error_message


# --- live streams ---------------------------------------------------------------------


@pytest.fixture
def hls_url(tmp_path):
    """speech_ad.mp4 as an HLS playlist served on loopback by a thread."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i",
                    str(MEDIA / "speech_ad.mp4"), "-c", "copy", "-f", "hls", "-hls_time", "2",
                    "-hls_playlist_type", "vod", str(tmp_path / "index.m3u8")], check=True)
    with serving(tmp_path) as url:
        yield f"{url}/index.m3u8"


LIVE_SETTINGS = {"ALLOW_PRIVATE_ADDRESSES": True, "LIVE_CHUNK_SECONDS": 6,
                 "LABELS": {"pt_qrCode": {"risk_level": "high"}}}


@pytest.mark.django_db(transaction=True)
def test_live_stream_rows_appear_and_block_fires_mid_stream(hls_url):
    events = []

    def on_progress(sender, job, result, **kwargs):
        fresh = Job.objects.get(pk=job.pk)
        events.append(("progress", fresh.status, Frame.objects.filter(job=job).count()))

    def on_blocked(sender, job, **kwargs):
        events.append(("blocked", Job.objects.get(pk=job.pk).status, None))

    signals.job_progress.connect(on_progress, weak=False)
    signals.content_blocked.connect(on_blocked, weak=False)
    try:
        with override_settings(MODERATION={**LIVE_SETTINGS, "KEYWORDS": {}}):
            post = Post.objects.create(title="live", stream_url=hls_url)
            job = Job.objects.get(object_id=str(post.pk))
            assert job.media_kind == "live"
            assert pipeline.process(job.pk) == "done"
    finally:
        signals.job_progress.disconnect(on_progress)
        signals.content_blocked.disconnect(on_blocked)
    progress = [e for e in events if e[0] == "progress"]
    assert len(progress) >= 3 and all(status == "in_progress" for _, status, _ in progress)
    counts = [count for _, _, count in progress]
    assert counts == sorted(counts) and counts[0] > 0
    blocked_at = events.index(next(e for e in events if e[0] == "blocked"))
    assert blocked_at < len(events) - 1  # fired before the stream had ended
    assert [e[0] for e in events].count("blocked") == 1
    job.refresh_from_db()
    post.refresh_from_db()
    assert job.status == Status.DONE and job.decision == "auto_block" and post.hidden
    qr = flagged_offsets(job, "pt_qrCode")
    assert qr and QR_START - 1 <= qr[0] <= QR_END + 1


@pytest.mark.django_db
def test_stream_to_a_private_address_is_refused(hls_url):
    job = pipeline.create_adhoc_job(url=hls_url)
    assert job.media_kind == "live"
    assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert job.error_code == "forbidden_address"


@pytest.mark.django_db(transaction=True)  # on_commit hooks fire as in a worker
def test_cancelling_a_live_job_stops_it(hls_url):
    def cancel_after_first_chunk(sender, job, result, **kwargs):
        pipeline._cancel(Job.objects.filter(pk=job.pk), "stopped by a moderator")

    signals.job_progress.connect(cancel_after_first_chunk, weak=False)
    try:
        with override_settings(MODERATION=LIVE_SETTINGS):
            job = pipeline.create_adhoc_job(url=hls_url)
            assert pipeline.process(job.pk) == "cancelled"
    finally:
        signals.job_progress.disconnect(cancel_after_first_chunk)
    job.refresh_from_db()
    assert job.status == Status.CANCELLED
    assert 0 < job.frames.count() <= 7  # the first 6 s chunk, nothing after


@pytest.mark.django_db
def test_a_stream_that_never_answers_is_a_failed_job(silent_server):
    settings = {"ALLOW_PRIVATE_ADDRESSES": True,
                "PROVIDERS": {"local": {"OPTIONS": {"open_timeout": 2, "read_timeout": 2}}}}
    with override_settings(MODERATION=settings):
        job = pipeline.create_adhoc_job(url=f"http://127.0.0.1:{silent_server}/live.m3u8")
        assert pipeline.process(job.pk) == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_code) == (Status.FAILED, "stream_timeout")
    assert job.error_message and job.lease_until is None
