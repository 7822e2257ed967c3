"""Video files, frame sequences and live streams on the offline engine.

Alibaba's video moderation, done here: one frame every ``interval`` seconds (at most
``max_frames``, spread over the whole file when it is longer) through the image engine,
the soundtrack through the speech path, and one ``Result`` with a ``Frame`` per sample
and a ``Slice`` per utterance.

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

import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import replace
from typing import Any

from ..base import ProgressReporter
from ..errors import MediaError
from ..result import Frame, Result, Slice
from .container import Source, VideoInfo, check_size, probe
from .decode import decode_image
from .duration import check_declared
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
from .sampling import (
    DecodeStats,
    check_frame_size,
    sample_frames,
    sample_offsets,
    sample_step,
)
from .speech import CHUNK_SECONDS, RATE, iter_pcm
from .speech_stream import SPEECH_PIECE, PieceStats, speech_pieces_of

__all__ = ["VideoInfo", "analyse_frames", "analyse_video", "probe", "stream_live"]

MAX_FRAME_IMAGE_BYTES = 10 * 1024 * 1024  # Alibaba's limit for one frame of a frame scan
MAX_FRAME_IMAGE_PIXELS = 40_000_000
# Evidence clips of flagged utterances kept per job (a 15 s clip is 480 KB); past this, the
# slices keep their transcript and labels without a clip.
MAX_CLIP_BYTES = 32 * 1024 * 1024


def analyse_video(
    source: Source,
    *,
    scenes: list[str],
    audio: bool,
    libraries: Any = None,
    keywords: dict[str, list[str]] | None = None,
    options: Mapping[str, Any] | None = None,
    progress: ProgressReporter | None = None,
) -> Result:
    """Moderate a video (or audio-only) file: frames at ``interval``, and the speech.

    ``progress`` hears how far the job has got in seconds of the file (see ``_Progress``).

    ``MediaError`` codes: ``empty_file``, ``file_too_large`` (``max_video_bytes``, checked
    before decoding), ``too_long`` (``max_file_duration``: declared, demuxed or decoded),
    ``image_too_large`` (frames past ``max_image_pixels``, from the probe),
    ``corrupt_media``, ``unsupported_format``, ``no_streams``. ``ValueError`` for invalid
    options.
    """
    opts = VideoOptions.from_options(options)
    clock = _Clock()
    times = StageTimes()
    check_size(source, opts.max_video_bytes)
    with times.measure("probe"):
        info = probe(source, max_duration=opts.max_file_duration)
    check_declared(info.duration, opts.max_file_duration)
    check_frame_size(info, opts.max_image_pixels)
    audio_stats = PieceStats()
    pieces = None
    if audio and info.has_audio:
        chunks = iter_pcm(source, max_duration=opts.max_file_duration)
        pieces = speech_pieces_of(chunks, SPEECH_PIECE, audio_stats)
    task = FrameTask(list(scenes), libraries, keywords, engine_options(options), opts.ocr_gate)
    offsets = sample_offsets(info.duration, opts.interval, opts.max_frames)
    mode = choose_mode(opts.parallelism)
    stats = DecodeStats()
    tracker = _Progress(progress, info.duration, "s", frames=info.has_video,
                        speech=pieces is not None)
    frames, slices, records = _run(
        mode, opts, task, times, pieces, keywords, options,
        (lambda: sample_frames(source, info, offsets, stats)) if info.has_video else None,
        audio_stats, tracker,
    )
    raw = {
        "provider": "local",
        "media": "video" if info.has_video else "audio",
        "probe": info.to_dict(),
        "decode": stats.to_dict() if info.has_video else None,
        "audio": "moderated" if pieces is not None else ("off" if info.has_audio else "none"),
        "audio_stream": audio_stats.to_dict() if pieces is not None else None,
        # wider than ``interval`` when max_frames samples at ``interval`` would stop early
        "sample_step": round(sample_step(info.duration, opts.interval, opts.max_frames), 3),
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
    progress: ProgressReporter | None = None,
) -> Result:
    """Alibaba's video sync scan: images at offsets, moderated as one job (no audio).

    A frame that is not a valid image raises ``MediaError`` naming its offset. ``progress``
    hears how many frames are finished.
    """
    opts = VideoOptions.from_options(options)
    clock = _Clock()
    times = StageTimes()
    task = FrameTask(list(scenes), libraries, keywords, engine_options(options), opts.ocr_gate)
    mode = choose_mode(opts.parallelism)
    ordered = sorted(frames, key=lambda item: item[0])
    tracker = _Progress(progress, len(ordered), "frames", frames=True, speech=False)
    result_frames, _, records = _run(
        mode, opts, task, times, None, keywords, options, lambda: _decode_frames(ordered),
        tracker=tracker,
    )
    raw = {"provider": "local", "media": "frames", **_job_raw(mode, opts, records, times, clock)}
    return build_result(result_frames, [], raw)


def _decode_frames(frames: list[tuple[float, bytes]]) -> Iterator[tuple[float, Any]]:
    """Each image decoded when its turn comes (one full frame in memory at a time)."""
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
    pieces: Iterator[tuple[float, Any]] | None,
    keywords: dict[str, list[str]] | None,
    options: Mapping[str, Any] | None,
    frames: Any,
    audio_stats: PieceStats | None = None,
    tracker: _Progress | None = None,
) -> tuple[list[Frame], list[Slice], list[dict[str, Any]]]:
    """Speech first (streamed, a few pieces in flight), then every sampled frame; both on
    the executor. Cleans up on errors; tells ``tracker`` how far each track has got."""
    tracker = tracker or _Progress(None, 0.0, "s", frames=False, speech=False)
    with crash_guard(opts.workers), executor_for(mode, opts.workers) as executor:
        speech = _SpeechTasks(executor, keywords, options, times, window=2 * opts.workers)
        speech.stats = audio_stats or PieceStats()
        dispatcher = FrameDispatcher(executor, task, opts, times, window=4 * opts.workers)
        try:
            for start, pcm in timed_iter(pieces or iter(()), times, "audio_decode"):
                speech.submit(start, pcm)
                tracker.update("speech", speech.position())
            out: list[Frame] = []
            if frames is not None:
                for offset, bgr in timed_iter(frames(), times, "decode"):
                    finished = dispatcher.add(offset, bgr)
                    out += finished
                    if finished:
                        tracker.update("frames", tracker.frame_position(out))
                    tracker.update("speech", speech.position())
                out += dispatcher.flush()
                tracker.finish("frames")
            slices = speech.finish()
            tracker.finish("speech")
        except BaseException:
            dispatcher.cancel()
            speech.cancel()
            raise
        return out, slices, dispatcher.records


def speech_pieces(pcm: Any, piece: float = SPEECH_PIECE) -> list[tuple[float, Any]]:
    """A whole track cut in pauses between utterances into pieces of about ``piece`` s.

    The same cuts as the streamed track of a job (speech_stream.py), for a track already
    in memory; a short one (up to 1.5 pieces) is returned whole.
    """
    if pcm is None or not pcm.size:
        return []

    if len(pcm) / RATE <= 1.5 * piece:
        return [(0.0, pcm)]
    step = round(CHUNK_SECONDS * RATE)
    chunks = (pcm[at : at + step] for at in range(0, len(pcm), step))
    return list(speech_pieces_of(chunks, piece))


class _SpeechTasks:
    """Speech pieces on the executor, at most ``window`` in flight: a long track never
    queues all of its audio at once. Slices are collected as pieces finish; evidence clips
    stop at ``MAX_CLIP_BYTES`` per job."""

    def __init__(
        self,
        executor: Executor,
        keywords: dict[str, list[str]] | None,
        options: Mapping[str, Any] | None,
        times: StageTimes,
        window: int,
    ) -> None:
        self.executor = executor
        self.keywords = keywords
        self.options = dict(options or {})
        self.times = times
        self.window = max(1, window)
        self.pending: deque[tuple[Future, float]] = deque()  # (future, where its piece ends)
        self.done_until = 0.0  # the speech is analysed up to here (pieces collected)
        self.slices: list[Slice] = []
        self.clip_bytes = 0
        self.stats = PieceStats()

    def submit(self, start: float, pcm: Any) -> None:
        while len(self.pending) >= self.window:
            self._collect(*self.pending.popleft())
        self.pending.append((
            self.executor.submit(analyse_audio, pcm, self.keywords, self.options, start),
            start + len(pcm) / RATE,
        ))

    def position(self) -> float:
        """Where the speech is analysed up to: the end of the last piece finished, in
        order (asks the futures, never waits)."""
        at = self.done_until
        for future, end in self.pending:
            if not future.done():
                break
            at = end
        return at

    def finish(self) -> list[Slice]:
        while self.pending:
            self._collect(*self.pending.popleft())
        return sorted(self.slices, key=lambda part: part.start)

    def cancel(self) -> None:
        for future, _ in self.pending:
            future.cancel()

    def _collect(self, future: Future, end: float) -> None:
        with self.times.measure("speech_wait"):
            outcome = future.result()
        self.done_until = max(self.done_until, end)
        self.times.add("speech", outcome.wall, outcome.cpu)
        for part in outcome.slices:
            self.slices.append(self._bounded(rescore_slice(part)))

    def _bounded(self, part: Slice) -> Slice:
        if not isinstance(part.audio, bytes | bytearray):
            return part
        if self.clip_bytes + len(part.audio) > MAX_CLIP_BYTES:
            self.stats.clips_dropped += 1
            return replace(part, audio=None)
        self.clip_bytes += len(part.audio)
        return part


class _Progress:
    """How far a job has got, for the request's progress reporter (called only when a
    position moves; the listener throttles its writes).

    Each track the job has - the frames, the speech - has a position in the job's unit
    (seconds of the file; finished frames of a frame sequence); ``done`` is their mean, so
    that ``total`` stays the file's duration while both tracks run side by side.
    """

    def __init__(self, report: ProgressReporter | None, total: float, unit: str, *,
                 frames: bool, speech: bool) -> None:
        self.report = report
        self.total = max(float(total or 0.0), 0.0)  # 0: unknown duration
        self.unit = unit
        self.at = {track: 0.0 for track, present in (("frames", frames), ("speech", speech))
                   if present}
        self._emit()

    def frame_position(self, finished: list[Frame]) -> float:
        """The frames' position: seconds up to the last finished sample, or their count."""
        return float(len(finished)) if self.unit == "frames" else finished[-1].offset

    def update(self, track: str, position: float) -> None:
        if track in self.at and position > self.at[track]:
            self.at[track] = min(position, self.total) if self.total else position
            self._emit()

    def finish(self, track: str) -> None:
        """The track is done: at the end (when the total is known)."""
        if self.total:
            self.update(track, self.total)

    def _emit(self) -> None:
        if self.report is None or not self.at:
            return
        done = sum(self.at.values()) / len(self.at)
        self.report(round(done, 3), self.total, self.unit)


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
