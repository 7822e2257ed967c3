"""Frame sampling with PyAV: one frame per ``interval`` seconds, decoded the cheapest way.

Strategies, from ENGINE-NOTES section 6, re-measured on the bench video (60 s, 720p,
bench/video_engine.py; seconds of wall time per minute of video at 1 frame/s):

* Keyframe gap <= interval (from the probe's index): ``seek`` to each sample, one short
  decode per sample: 0.29 s at a 1 s GOP, against 0.54 s sequential.
* Otherwise ``sequential``: decode straight through with frame threads (``AUTO``) and
  skip B-frames (``BIDIR``): 0.51 s at a 2 s GOP (seek: 0.81 s; every frame decoded:
  1.3 s). The frames kept are bit-identical to a full decode; a sample lands at most a
  few frames late (0.067 s here). Seeking per sample on a 10 s GOP decodes the GOP again
  for every sample: 4.8 s instead of 0.45 s.

Offsets count from the container's start time, as speech.decode_audio counts them. A
sample takes the first frame at or after its offset: what is on screen from then on.

Frame size is bounded twice: a video whose frames exceed the image pixel limit
(``MAX_IMAGE_PIXELS``) is refused from its probe, before a frame is decoded
(:func:`check_frame_size`), and every sample is converted to BGR at most
``MAX_SAMPLE_PIXELS`` (4K), scaled down in the same swscale pass: a 36 MP frame
becomes a 25 MB array, not 108 MB, in each of the frames in flight. Huge frames are also
decoded without frame threads (each thread holds frames of its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import MediaError
from .container import SEEKABLE_FORMATS, Source, VideoInfo, open_container

BgrImage = NDArray[np.uint8]

# Largest sample handed to the engine, pixels: bigger frames are scaled down to it.
MAX_SAMPLE_PIXELS = 4096 * 2160
# Frames above this many pixels decode on one thread (frame threads multiply the buffers).
THREADED_PIXELS = 4096 * 2160
MAX_DECODE_ERRORS = 0.05  # share of undecodable packets tolerated before failing the file
# Rounding slack of "at or after", seconds (HLS audio starts 21 ms before the video: an
# offset a frame early would show what was on screen before the sample's instant).
TIME_SLACK = 0.001


def sample_step(duration: float, interval: float, max_frames: int) -> float:
    """Seconds between samples: ``interval``, stretched when that many samples would not
    reach the end. Stopping at ``max_frames`` instead would leave everything past
    ``interval * max_frames`` unseen: a long video could show anything after its start."""
    if duration > interval * max_frames:
        return duration / max_frames
    return interval


def sample_offsets(duration: float, interval: float, max_frames: int) -> list[float]:
    """0, step, 2*step, ... before the end, at most ``max_frames`` of them, spread over the
    whole duration (see ``sample_step``)."""
    if duration <= 0:
        return [round(k * interval, 3) for k in range(max_frames)]
    step = sample_step(duration, interval, max_frames)
    count = min(max_frames, int(np.ceil(duration / step - 1e-9)))
    return [round(k * step, 3) for k in range(max(count, 1))]


def choose_strategy(info: VideoInfo, interval: float) -> str:
    """``seek`` when every sample is at most one keyframe gap away, else ``sequential``.

    Only containers with an index seek exactly; MPEG-PS/TS seek by byte position and
    landed 0.2 s past the target in a test, so they are read straight through.
    """
    gap = info.max_keyframe_gap
    indexed = any(name in SEEKABLE_FORMATS for name in info.format_name.split(","))
    return "seek" if indexed and gap is not None and gap <= interval else "sequential"


@dataclass
class DecodeStats:
    strategy: str = ""
    decoded: int = 0  # frames the decoder produced
    errors: int = 0  # packets it could not decode
    late: float = 0.0  # the largest distance between a sample and its frame, seconds
    fallback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "late": round(self.late, 3)}


def sample_frames(
    source: Source, info: VideoInfo, offsets: list[float], stats: DecodeStats
) -> Iterator[tuple[float, BgrImage]]:
    """(offset, BGR frame) for each offset, in order, decoded the cheapest way (module doc)."""
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    interval = offsets[1] - offsets[0] if len(offsets) > 1 else info.duration
    stats.strategy = stats.strategy or choose_strategy(info, interval)
    done = 0
    if stats.strategy == "seek":
        try:
            for item in _seek_frames(source, info, offsets, stats):
                done += 1
                yield item
            return
        except av.FFmpegError as exc:  # an index that does not seek: decode straight through
            stats.fallback = f"sequential after seek failed ({exc})"
    yield from _sequential_frames(source, info, offsets[done:], stats)


def check_frame_size(info: VideoInfo, max_pixels: int) -> None:
    """``image_too_large`` for a video whose frames exceed the image pixel limit."""
    pixels = info.width * info.height
    if pixels > max_pixels:
        raise MediaError(
            f"the video's frames have {info.width}x{info.height} pixels, more than the limit "
            f"of {max_pixels} (MAX_IMAGE_PIXELS)",
            code="image_too_large",
        )


def to_bgr(frame: Any, max_pixels: int = MAX_SAMPLE_PIXELS) -> BgrImage:
    """The frame as a BGR array, scaled down (aspect kept) to at most ``max_pixels``."""
    pixels = frame.width * frame.height
    if pixels <= max_pixels:
        return frame.to_ndarray(format="bgr24")
    scale = (max_pixels / pixels) ** 0.5
    width = max(2, int(frame.width * scale) // 2 * 2)
    height = max(2, int(frame.height * scale) // 2 * 2)
    return frame.to_ndarray(width=width, height=height, format="bgr24", interpolation="AREA")


def _frame_time(frame: Any, origin: float, fallback: float) -> float:
    return fallback if frame.time is None else frame.time - origin


def _video_stream(container: Any, skip_bidir: bool) -> Any:
    stream = container.streams.video[0]
    context = stream.codec_context
    if (context.width or 0) * (context.height or 0) <= THREADED_PIXELS:
        stream.thread_type = "AUTO"  # frame threads: 1.45x on 2 cores (P12)
    if skip_bidir:
        stream.codec_context.skip_frame = "BIDIR"
    return stream


def _decode(stream: Any, packet: Any, stats: DecodeStats) -> list[Any]:
    """Frames of one packet; a broken packet is counted and skipped, as players do."""
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    try:
        return stream.decode(packet)
    except av.error.InvalidDataError:
        stats.errors += 1
        return []


def _seek_frames(
    source: Source, info: VideoInfo, offsets: list[float], stats: DecodeStats
) -> Iterator[tuple[float, BgrImage]]:
    with open_container(source) as container:
        stream = _video_stream(container, skip_bidir=False)
        for offset in offsets:
            target = int((offset + info.start_time) / stream.time_base)
            container.seek(target, stream=stream, backward=True)
            frame = _first_frame_after(container, stream, offset, info.start_time, stats)
            if frame is None:
                return
            stats.late = max(stats.late, frame[0] - offset)
            yield offset, frame[1]


def _first_frame_after(
    container: Any, stream: Any, offset: float, origin: float, stats: DecodeStats
) -> tuple[float, BgrImage] | None:
    for packet in container.demux(stream):
        for frame in _decode(stream, packet, stats):
            stats.decoded += 1
            at = _frame_time(frame, origin, offset)
            if at >= offset - TIME_SLACK:
                return at, to_bgr(frame)
    return None


def _sequential_frames(
    source: Source, info: VideoInfo, offsets: list[float], stats: DecodeStats
) -> Iterator[tuple[float, BgrImage]]:
    if not offsets:
        return
    with open_container(source) as container:
        stream = _video_stream(container, skip_bidir=True)
        pending = iter(offsets)
        target = next(pending, None)
        packets = 0
        for packet in container.demux(stream):
            packets += 1
            for frame in _decode(stream, packet, stats):
                stats.decoded += 1
                at = _frame_time(frame, info.start_time, stats.decoded / (info.fps or 30.0))
                while target is not None and at >= target - TIME_SLACK:
                    stats.late = max(stats.late, at - target)
                    yield target, to_bgr(frame)
                    target = next(pending, None)
            if target is None:
                return
        _check_errors(stats, packets)


def _check_errors(stats: DecodeStats, packets: int) -> None:
    if stats.errors and (stats.decoded == 0 or stats.errors > MAX_DECODE_ERRORS * packets):
        raise MediaError(
            f"the video is corrupt: {stats.errors} of {packets} packets could not be decoded",
            code="corrupt_media",
        )
