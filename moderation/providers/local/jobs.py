"""One moderation job over many frames and a soundtrack: options, dedup dispatch, the result.

Near-duplicates. A frame whose fingerprint is close to the last *analysed* frame reuses
that frame's detections. The fingerprint is the frame in grey at 64x36 (20x20-pixel cells
on 720p) and the distance the largest change of any cell, 0..255. A global 64-bit hash
was measured first and dropped: an 82 px QR code or a line of small text pasted on a frame
moved dHash by 1-2 bits and pHash by 4-8, while a heavy re-encode of the same frame moved
them by up to 5 and 2, so no threshold keeps both recall and savings. Cell distances
measured: sensor noise, 1 px jitter and 3 % flicker after H.264 <= 9, a CRF 45 re-encode
<= 13; a line of 10 px text 22-25, 14 px text 31, a QR code 124-127, a scene change 68+.
Hence 16: reuse below it. Comparing with the last *analysed* frame (not the previous
one) stops slow drift from chaining reuse across a real change.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...conf import DEFAULTS
from ...labels import risk_of
from ..result import Frame, Label, Result, Slice, worst_risk
from .decode import make_thumbnail
from .engine import EngineConfig, _cv2
from .pool import PARALLELISM, FrameOutcome, analyse_frame, default_workers
from .text_boxes import text_boxes

BgrImage = NDArray[np.uint8]

FINGERPRINT_SIZE = (64, 36)
DEDUP_THRESHOLD = 16  # a cell changing by this much or more means new content
OCR_GATE = True  # recall kept on the test media and hard cases: see textgate.py
RANGES = {"interval": (1, 600), "max_frames": (5, 3600)}


@dataclass(frozen=True)
class VideoOptions:
    """The options of a video, frames or live job, validated (``ValueError`` otherwise)."""

    interval: float = 1.0  # seconds between sampled frames, 1..600 (Alibaba's range)
    max_frames: int = 200  # 5..3600
    thumbnail_size: int = DEFAULTS["THUMBNAIL_SIZE"]
    thumbnail_all_frames: bool = DEFAULTS["THUMBNAIL_ALL_FRAMES"]
    dedup_threshold: int = DEDUP_THRESHOLD  # reuse below this cell distance; 0: never
    ocr_gate: bool = OCR_GATE
    workers: int = field(default_factory=default_workers)
    parallelism: str = "auto"  # "processes" unless daemonic, or "threads"
    max_video_bytes: int = 500 * 1024 * 1024
    max_file_duration: float = 4 * 3600.0  # default: MAX_DURATION (duration.py)
    max_image_pixels: int = 40_000_000  # default: MAX_IMAGE_PIXELS; frames past it: refused
    chunk_seconds: float = 10.0  # live: one partial result per chunk
    max_duration: float = 3600.0  # live: stop after this many seconds of stream
    open_timeout: float = 10.0  # live
    read_timeout: float = 10.0  # live

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> VideoOptions:
        """The options as given; the provider has merged the settings' defaults in already
        (``LocalProvider.settings_for``), a direct caller gets the defaults above."""
        options = dict(options or {})
        values = {}
        for spec in fields(cls):
            if options.get(spec.name) is not None:
                values[spec.name] = _convert(spec.name, options[spec.name], spec.type)
        return cls(**values)

    def __post_init__(self) -> None:
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be in {low}..{high}, got {value}")
        if self.parallelism not in PARALLELISM:
            raise ValueError(f"parallelism must be one of {PARALLELISM}, got {self.parallelism!r}")
        positive = ("thumbnail_size", "workers", "max_video_bytes", "max_file_duration",
                    "max_image_pixels", "chunk_seconds", "max_duration", "open_timeout",
                    "read_timeout")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.dedup_threshold <= 256:
            raise ValueError(f"dedup_threshold must be in 0..256, got {self.dedup_threshold}")


def _convert(name: str, value: Any, kind: Any) -> Any:
    kind = str(kind)
    try:
        if kind == "bool":
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind in ("int", "float"):
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if kind == "int" and number != int(number):
                raise ValueError
            return int(number) if kind == "int" else number
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    return value


def engine_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options the image engine reads (a small dict to send to worker processes)."""
    keys = {spec.name for spec in fields(EngineConfig)}
    return {k: v for k, v in (options or {}).items() if k in keys}


# --- Stage times --------------------------------------------------------------------------


class StageTimes:
    """Wall and CPU seconds per stage, summed over a job (CPU of the measuring thread)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def add(self, stage: str, wall: float, cpu: float | None = None) -> None:
        self.wall[stage] += wall
        if cpu is not None:
            self.cpu[stage] += cpu

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - wall, time.thread_time() - cpu)

    def to_dict(self) -> dict[str, dict[str, float]]:
        out = {}
        for stage in sorted(self.wall):
            out[stage] = {"wall_s": round(self.wall[stage], 3)}
            if stage in self.cpu:
                out[stage]["cpu_s"] = round(self.cpu[stage], 3)
        return out


def timed_iter(items: Iterator[Any], times: StageTimes, stage: str) -> Iterator[Any]:
    """Yield from ``items``, counting the time spent producing them as ``stage``."""
    while True:
        with times.measure(stage):
            item = next(items, StopIteration)
        if item is StopIteration:
            return
        yield item


# --- Near-duplicates ----------------------------------------------------------------------


def fingerprint(bgr: BgrImage) -> NDArray[np.uint8]:
    """The frame in grey at 64x36 (cell means), for :func:`distance`."""
    cv2 = _cv2()
    small = cv2.resize(bgr, FINGERPRINT_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def distance(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> int:
    """The largest change of one cell, 0..255: local changes (a QR code, a caption) count."""
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def shrink(bgr: BgrImage, size: int) -> BgrImage:
    """A copy that fits in ``size`` x ``size``, kept until the frame's risk is known."""
    height, width = bgr.shape[:2]
    scale = min(1.0, size / max(height, width))
    if scale == 1.0:
        return bgr.copy()
    cv2 = _cv2()
    dims = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, dims, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class FrameTask:
    """What every frame of a job is analysed for."""

    scenes: list[str]
    libraries: Any
    keywords: dict[str, list[str]] | None
    engine_options: dict[str, Any]
    ocr_gate: bool


@dataclass
class _Pending:
    offset: float
    small: BgrImage
    future: Future[FrameOutcome]
    analysed: bool
    source: float  # offset of the analysed frame whose detections this one uses
    distance: int | None


class FrameDispatcher:
    """Sends frames to the executor, reusing the detections of near-duplicates.

    ``add`` returns the frames whose analysis is finished, in offset order, once more
    than ``window`` frames wait (that bounds the memory and the decoding ahead).
    """

    def __init__(
        self,
        executor: Executor,
        task: FrameTask,
        options: VideoOptions,
        times: StageTimes,
        window: int,
    ):
        self.executor, self.task, self.options, self.times = executor, task, options, times
        self.window = window
        self.records: list[dict[str, Any]] = []
        self._pending: deque[_Pending] = deque()
        # the last analysed frame: fingerprint, its analysis, its offset
        self._last: tuple[NDArray[np.uint8], Future[FrameOutcome], float] | None = None

    def add(self, offset: float, bgr: BgrImage) -> list[Frame]:
        with self.times.measure("hash"):
            mark = fingerprint(bgr)
            near = None if self._last is None else distance(mark, self._last[0])
        with self.times.measure("thumbnail"):
            small = shrink(bgr, self.options.thumbnail_size)
        if self._last is not None and near is not None and near < self.options.dedup_threshold:
            _, future, source = self._last
            self._pending.append(_Pending(offset, small, future, False, source, near))
        else:
            t = self.task
            future = self.executor.submit(
                analyse_frame, bgr, t.scenes, t.libraries, t.keywords, t.engine_options,
                t.ocr_gate,
            )
            self._last = (mark, future, offset)
            self._pending.append(_Pending(offset, small, future, True, offset, near))
        return self._drain(self.window)

    def flush(self) -> list[Frame]:
        """Wait for every frame added so far."""
        return self._drain(0)

    def cancel(self) -> None:
        for pending in self._pending:
            pending.future.cancel()
        self._pending.clear()

    def _drain(self, keep: int) -> list[Frame]:
        out = []
        while len(self._pending) > keep:
            out.append(self._resolve(self._pending.popleft()))
        return out

    def _resolve(self, pending: _Pending) -> Frame:
        outcome = pending.future.result()
        analysed = pending.analysed
        if analysed:
            self._account(outcome)
        labels = rescore(outcome.labels)
        risk = worst_risk(label.risk_level for label in labels)
        image = None
        if risk != "none" or self.options.thumbnail_all_frames:
            with self.times.measure("thumbnail"):
                image = make_thumbnail(pending.small, self.options.thumbnail_size)
        record: dict[str, Any] = {"offset": pending.offset, "analysed": analysed}
        if pending.distance is not None:
            record["distance"] = pending.distance
        if analysed:
            record["ocr_gated"] = outcome.ocr_gated
        else:
            record["reused"] = pending.source
        self.records.append(record)
        pdq = outcome.details.get("pdq") or {}  # a reused frame shares its source's hash
        return Frame(offset=pending.offset, risk_level=risk, labels=labels, image=image,
                     pdq=pdq.get("hash", ""), pdq_quality=pdq.get("quality"),
                     text_boxes=text_boxes(outcome.details) if image is not None else [])

    def _account(self, outcome: FrameOutcome) -> None:
        for stage, ms in outcome.details.get("timings_ms", {}).items():
            self.times.add(stage, ms / 1000)
        self.times.add("frame_tasks", outcome.wall, outcome.cpu)


def rescore(labels: list[Label]) -> list[Label]:
    """Copies with the risk level under this process's settings (LABELS overrides)."""
    return [replace(lbl, risk_level=risk_of(lbl.label, lbl.confidence)) for lbl in labels]


def rescore_slice(part: Slice) -> Slice:
    labels = rescore(part.labels)
    return replace(part, labels=labels, risk_level=worst_risk(lbl.risk_level for lbl in labels))


# --- The result ---------------------------------------------------------------------------


def summary(parts: list[Frame] | list[Slice]) -> dict[str, int]:
    """{label: number of frames (or slices) where it carries a risk}."""
    counts: dict[str, int] = defaultdict(int)
    for part in parts:
        for name in {lbl.label for lbl in part.labels if lbl.risk_level != "none"}:
            counts[name] += 1
    return dict(sorted(counts.items()))


def job_labels(frames: list[Frame], slices: list[Slice]) -> list[Label]:
    """One label per name over the job, the most confident; ``nonLabel`` only when alone."""
    best: dict[str, Label] = {}
    parts: list[Frame | Slice] = [*frames, *slices]
    for part in parts:
        for lbl in part.labels:
            if lbl.label not in best or lbl.confidence > best[lbl.label].confidence:
                best[lbl.label] = lbl
    if len(best) > 1:
        best.pop("nonLabel", None)
    return [replace(lbl) for lbl in sorted(best.values(), key=lambda lbl: lbl.label)]


def build_result(
    frames: list[Frame], slices: list[Slice], raw: dict[str, Any], status: str = "done"
) -> Result:
    risk = worst_risk([*(f.risk_level for f in frames), *(s.risk_level for s in slices)])
    return Result(
        status=status,
        risk_level=risk,
        labels=job_labels(frames, slices),
        frames=frames,
        slices=slices,
        frame_summary=summary(frames),
        audio_summary=summary(slices),
        raw=raw,
        audio_seconds=_audio_seconds(raw),
    )


def _audio_seconds(raw: dict[str, Any]) -> float:
    """Seconds of audio decoded for analysis, as video.py reports them in the raw result."""
    stream = raw.get("audio_stream") if isinstance(raw, dict) else None
    try:
        return float((stream or {}).get("seconds") or 0.0)
    except (TypeError, ValueError, AttributeError):
        return 0.0
