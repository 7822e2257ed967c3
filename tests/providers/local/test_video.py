"""The local provider's video path (files, frame sequences, live streams) with the real engine.

Expectations come from the timelines in tests/media/make_videos.py. Bad inputs, audio-only
and silent variants, HLS playlists and short clips in other containers are made at test
time with ffmpeg. Nothing here uses the database. Every test that waits on a worker, a
socket or a stream runs under ``deadline`` (pytest-timeout is not installed).
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import override_settings

from moderation.providers.errors import MediaError
from moderation.providers.local import pool
from moderation.providers.local.jobs import DEDUP_THRESHOLD, distance, fingerprint
from moderation.providers.local.textgate import may_have_text
from moderation.providers.local.video import (
    analyse_frames,
    analyse_video,
    probe,
    speech_pieces,
    stream_live,
)
from moderation.providers.result import Result
from tests.conftest import serving
from tests.media.make_videos import TIMELINES

# slow: 27 s for the module in a full run
pytestmark = pytest.mark.slow

MEDIA = Path(__file__).resolve().parents[2] / "media"
SAMPLES = Path(__file__).resolve().parents[3] / "demo_project" / "sample_media"
SPEECH_AD = MEDIA / "speech_ad.mp4"
SCENES = ["porn", "qrcode", "ad"]
QR, CONTACT = "pt_qrCode", "pt_toDirectContact_tii"
# The pool the module fixture starts. The speech expectations are pocketsphinx's (with
# keyword spotting); test_asr.py has Whisper's.
BASE = {"thumbnail_size": 160, "workers": 2, "asr_engine": "pocketsphinx",
        "asr_keyword_spotting": True}

needs_ffmpeg = pytest.mark.skipif(not shutil.which("ffmpeg"), reason="ffmpeg is not installed")


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail the test instead of hanging (SIGALRM interrupts waits in the main thread)."""

    def expire(signum, frame):
        raise TimeoutError(f"the test took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-y", "-loglevel", "error", *args], check=True)


def flagged(result: Result, label: str) -> list[float]:
    return [
        f.offset for f in result.frames
        if any(lbl.label == label and lbl.risk_level != "none" for lbl in f.labels)
    ]


def screen(kind: str) -> tuple[float, float]:
    (start, end), = [(a, b) for a, b, k, _ in TIMELINES["speech_ad.mp4"]["screen"] if k == kind]
    return start, end


def risky(frame) -> set[tuple[str, str]]:
    return {(lbl.label, lbl.risk_level) for lbl in frame.labels if lbl.risk_level != "none"}


# --- Module fixtures: each analysis runs once ---------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def workers() -> Iterator[None]:
    """Start the worker processes with their models once; stop them after the module."""
    with deadline(120):
        pool.warm_workers(pool.PROCESSES, BASE["workers"], {"asr_engine": "pocketsphinx"})
    yield
    pool.shutdown_pools()


@pytest.fixture(scope="module")
def speech_ad() -> Result:
    with deadline(120):
        return analyse_video(SPEECH_AD, scenes=SCENES, audio=True, options=BASE)


@pytest.fixture(scope="module")
def speech_ad_no_dedup() -> Result:
    with deadline(120):
        return analyse_video(
            SPEECH_AD, scenes=SCENES, audio=False, options={**BASE, "dedup_threshold": 0}
        )


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """Variants of speech_ad.mp4 made with ffmpeg and byte slicing."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    out = tmp_path_factory.mktemp("made")
    data = SPEECH_AD.read_bytes()
    (out / "truncated.mp4").write_bytes(data[: len(data) * 40 // 100])
    ffmpeg("-i", str(SPEECH_AD), "-c", "copy", "-movflags", "-faststart", str(out / "tail.mp4"))
    tail = (out / "tail.mp4").read_bytes()
    (out / "no_moov.mp4").write_bytes(tail[: len(tail) * 40 // 100])
    (out / "empty.mp4").write_bytes(b"")
    (out / "text.mp4").write_text("this is not a video\n" * 20)
    ffmpeg("-i", str(SPEECH_AD), "-vn", "-c:a", "copy", str(out / "audio.m4a"))
    ffmpeg("-i", str(SPEECH_AD), "-an", "-c:v", "copy", str(out / "silent.mp4"))
    return out


# --- probe --------------------------------------------------------------------------------


def test_probe_reads_streams_and_keyframe_gap():
    info = probe(str(SPEECH_AD))
    assert info.duration == TIMELINES["speech_ad.mp4"]["duration"]
    assert (info.has_video, info.has_audio) == (True, True)
    assert (info.width, info.height, info.fps) == (1280, 720, 30.0)
    assert 1.0 < info.max_keyframe_gap <= 2.0  # GOP 2 s
    assert "mp4" in info.format_name and info.video_codec == "h264"
    json.dumps(info.to_dict())


def test_probe_accepts_a_file_object():
    with open(SPEECH_AD, "rb") as fh:
        assert probe(fh).duration == 24.0


# --- speech_ad.mp4 at 1 frame/s -----------------------------------------------------------


def test_one_frame_per_second(speech_ad):
    assert [f.offset for f in speech_ad.frames] == [float(s) for s in range(24)]


def test_qr_code_frames_match_the_timeline(speech_ad):
    start, end = screen("qr")
    found = flagged(speech_ad, QR)
    assert all(start - 1 <= t <= end + 1 for t in found), found
    assert {5.0, 6.0, 7.0, 8.0} <= set(found)


def test_caption_frames_match_the_timeline(speech_ad):
    start, end = screen("caption")
    found = flagged(speech_ad, CONTACT)
    assert all(start - 1 <= t <= end + 1 for t in found), found
    assert {16.0, 17.0, 18.0} <= set(found)


def test_no_other_frame_is_flagged(speech_ad):
    expected = set(flagged(speech_ad, QR)) | set(flagged(speech_ad, CONTACT))
    assert {f.offset for f in speech_ad.frames if f.risk_level != "none"} == expected
    assert all(risky(f) <= {(QR, "medium"), (CONTACT, "medium")} for f in speech_ad.frames)


def test_thumbnails_only_on_flagged_frames(speech_ad):
    for frame in speech_ad.frames:
        if frame.risk_level == "none":
            assert frame.image is None
        else:
            assert frame.image[:3] == b"\xff\xd8\xff"  # JPEG


def test_summaries_and_job_level_fields(speech_ad):
    assert speech_ad.frame_summary == {
        QR: len(flagged(speech_ad, QR)), CONTACT: len(flagged(speech_ad, CONTACT))
    }
    names = {lbl.label for lbl in speech_ad.labels}
    assert {QR, CONTACT} <= names and "nonLabel" not in names
    parts = [*speech_ad.frames, *speech_ad.slices]
    order = ["none", "low", "medium", "high"]
    assert speech_ad.risk_level == max((p.risk_level for p in parts), key=order.index)
    assert speech_ad.risk_level == "medium"
    assert speech_ad.status == "done"


def test_speech_slices_match_the_timeline(speech_ad):
    summary = {}
    for part in speech_ad.slices:
        for lbl in part.labels:
            if lbl.risk_level != "none":
                summary[lbl.label] = summary.get(lbl.label, 0) + 1
    assert speech_ad.audio_summary == summary
    profanity = [s for s in speech_ad.slices if "profanity" in {lbl.label for lbl in s.labels}]
    ad = [s for s in speech_ad.slices if "ad" in {lbl.label for lbl in s.labels}]
    assert any(abs(s.start - 14.0) <= 1 for s in profanity)
    assert any(abs(s.start - 7.0) <= 1 for s in ad)
    assert all(s.audio[:4] == b"RIFF" for s in profanity + ad)


def test_raw_is_json_and_records_the_work(speech_ad):
    raw = json.loads(json.dumps(speech_ad.to_dict()))["raw"]
    assert raw["decode"]["strategy"] == "sequential"  # GOP 2 s > interval 1 s
    assert raw["parallelism"] == "processes"
    assert raw["frames_sampled"] == 24
    assert raw["frames_analysed"] + raw["frames_reused"] == 24
    assert {"decode", "hash", "nudenet", "qr", "ocr", "pdq", "speech"} <= set(raw["stages"])
    assert raw["probe"]["duration"] == 24.0


def test_dedup_reuses_frames_without_losing_labels(speech_ad, speech_ad_no_dedup):
    assert speech_ad.raw["frames_reused"] > 0
    assert speech_ad_no_dedup.raw["frames_reused"] == 0
    reused = [r["offset"] for r in speech_ad.raw["frames"] if not r["analysed"]]
    by_offset = {f.offset: f for f in speech_ad_no_dedup.frames}
    for frame in speech_ad.frames:
        assert risky(frame) == risky(by_offset[frame.offset]), frame.offset
    assert all(r["reused"] < r["offset"] for r in speech_ad.raw["frames"] if not r["analysed"])
    assert reused


def test_ocr_gate_skipped_text_free_frames_only(speech_ad):
    skipped = {r["offset"] for r in speech_ad.raw["frames"] if r.get("ocr_gated")}
    assert skipped and not skipped & set(flagged(speech_ad, CONTACT))


def decoded_frames(path: Path) -> dict[float, object]:
    import av

    out = {}
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            second = round(frame.time, 3)
            if second == int(second):
                out[second] = frame.to_ndarray(format="bgr24")
    return out


def test_text_gate_and_fingerprint_on_real_frames():
    frames = decoded_frames(SPEECH_AD)
    assert may_have_text(frames[17.0]) and not may_have_text(frames[13.0])
    assert distance(fingerprint(frames[6.0]), fingerprint(frames[7.0])) < DEDUP_THRESHOLD
    assert distance(fingerprint(frames[4.0]), fingerprint(frames[5.0])) >= DEDUP_THRESHOLD


def test_speech_is_cut_in_pauses_into_pieces():
    from moderation.providers.local.speech import RATE, decode_audio, segment

    track = decode_audio(str(SPEECH_AD))
    long = np.concatenate([track] * 3)  # 72 s
    pieces = speech_pieces(long, piece=30.0)
    assert len(pieces) == 2 and pieces[0][0] == 0.0
    assert sum(len(p) for _, p in pieces) == len(long)
    cut = pieces[1][0]
    assert not any(s.start < cut < s.end for s in segment(long))  # not inside an utterance
    ((start, whole),) = speech_pieces(track, piece=30.0)  # 24 s: one piece
    assert start == 0.0 and whole is track and len(track) / RATE == 24.0


def test_label_overrides_apply_to_worker_results():
    labels = {"pt_qrCode": {"risk_level": "high"}}
    with override_settings(MODERATION={**settings.MODERATION, "LABELS": labels}), deadline(60):
        result = analyse_video(
            SPEECH_AD, scenes=["qrcode"], audio=False,
            options={**BASE, "interval": 4, "max_frames": 6},
        )
    with_qr = [f for f in result.frames if any(lbl.label == QR for lbl in f.labels)]
    assert with_qr and all(f.risk_level == "high" for f in with_qr)
    assert result.risk_level == "high"


def test_interval_and_max_frames():
    with deadline(60):
        result = analyse_video(
            SPEECH_AD, scenes=["qrcode"], audio=False,
            options={**BASE, "interval": 4, "max_frames": 6},
        )
    assert [f.offset for f in result.frames] == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
    assert result.raw["decode"]["strategy"] == "seek"  # GOP 2 s <= interval 4 s
    assert result.raw["sample_step"] == 4.0
    assert flagged(result, QR) == [8.0]  # the QR code is on screen from 5 s to 9 s


def test_max_frames_spreads_the_samples_over_the_whole_video():
    """5 frames at 2 s would stop at 8 s of the 24 s clip and leave the rest unseen: the
    samples are spread over the whole file instead."""
    with deadline(60):
        result = analyse_video(
            SPEECH_AD, scenes=["qrcode"], audio=False,
            options={**BASE, "interval": 2, "max_frames": 5},
        )
    assert [f.offset for f in result.frames] == [0.0, 4.8, 9.6, 14.4, 19.2]
    assert result.raw["sample_step"] == 4.8 and result.raw["interval"] == 2


@pytest.mark.parametrize(
    "options",
    [{"interval": 0}, {"interval": 601}, {"max_frames": 4}, {"max_frames": 3601},
     {"interval": "soon"}, {"dedup_threshold": -1}, {"parallelism": "gpu"}],
)
def test_invalid_options_raise_value_error(options):
    with pytest.raises(ValueError):
        analyse_video(SPEECH_AD, scenes=SCENES, audio=False, options=options)


def test_clean_video_passes():
    with deadline(120):
        result = analyse_video(MEDIA / "clean.mp4", scenes=SCENES, audio=True, options=BASE)
    assert result.risk_level == "none"
    assert len(result.frames) == 12
    assert all(f.risk_level == "none" and f.image is None for f in result.frames)
    assert result.slices and all(s.risk_level == "none" for s in result.slices)
    assert result.frame_summary == {} and result.audio_summary == {}


def test_threads_give_the_same_labels_as_processes(speech_ad):
    with deadline(120):
        result = analyse_video(
            SPEECH_AD, scenes=SCENES, audio=False,
            options={**BASE, "parallelism": "threads", "interval": 4, "max_frames": 6},
        )
    assert result.raw["parallelism"] == "threads"
    by_offset = {f.offset: f for f in speech_ad.frames}
    assert [f.offset for f in result.frames] == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
    for frame in result.frames:
        assert risky(frame) == risky(by_offset[frame.offset])


def test_daemonic_worker_falls_back_to_threads(monkeypatch):
    class Daemon:
        daemon = True

    monkeypatch.setattr(pool.multiprocessing, "current_process", lambda: Daemon())
    assert pool.choose_mode("auto") == pool.THREADS
    assert pool.choose_mode("processes") == pool.THREADS


def test_a_file_object_is_accepted():
    data = io.BytesIO(SPEECH_AD.read_bytes())
    with deadline(60):
        result = analyse_video(
            data, scenes=["qrcode"], audio=True, options={**BASE, "interval": 5, "max_frames": 5}
        )
    assert [f.offset for f in result.frames] == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert flagged(result, QR) == [5.0] and result.slices


# --- Bad and unusual inputs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codes"),
    [
        ("truncated.mp4", {"corrupt_media"}),
        ("no_moov.mp4", {"corrupt_media"}),
        ("empty.mp4", {"empty_file"}),
        ("text.mp4", {"corrupt_media", "unsupported_format"}),
    ],
)
def test_bad_files_raise_media_errors(made, name, codes):
    with deadline(30), pytest.raises(MediaError) as info:
        analyse_video(made / name, scenes=SCENES, audio=True, options=BASE)
    assert info.value.code in codes
    assert "\n" not in info.value.message


def test_size_limit_is_checked_first(made):
    with pytest.raises(MediaError) as info:
        analyse_video(made / "text.mp4", scenes=SCENES, audio=True, options={"max_video_bytes": 10})
    assert info.value.code == "file_too_large"


def test_audio_only_file_gives_slices_and_no_frames(made):
    with deadline(60):
        result = analyse_video(made / "audio.m4a", scenes=SCENES, audio=True, options=BASE)
    assert result.frames == [] and result.raw["media"] == "audio"
    assert "profanity" in result.audio_summary and result.risk_level != "none"


def test_video_without_audio_gives_frames_and_no_slices(made):
    with deadline(60):
        result = analyse_video(
            made / "silent.mp4", scenes=["qrcode"], audio=True,
            options={**BASE, "interval": 2, "max_frames": 12},
        )
    assert len(result.frames) == 12 and result.slices == []
    assert result.raw["audio"] == "none"


def test_a_playlist_naming_other_files_is_refused(tmp_path):
    playlist = tmp_path / "evil.m3u8"
    playlist.write_text("#EXTM3U\n#EXTINF:2.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    with pytest.raises(MediaError) as info:
        analyse_video(playlist, scenes=SCENES, audio=False, options=BASE)
    assert info.value.code == "unsupported_format"


CONTAINERS = {  # output name: ffmpeg codec arguments (a 3 s clip from 4 s, QR from 5 s)
    "clip.avi": ["-c:v", "mpeg4", "-q:v", "5", "-c:a", "mp3"],
    "clip.flv": ["-c:v", "flv", "-q:v", "5", "-c:a", "mp3", "-ar", "44100"],
    "clip.mpg": ["-c:v", "mpeg2video", "-q:v", "5", "-c:a", "mp2"],
    "clip.wmv": ["-c:v", "wmv2", "-q:v", "5", "-c:a", "wmav2"],
    "clip.mov": ["-c:v", "libx264", "-c:a", "aac"],
    "clip.ts": ["-c:v", "libx264", "-c:a", "aac"],
    "clip.rm": ["-c:v", "rv10", "-q:v", "5", "-s", "640x352", "-an"],
    "clip.mkv": ["-c:v", "libx264", "-c:a", "aac"],
    "sound.wma": ["-vn", "-c:a", "wmav2"],
    "sound.mp3": ["-vn", "-c:a", "libmp3lame"],
    "sound.wav": ["-vn", "-c:a", "pcm_s16le"],
}


@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_other_containers(tmp_path, name):
    path = tmp_path / name
    ffmpeg("-ss", "4", "-t", "3", "-i", str(SPEECH_AD), *CONTAINERS[name], str(path))
    with deadline(60):
        result = analyse_video(path, scenes=["qrcode"], audio=False, options=BASE)
    if name.startswith("sound"):
        assert result.frames == [] and result.raw["media"] == "audio"
    else:
        assert len(result.frames) >= 3
        # the QR code shows from 5 s in the source, 1 s in the clip (give or take a frame:
        # ffmpeg drops one to keep AVI at a constant rate)
        assert 2.0 in flagged(result, QR) and min(flagged(result, QR)) >= 1.0


# --- Frame sequences ----------------------------------------------------------------------


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def test_frames_get_labels_at_their_offsets():
    frames = [
        (0.0, sample("benign.jpg")), (2.5, sample("ad_text.png")), (1.0, sample("qrcode.jpg"))
    ]
    with deadline(60):
        result = analyse_frames(frames, scenes=SCENES, options=BASE)
    labels = {f.offset: {lbl.label for lbl in f.labels} for f in result.frames}
    assert labels == {0.0: {"nonLabel"}, 1.0: {QR}, 2.5: {CONTACT}}
    assert result.frame_summary == {QR: 1, CONTACT: 1}
    assert result.raw["media"] == "frames" and result.slices == []


def test_a_corrupt_frame_names_its_offset():
    frames = [(0.0, sample("benign.jpg")), (3.5, sample("benign.jpg")[:5000])]
    with pytest.raises(MediaError) as info:
        analyse_frames(frames, scenes=SCENES, options=BASE)
    assert "3.5" in info.value.message


# --- Live streams -------------------------------------------------------------------------


class Served:
    """The paths an HTTP server has served, in order."""

    paths: list[str] = []


@pytest.fixture
def loopback_allowed() -> dict[str, bool]:
    """These streams are served on 127.0.0.1: the network guard (test_network_guard.py)
    would refuse them. The keyword the provider passes from ALLOW_PRIVATE_ADDRESSES."""
    return {"allow_private_addresses": True}


@pytest.fixture(scope="module")
def hls_url(tmp_path_factory) -> Iterator[str]:
    """speech_ad.mp4 as an HLS VOD playlist (2 s segments) served over HTTP on the loopback."""
    if not shutil.which("ffmpeg"):
        pytest.fail("ffmpeg is not installed: apt-get install ffmpeg (.ci/setup does)")
    root = tmp_path_factory.mktemp("hls")
    ffmpeg("-i", str(SPEECH_AD), "-c", "copy", "-f", "hls", "-hls_time", "2",
           "-hls_playlist_type", "vod", str(root / "index.m3u8"))

    with serving(root, on_request=Served.paths.append) as url:
        yield f"{url}/index.m3u8"


def test_live_stream_yields_partials_then_done(hls_url, loopback_allowed):
    with deadline(120):
        results = list(stream_live(
            hls_url, scenes=SCENES, audio=True, options={**BASE, "chunk_seconds": 6},
            **loopback_allowed,
        ))
    assert len(results) >= 3
    assert [r.status for r in results] == ["in_progress"] * (len(results) - 1) + ["done"]
    offsets = [f.offset for r in results for f in r.frames]
    assert offsets == sorted(offsets) and offsets[0] == 0.0 and offsets[-1] >= 20.0
    for r in results:
        assert all(r.raw["start"] <= f.offset < r.raw["end"] for f in r.frames)
    qr = [t for r in results for t in flagged(r, QR)]
    assert {5.0, 6.0, 7.0, 8.0} <= set(qr) and all(4.0 <= t <= 10.0 for t in qr)
    first_qr = next(r for r in results if flagged(r, QR))
    assert first_qr.risk_level == "medium" and first_qr.frame_summary[QR] >= 1
    assert any("profanity" in r.audio_summary for r in results)
    assert results[-1].raw["end_reason"] == "end_of_stream"


def test_live_stream_stops_cleanly_when_the_caller_breaks(hls_url, loopback_allowed):
    before, start = threading.active_count(), len(Served.paths)
    with deadline(60):
        stream = stream_live(hls_url, scenes=["qrcode"], audio=True,
                             options={**BASE, "chunk_seconds": 4}, **loopback_allowed)
        first = next(stream)
        stream.close()
    served = len(Served.paths)
    time.sleep(1.0)
    assert first.status == "in_progress"
    assert len(Served.paths) == served  # the stream is closed: no more segments fetched
    assert served - start < 1 + 12  # the playlist and not all of its 12 segments
    assert threading.active_count() <= before + 1  # no reader or pool threads left behind


def test_live_max_duration_ends_the_stream(hls_url, loopback_allowed):
    with deadline(60):
        results = list(stream_live(hls_url, scenes=["qrcode"], audio=False,
                                   options={**BASE, "chunk_seconds": 4, "max_duration": 6},
                                   **loopback_allowed))
    assert results[-1].status == "done" and results[-1].raw["end_reason"] == "max_duration"
    assert max(f.offset for r in results for f in r.frames) < 6


def test_a_stream_that_never_answers_times_out(silent_server, loopback_allowed):
    options = {"open_timeout": 2, "read_timeout": 2}
    start = time.monotonic()
    with deadline(20), pytest.raises(MediaError) as info:
        next(stream_live(f"http://127.0.0.1:{silent_server}/live.m3u8", scenes=SCENES,
                         audio=True, options=options, **loopback_allowed))
    assert info.value.code == "stream_timeout"
    assert time.monotonic() - start < 3 * 2


def test_a_closed_port_is_unavailable(loopback_allowed):
    probe_socket = socket.socket()
    probe_socket.bind(("127.0.0.1", 0))
    port = probe_socket.getsockname()[1]
    probe_socket.close()  # nothing listens there now
    with deadline(20), pytest.raises(MediaError) as info:
        next(stream_live(f"rtmp://127.0.0.1:{port}/live/x", scenes=SCENES, audio=True,
                         options={"open_timeout": 2, "read_timeout": 2}, **loopback_allowed))
    assert info.value.code == "stream_unavailable"


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "concat:/etc/passwd|/etc/hosts", "subfile:,,start,0,end,0,:/etc/passwd",
     "/etc/passwd", "ftp://example.com/x.flv", "http:///nohost"],
)
def test_only_network_urls_are_accepted(url):
    with pytest.raises(MediaError) as info:
        stream_live(url, scenes=SCENES, audio=True)
    assert info.value.code == "unsupported_url"
