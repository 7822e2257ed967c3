"""Animated GIF, WebP and PNG: every frame counts, not the first one alone.

An animation is moderated like a short video: one ``Frame`` per sample, with its offset
from the frames' durations, near-duplicates reusing the last analysed frame's detections
(jobs.py), and the job's risk the worst frame's.

Which frames. Frames last as long as their ``duration`` says; 0 to 10 ms counts as 100 ms,
as browsers show it. An animation of at most ``max_frames`` frames has *every* frame
analysed: GIF frames last about 100 ms while ``interval`` is at least 1 s, so sampling
by time would judge most GIFs by their first frame (near-duplicates make the extra
frames cheap). A longer one gets ``max_frames`` samples spread evenly over *all* its
frames, the first included (stopping at the ``max_frames``-th would let the rest through
unseen, as for videos); nothing after the last sample is decoded.

Bounds. Frames are decoded in order, once each: each is composited onto the previous ones
by Pillow, as a viewer sees it (a ``seek`` backwards would decode everything before
again). Every decoded frame costs its full canvas, so the frames' total pixels are capped
by ``max_animation_pixels`` (``MAX_ANIMATION_PIXELS``, 1 gigapixel: 9 s of GIF decoding
and 26 s of WebP at worst here). Beyond it the job fails with ``image_too_large`` before
any pixel is decoded: analysing only the start would let the rest through unseen. Only
one canvas and the sampled frames (reduced to the working size) are held at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image

from ..errors import MediaError
from ..result import Frame, Result
from .decode import (
    DECODE_ERRORS,
    WORKING_SIZE,
    BgrImage,
    frame_count,
    open_image,
    reduce_to,
    to_bgr,
)
from .jobs import (
    FrameDispatcher,
    FrameTask,
    StageTimes,
    VideoOptions,
    build_result,
    engine_options,
    timed_iter,
)
from .pool import choose_mode, crash_guard, executor_for

FAST_FRAME_MS = 10  # a frame this short or shorter...
SHOWN_MS = 100  # ...is shown this long by browsers
MAX_ANIMATION_PIXELS = 1_000_000_000
# Frames waiting for analysis hold at most about this many bytes (video frames are
# small; an animation's may be 4096x4096, 50 MB each).
PENDING_BYTES = 128 * 1024 * 1024


def is_animated(image: Image.Image) -> bool:
    return frame_count(image) > 1


def frame_seconds(info: Mapping[str, Any]) -> float:
    """How long a frame is on screen, as browsers time it."""
    try:
        ms = float(info.get("duration") or 0)
    except (TypeError, ValueError):
        ms = 0.0
    return (ms if ms > FAST_FRAME_MS else SHOWN_MS) / 1000  # NaN counts as fast too


@dataclass
class AnimationStats:
    frames_total: int = 0
    sampling: str = ""  # "every_frame" | "spread"
    decoded: int = 0
    pixels_decoded: int = 0
    duration_s: float = 0.0  # display time of the decoded frames (all, unless stopped early)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": round(self.duration_s, 3)}


def check_total_pixels(image: Image.Image, frames: int, limit: int) -> None:
    width, height = image.size
    total = width * height * frames
    if total > limit:
        raise MediaError(
            f"the animation has {frames} frames of {width}x{height} pixels ({total} in all), "
            f"more than the limit of {limit}",
            code="image_too_large",
        )


def sample_animation(
    image: Image.Image,
    *,
    max_frames: int,
    working_size: int = WORKING_SIZE,
    max_pixels: int = MAX_ANIMATION_PIXELS,
    stats: AnimationStats | None = None,
) -> Iterator[tuple[float, BgrImage]]:
    """(offset seconds, BGR frame at the working size) of each sampled frame, in order."""
    stats = stats if stats is not None else AnimationStats()
    total = stats.frames_total = frame_count(image)
    check_total_pixels(image, total, max_pixels)
    every = total <= max_frames
    stats.sampling = "every_frame" if every else "spread"
    chosen = set(range(total)) if every else {k * total // max_frames for k in range(max_frames)}
    last = max(chosen)
    start = 0.0
    for index in range(total):
        try:
            image.seek(index)  # the next frame: composited once onto the canvas
            image.load()
            width, height = image.size
            stats.decoded += 1
            stats.pixels_decoded += width * height
            if stats.pixels_decoded > max_pixels:  # frames larger than the header said
                raise MediaError(f"the animation's frames grew past {max_pixels} pixels in "
                                 f"all by frame {index}", code="image_too_large")
            end = start + frame_seconds(image.info)
            bgr = to_bgr(reduce_to(image, working_size)) if index in chosen else None
        except DECODE_ERRORS as exc:
            raise MediaError(f"frame {index} of the animation is corrupt ({exc})",
                             code="corrupt_image") from exc
        if bgr is not None:
            yield round(start, 3), bgr
        start = stats.duration_s = end
        if index >= last:
            break


def analyse_animation(
    image: Image.Image,
    *,
    scenes: list[str],
    libraries: Any = None,
    keywords: dict[str, list[str]] | None = None,
    options: Mapping[str, Any] | None = None,
) -> Result:
    """Moderate an opened animated image frame by frame (module doc): one ``Result`` with a
    ``Frame`` per sample. ``options``: the video ones, ``image_working_size`` and
    ``max_animation_pixels``."""
    options = dict(options or {})
    opts = VideoOptions.from_options(options)
    working_size = int(options.get("image_working_size") or WORKING_SIZE)
    max_pixels = int(options.get("max_animation_pixels") or MAX_ANIMATION_PIXELS)
    times, stats = StageTimes(), AnimationStats()
    task = FrameTask(list(scenes), libraries, keywords, engine_options(options), opts.ocr_gate)
    mode = choose_mode(opts.parallelism)
    frames: list[Frame] = []
    samples = sample_animation(image, max_frames=opts.max_frames, working_size=working_size,
                               max_pixels=max_pixels, stats=stats)
    with crash_guard(opts.workers), executor_for(mode, opts.workers) as executor:
        dispatcher = FrameDispatcher(executor, task, opts, times,
                                     window=pending_window(image, working_size, opts.workers))
        try:
            for offset, bgr in timed_iter(samples, times, "decode"):
                frames += dispatcher.add(offset, bgr)
            frames += dispatcher.flush()
        except BaseException:
            dispatcher.cancel()
            raise
    records = dispatcher.records
    analysed = sum(1 for record in records if record["analysed"])
    raw = {
        "provider": "local",
        "media": "animation",
        "format": image.format,
        "size": list(image.size),
        "working_size": working_size,
        "parallelism": mode,
        "max_frames": opts.max_frames,
        **stats.to_dict(),
        "frames_sampled": len(records),
        "frames_analysed": analysed,
        "frames_reused": len(records) - analysed,
        "stages": times.to_dict(),
        "frames": records,
    }
    return build_result(frames, [], raw)


def pending_window(image: Image.Image, working_size: int, workers: int) -> int:
    """How many sampled frames may wait for analysis: as video does (4 per worker),
    unless that would hold more than ``PENDING_BYTES``."""
    scale = min(1.0, working_size / max(image.size))
    frame_bytes = 3 * max(1, round(image.width * scale)) * max(1, round(image.height * scale))
    return max(1, min(4 * workers, PENDING_BYTES // frame_bytes))


def refuse_animated(frames: list[tuple[float, bytes]], max_bytes: int, max_pixels: int) -> None:
    """A ``frames`` job's images are single pictures: an animation among them fails with
    ``animated_frame`` (moderate it as an image job, where every frame counts) rather than
    being judged by its first frame."""
    for offset, data in frames:
        try:
            image = open_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
        except MediaError:
            continue  # the frame decoder reports it, naming the offset
        if is_animated(image):
            raise MediaError(f"the frame at {offset:g} s is an animated image; moderate it "
                             "as an image job", code="animated_frame")
