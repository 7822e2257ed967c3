"""Every frame counts: animated GIF, WebP and PNG frame by frame, frames jobs given one
file, very large images at a bounded working size, and no job that analysed nothing ends
``pass``. Real files made here, the real local engine (QR scene: cheap), the real pipeline.
"""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from PIL import Image, ImageOps

from moderation import pipeline
from moderation.models import Frame, Job, Status
from moderation.providers import Media, MediaError, ModerationRequest, Result, get_provider
from moderation.providers.local.animation import frame_seconds, sample_animation
from moderation.providers.local.decode import decode_image
from tests.conftest import SAMPLES
from tests.providers import result as scripted_result
from tests.testapp.models import Photo

# slow: 17 s for the module in a full run
pytestmark = pytest.mark.slow

QR_SCENE = ["qrcode"]  # the QR detector alone: a few ms per frame
SAVE_OPTIONS = {"GIF": {"loop": 0}, "WEBP": {"lossless": True}, "PNG": {}}
THREADS = {"parallelism": "threads", "workers": 1}


def qr_frame() -> Image.Image:
    return Image.open(SAMPLES / "qrcode.jpg").convert("RGB")


def benign_frames(count: int) -> list[Image.Image]:
    """Distinct benign pictures (identical neighbours would be merged by the encoders)."""
    base = Image.open(SAMPLES / "benign.jpg").convert("RGB")
    variants = [base, ImageOps.mirror(base), ImageOps.flip(base), ImageOps.grayscale(base)]
    return [variants[i % len(variants)].convert("RGB") for i in range(count)]


def animation(frames: list[Image.Image], durations: list[int], fmt: str) -> bytes:
    out = io.BytesIO()
    frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:],
                   duration=durations, **SAVE_OPTIONS[fmt])
    return out.getvalue()


def as_media(data: bytes, name: str, kind: str = "image") -> Media:
    return Media(name=name, kind=kind, opener=lambda: io.BytesIO(data), size=len(data))


def submit(data: bytes, name: str = "a.gif", kind: str = "image", **options) -> Result:
    request = ModerationRequest(scenes=QR_SCENE, options={**THREADS, **options})
    return get_provider("local").submit(as_media(data, name, kind), request)


def gif_of_blank_frames(width: int, height: int, frames: int) -> bytes:
    """A GIF whose canvas is ``width`` x ``height`` and whose ``frames`` frames are each one
    pixel: a few bytes per frame that a decoder composites onto the whole canvas."""
    pixel = (b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 100 ms
             b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"  # a 1x1 image at (0, 0)
             b"\x02\x02\x44\x01\x00")  # LZW: clear, index 0, end
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    return header + pixel * frames + b"\x3b"


# --- animated images on the engine ----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_later_frame_with_a_qr_code_flags_the_animation(fmt):
    frames = [*benign_frames(2), qr_frame(), *benign_frames(1)]
    # 0 ms counts as 100 ms, as browsers show it
    result = submit(animation(frames, [100, 0, 250, 400], fmt), f"a.{fmt.lower()}")
    assert [f.offset for f in result.frames] == [0.0, 0.1, 0.2, 0.45]
    risks = [f.risk_level for f in result.frames]
    assert risks == ["none", "none", "medium", "none"]
    assert result.risk_level == "medium" and result.frame_summary == {"pt_qrCode": 1}
    assert "pt_qrCode" in {lbl.label for lbl in result.labels}
    assert result.frames[2].image[:3] == b"\xff\xd8\xff"  # the flagged frame's thumbnail
    assert result.raw["media"] == "animation" and result.raw["sampling"] == "every_frame"
    assert result.raw["frames_total"] == 4 and result.raw["duration_s"] == 0.85


def test_each_frame_is_composited_as_a_viewer_sees_it():
    """GIF frames are stored as the changed rectangle only: the analysed frame is the
    whole picture, not the patch."""
    benign = benign_frames(1)[0]
    with_qr = benign.copy()
    with_qr.paste(qr_frame().crop((400, 150, 880, 570)), (400, 150))
    data = animation([benign, with_qr], [500, 500], "GIF")
    samples = list(sample_animation(Image.open(io.BytesIO(data)), max_frames=10))
    assert [offset for offset, _ in samples] == [0.0, 0.5]
    second = samples[1][1]
    assert second.shape == (720, 1280, 3)
    # the untouched corner still shows the first frame (composited), not a blank canvas
    first = samples[0][1]
    assert np.abs(second[:100, :100].astype(int) - first[:100, :100].astype(int)).mean() < 8


def test_more_frames_than_max_frames_are_spread_over_all_of_them():
    frames = [Image.new("RGB", (64, 48), (i * 8, 100, 200)) for i in range(30)]
    data = animation(frames, [100] * 30, "GIF")  # 3 s
    result = submit(data, interval=1, max_frames=5)
    assert [f.offset for f in result.frames] == [0.0, 0.6, 1.2, 1.8, 2.4]
    assert result.raw["sampling"] == "spread" and result.raw["frames_total"] == 30


def test_a_long_animation_is_sampled_to_its_end_and_no_further():
    """Stopping at the max_frames-th frame would let the rest through unseen: the samples
    reach the last part, and nothing after the last sample is decoded."""
    frames = [Image.new("RGB", (64, 48), (i * 4, 100, 200)) for i in range(60)]
    image = Image.open(io.BytesIO(animation(frames, [500] * 60, "GIF")))
    from moderation.providers.local.animation import AnimationStats

    stats = AnimationStats()
    offsets = [o for o, _ in sample_animation(image, max_frames=5, stats=stats)]
    assert offsets == [0.0, 6.0, 12.0, 18.0, 24.0]
    assert stats.decoded == 49  # frame 48 (24 s) was the last sample: nothing after it


def test_a_forbidden_last_quarter_of_a_long_animation_is_seen():
    """400 frames, a QR code in the last 100 only, max_frames 5: sampling by time would
    have stopped after the fifth second (frame 50); spread samples reach frame 320."""
    qr = qr_frame().resize((640, 360))

    def variant(picture: Image.Image, i: int) -> Image.Image:
        picture = picture.copy()  # distinct neighbours: encoders merge identical frames
        picture.paste((i % 7 * 30, i % 5 * 40, 90), (0, 0, 12, 12))
        return picture

    frames = [variant(Image.new("RGB", (640, 360), (200, 180, 160)), i) for i in range(300)]
    frames += [variant(qr, i) for i in range(100)]
    result = submit(animation(frames, [100] * 400, "GIF"), max_frames=5)
    assert result.raw["sampling"] == "spread" and result.raw["frames_total"] == 400
    assert [f.offset for f in result.frames] == [0.0, 8.0, 16.0, 24.0, 32.0]
    assert [f.offset for f in result.frames if f.risk_level != "none"] == [32.0]


def test_a_huge_animation_fails_fast_before_decoding():
    data = gif_of_blank_frames(4000, 4000, 10_000)  # 160 gigapixels in 150 KB
    start = time.perf_counter()
    with pytest.raises(MediaError) as err:
        submit(data)
    assert err.value.code == "image_too_large" and "10000 frames" in str(err.value)
    assert time.perf_counter() - start < 5


def test_the_pixel_cap_comes_from_the_options():
    data = animation(benign_frames(3), [100, 100, 100], "GIF")  # 3 x 0.92 MP
    with pytest.raises(MediaError) as err:
        submit(data, max_animation_pixels=2_000_000)
    assert err.value.code == "image_too_large"
    assert len(submit(data, max_animation_pixels=3_000_000).frames) == 3


@pytest.mark.parametrize(("duration", "seconds"), [
    (0, 0.1), (10, 0.1), (11, 0.011), (None, 0.1), ("x", 0.1), (70.0, 0.07),
])
def test_frame_durations_as_browsers_time_them(duration, seconds):
    assert frame_seconds({"duration": duration}) == pytest.approx(seconds)


def test_a_still_gif_is_one_frame_as_before():
    out = io.BytesIO()
    qr_frame().save(out, format="GIF")
    result = submit(out.getvalue())
    assert len(result.frames) == 1 and result.frames[0].offset == 0.0
    assert result.risk_level == "medium" and result.raw.get("media") == "image"
    assert result.frames[0].image[:3] == b"\xff\xd8\xff"


# --- frames jobs ------------------------------------------------------------------------------


def test_a_frames_job_given_one_file_analyses_it():
    out = io.BytesIO()
    qr_frame().save(out, format="JPEG")
    result = submit(out.getvalue(), "one.jpg", kind="frames")
    assert [f.offset for f in result.frames] == [0.0]
    assert result.risk_level == "medium"


def test_a_frames_job_without_frames_fails_clearly():
    media = Media(name="0 frames", kind="frames", frames=[])
    with pytest.raises(MediaError) as err:
        get_provider("local").submit(media, ModerationRequest(scenes=QR_SCENE))
    assert err.value.code == "no_frames"


def test_an_animation_inside_a_frame_sequence_is_refused():
    gif = animation(benign_frames(2), [100, 100], "GIF")
    media = Media(name="2 frames", kind="frames", frames=[(0.0, gif), (1.0, gif)])
    with pytest.raises(MediaError) as err:
        get_provider("local").submit(media, ModerationRequest(scenes=QR_SCENE,
                                                              options=THREADS))
    assert err.value.code == "animated_frame"


# --- working size -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_big_images_are_decoded_at_the_working_size(fmt):
    picture = Image.new("RGB", (6000, 1500), (240, 240, 240))
    picture.paste(qr_frame(), (2000, 400))
    out = io.BytesIO()
    picture.save(out, format=fmt)
    bgr = decode_image(out.getvalue(), max_bytes=50 << 20, max_pixels=40_000_000,
                       working_size=1024)
    assert bgr.shape == (256, 1024, 3) and bgr.flags.c_contiguous
    result = submit(out.getvalue(), f"big.{fmt.lower()}")
    assert result.raw["size"] == [4096, 1024] and result.risk_level == "medium"


def test_exif_orientation_survives_the_reduction():
    picture = Image.new("RGB", (3000, 1000), (255, 255, 255))
    picture.paste((0, 0, 0), (0, 0, 300, 1000))  # black band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif.tobytes())
    bgr = decode_image(out.getvalue(), max_bytes=50 << 20, max_pixels=40_000_000,
                       working_size=600)
    assert bgr.shape == (600, 200, 3)  # upright: tall
    assert bgr[:50].mean() < 40 and bgr[-50:].mean() > 200  # the band is now on top


# --- the pipeline ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_animated_upload_becomes_frame_rows(register, django_capture_on_commit_callbacks):
    register(Photo, scenes=QR_SCENE, options=THREADS)
    frames = [*benign_frames(2), qr_frame()]
    data = animation(frames, [300, 300, 300], "WEBP")
    photo = Photo.objects.create(image=ContentFile(data, name="anim.webp"))
    job = Job.objects.get(object_id=str(photo.pk))
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.risk_level, job.labels) == (Status.DONE, "medium", ["pt_qrCode"])
    assert job.suggestion != "pass"
    rows = list(Frame.objects.filter(job=job).order_by("offset"))
    assert [(r.offset, r.risk_level) for r in rows] == [
        (0.0, "none"), (0.3, "none"), (0.6, "medium")]
    assert rows[2].thumbnail and not rows[0].thumbnail  # as video frames: risky ones
    assert all(len(r.pdq) == 64 for r in rows)


@pytest.mark.django_db
def test_a_frames_registration_on_one_file_analyses_it(register,
                                                       django_capture_on_commit_callbacks):
    register(Photo, scenes=QR_SCENE, kinds={"image": "frames"}, options=THREADS)
    out = io.BytesIO()
    qr_frame().save(out, format="PNG")
    photo = Photo.objects.create(image=ContentFile(out.getvalue(), name="qr.png"))
    job = Job.objects.get(object_id=str(photo.pk))
    assert job.media_kind == "frames"
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert job.status == Status.DONE and job.labels == ["pt_qrCode"]


@pytest.mark.django_db
def test_an_empty_frame_sequence_fails(django_capture_on_commit_callbacks):
    job = pipeline.create_adhoc_job(frames=[], scenes=QR_SCENE)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.process(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_code) == (Status.FAILED, "no_frames")
    assert job.suggestion != "pass"


@pytest.mark.django_db
def test_a_result_that_analysed_nothing_never_passes(register, scripted,
                                                     django_capture_on_commit_callbacks):
    """E.g. a remote provider's done answer for a video without a single frame."""
    register(Photo, provider="scripted", kinds={"image": "video"})
    photo = Photo.objects.create(image=ContentFile(b"\0\0\0\x18ftypmp42", name="v.mp4"))
    job = Job.objects.get(object_id=str(photo.pk))
    scripted.script.append(Result(status="done", suggestion="pass", risk_level="none"))
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.process(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_code) == (Status.FAILED, "nothing_analysed")
    assert job.decision != "auto_pass" and not Frame.objects.filter(job=job).exists()


@pytest.mark.django_db
def test_heard_audio_counts_as_analysed(register, scripted,
                                        django_capture_on_commit_callbacks):
    """A silent track gives no slice, yet it was listened to: that may pass."""
    register(Photo, provider="scripted", kinds={"image": "audio"})
    photo = Photo.objects.create(image=ContentFile(b"RIFF....WAVE", name="a.wav"))
    job = Job.objects.get(object_id=str(photo.pk))
    heard = Result(status="done", audio_seconds=12.5)
    assert Result.from_dict(heard.to_dict()).audio_seconds == 12.5  # kept for reuse
    scripted.script.append(heard)
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.process(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.suggestion) == (Status.DONE, "pass")


def wav(seconds: float) -> bytes:
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as track:
        track.setnchannels(1)
        track.setsampwidth(2)
        track.setframerate(16000)
        track.writeframes(b"\0\0" * int(16000 * seconds))
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(("seconds", "status", "code"), [
    (0, Status.FAILED, "nothing_analysed"),  # a WAV without one sample
    (3, Status.DONE, ""),  # three seconds of silence were listened to
])
def test_audio_on_the_local_engine(seconds, status, code, django_capture_on_commit_callbacks):
    job = pipeline.create_adhoc_job(name="track.wav", content=wav(seconds),
                                    options={"parallelism": "threads"})
    assert job.media_kind == "audio"
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.process(job.pk)
    job.refresh_from_db()
    assert (job.status, job.error_code) == (status, code)
    assert (job.decision == "auto_pass") == (status == Status.DONE)


def test_scripted_results_analyse_a_frame():
    assert scripted_result().analysed and not Result().analysed


# --- settings -------------------------------------------------------------------------------


def test_the_working_size_setting_reaches_the_engine(settings):
    with override_settings(MODERATION={**settings.MODERATION, "IMAGE_WORKING_SIZE": 640}):
        result = submit((SAMPLES / "qrcode.jpg").read_bytes(), "qr.jpg")
    assert result.raw["size"] == [640, 360] and result.risk_level == "medium"


@pytest.mark.parametrize("conf", [
    {"IMAGE_WORKING_SIZE": 100}, {"IMAGE_WORKING_SIZE": "4096"},
    {"MAX_ANIMATION_PIXELS": 0}, {"MAX_ANIMATION_PIXELS": 1.5e9},
])
def test_bad_image_limits_are_reported(conf, settings):
    from moderation.checks import check_settings

    with override_settings(MODERATION={**settings.MODERATION, **conf}):
        assert "moderation.E018" in [error.id for error in check_settings()]
    assert "moderation.E018" not in [error.id for error in check_settings()]


@pytest.mark.django_db
def test_an_allow_listed_first_frame_does_not_clear_an_animation(register, scripted):
    """The hash pre-check before a remote provider hashes the first frame only: an allow
    hit answers for a still image, never for an animation (a block hit still does)."""
    from moderation import libraries
    from moderation.models import HashEntry

    register(Photo, provider="scripted")
    frames = [*benign_frames(1), qr_frame()]
    gif = animation(frames, [500, 500], "GIF")
    entry = HashEntry.objects.create(list_type="allow", pdq=libraries.image_pdq(gif)[0])
    still = io.BytesIO()
    frames[0].save(still, format="GIF")

    def outcome(data: bytes, name: str) -> str:
        photo = Photo.objects.create(image=ContentFile(data, name=name))
        return pipeline.process(Job.objects.get(object_id=str(photo.pk)).pk)

    assert outcome(still.getvalue(), "still.gif") == "library"
    scripted.script.append(scripted_result("medium", "pt_qrCode"))
    assert outcome(gif, "anim.gif") == "done"  # the provider saw the whole file
    assert len(scripted.calls) == 1
    entry.delete()
    HashEntry.objects.create(list_type="block", label="known", pdq=entry.pdq)
    other = animation(frames, [400, 600], "GIF")  # new bytes: not a reuse
    assert outcome(other, "anim2.gif") == "library"
