"""Video files, frame sequences and live streams on the offline engine.

Alibaba's video moderation, done here: one frame every ``interval`` seconds (at most
``max_frames``) through the image engine, the soundtrack through the speech path, and one
``Result`` with a ``Frame`` per sample and a ``Slice`` per utterance.

How the work is spread over the cores: the calling thread probes, decodes (PyAV releases
the GIL; frame threads) and fingerprints each sample; frame analyses and the speech run
in worker processes (pool.py), the speech first, cut in pauses into ~30 s pieces so
that it does not alone set the wall time. Frames close to the last analysed one reuse its
detections (jobs.py); OCR is skipped where a cheap test finds no text (textgate.py).
Measured (bench/video_engine.py, 60 s 720p video with speech, 2 cores): 4.7 s wall and
9.1 s CPU, 12.7x faster than real time; without dedup and OCR gate 9.9 s / 19.3 s; in
threads instead of processes 1.8x the wall time. Recall of the known events was the same
in every configuration.

Public API (the provider calls these): :func:`probe`, :func:`analyse_video`,
:func:`analyse_frames`, :func:`stream_live`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from ..errors import MediaError
from ..result import Frame, Result, Slice
from .container import Source, VideoInfo, check_size, probe
from .jobs import (
    FrameDispatcher,
    FrameTask,
    StageTimes,
    VideoOptions,
    build_result,
    engine_options,
    rescore_slice,
    timed_iter,
)
from .live import stream_live
from .pool import analyse_audio, choose_mode, crash_guard, executor_for
from .sampling import DecodeStats, sample_frames, sample_offsets

__all__ = ["VideoInfo", "analyse_frames", "analyse_video", "probe", "stream_live"]

MAX_FRAME_IMAGE_BYTES = 10 * 1024 * 1024  # Alibaba's limit for one frame of a frame scan
MAX_FRAME_IMAGE_PIXELS = 40_000_000
SPEECH_PIECE = 30.0  # seconds of audio per speech task (see speech_pieces)


def analyse_video(
    source: Source,
    *,
    scenes: list[str],
    audio: bool,
    libraries: Any = None,
    keywords: dict[str, list[str]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Result:
    """Moderate a video (or audio-only) file: frames at ``interval``, and the speech.

    ``MediaError`` codes: ``empty_file``, ``file_too_large`` (``max_video_bytes``, checked
    before decoding), ``corrupt_media``, ``unsupported_format``, ``no_streams``.
    ``ValueError`` for invalid options.
    """
    opts = VideoOptions.from_options(options)
    clock = _Clock()
    times = StageTimes()
    check_size(source, opts.max_video_bytes)
    with times.measure("probe"):
        info = probe(source)
    pcm = None
    if audio and info.has_audio:
        from .speech import decode_audio

        with times.measure("audio_decode"):
            pcm = decode_audio(source)
    task = FrameTask(list(scenes), libraries, keywords, engine_options(options), opts.ocr_gate)
    offsets = sample_offsets(info.duration, opts.interval, opts.max_frames)
    mode = choose_mode(opts.parallelism)
    stats = DecodeStats()
    frames, slices, records = _run(
        mode, opts, task, times, pcm, keywords, options,
        (lambda: sample_frames(source, info, offsets, stats)) if info.has_video else None,
    )
    raw = {
        "provider": "local",
        "media": "video" if info.has_video else "audio",
        "probe": info.to_dict(),
        "decode": stats.to_dict() if info.has_video else None,
        "audio": "moderated" if pcm is not None else ("off" if info.has_audio else "none"),
        **_job_raw(mode, opts, records, times, clock),
    }
    return build_result(frames, slices, raw)


def analyse_frames(
    frames: list[tuple[float, bytes]],
    *,
    scenes: list[str],
    libraries: Any = None,
    keywords: dict[str, list[str]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Result:
    """Alibaba's video sync scan: images at offsets, moderated as one job (no audio).

    A frame that is not a valid image raises ``MediaError`` naming its offset.
    """
    opts = VideoOptions.from_options(options)
    clock = _Clock()
    times = StageTimes()
    task = FrameTask(list(scenes), libraries, keywords, engine_options(options), opts.ocr_gate)
    mode = choose_mode(opts.parallelism)
    ordered = sorted(frames, key=lambda item: item[0])
    result_frames, _, records = _run(
        mode, opts, task, times, None, keywords, options, lambda: _decode_frames(ordered)
    )
    raw = {"provider": "local", "media": "frames", **_job_raw(mode, opts, records, times, clock)}
    return build_result(result_frames, [], raw)


def _decode_frames(frames: list[tuple[float, bytes]]) -> Iterator[tuple[float, Any]]:
    """Each image decoded when its turn comes (one full frame in memory at a time)."""
    from .decode import decode_image

    for offset, data in frames:
        try:
            bgr = decode_image(
                data, max_bytes=MAX_FRAME_IMAGE_BYTES, max_pixels=MAX_FRAME_IMAGE_PIXELS
            )
        except MediaError as exc:
            raise MediaError(f"the frame at {offset:g} s: {exc.message}", code=exc.code) from exc
        yield float(offset), bgr


# --- One job ------------------------------------------------------------------------------


class _Clock:
    """Wall and process CPU time since the job started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def to_dict(self) -> dict[str, float]:
        return {
            "wall_s": round(time.perf_counter() - self.wall, 3),
            "process_cpu_s": round(time.process_time() - self.cpu, 3),
        }


def _run(
    mode: str,
    opts: VideoOptions,
    task: FrameTask,
    times: StageTimes,
    pcm: Any,
    keywords: dict[str, list[str]] | None,
    options: Mapping[str, Any] | None,
    frames: Any,
) -> tuple[list[Frame], list[Slice], list[dict[str, Any]]]:
    """Speech first, then every sampled frame; both on the executor. Cleans up on errors."""
    with crash_guard(opts.workers), executor_for(mode, opts.workers) as executor:
        speech = [
            executor.submit(analyse_audio, piece, keywords, dict(options or {}), start)
            for start, piece in speech_pieces(pcm)
        ]
        dispatcher = FrameDispatcher(executor, task, opts, times, window=4 * opts.workers)
        try:
            out: list[Frame] = []
            if frames is not None:
                for offset, bgr in timed_iter(frames(), times, "decode"):
                    out += dispatcher.add(offset, bgr)
                out += dispatcher.flush()
            slices = _speech_slices(speech, times)
        except BaseException:
            dispatcher.cancel()
            for future in speech:
                future.cancel()
            raise
        return out, slices, dispatcher.records


def speech_pieces(pcm: Any, piece: float = SPEECH_PIECE) -> list[tuple[float, Any]]:
    """The track cut in pauses between utterances into pieces of about ``piece`` seconds.

    The speech task is the longest single task (RTF ~0.1); pieces let both workers share
    it. Cuts fall mid-pause, so no utterance or keyword is split.
    """
    if pcm is None or not pcm.size:
        return []
    from .speech import RATE, segment

    total = len(pcm) / RATE
    if total <= 1.5 * piece:
        return [(0.0, pcm)]
    spans = segment(pcm)
    cuts, target = [], piece
    for left, right in itertools.pairwise(spans):
        middle = (left.end + right.start) / 2
        if middle >= target and total - middle >= piece / 2:
            cuts.append(middle)
            target = middle + piece
    bounds = [0.0, *cuts, total]
    return [
        (start, pcm[round(start * RATE) : round(end * RATE)])
        for start, end in itertools.pairwise(bounds)
    ]


def _speech_slices(speech: list[Future], times: StageTimes) -> list[Slice]:
    slices: list[Slice] = []
    for future in speech:
        with times.measure("speech_wait"):
            outcome = future.result()
        times.add("speech", outcome.wall, outcome.cpu)
        slices += [rescore_slice(part) for part in outcome.slices]
    return sorted(slices, key=lambda part: part.start)


def _job_raw(
    mode: str,
    opts: VideoOptions,
    records: list[dict[str, Any]],
    times: StageTimes,
    clock: _Clock,
) -> dict[str, Any]:
    analysed = sum(1 for r in records if r["analysed"])
    return {
        "parallelism": mode,
        "workers": opts.workers,
        "interval": opts.interval,
        "max_frames": opts.max_frames,
        "dedup_threshold": opts.dedup_threshold,
        "ocr_gate": opts.ocr_gate,
        "frames_sampled": len(records),
        "frames_analysed": analysed,
        "frames_reused": len(records) - analysed,
        "ocr_gated": sum(1 for r in records if r.get("ocr_gated")),
        "stages": times.to_dict(),
        "timings": clock.to_dict(),
        "frames": records,
    }
