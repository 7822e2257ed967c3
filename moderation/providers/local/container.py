"""Opening uploaded media safely and probing it without decoding a frame.

Uploads are untrusted, and FFmpeg can read more than the file it is given: a playlist
names other files or URLs, ``concat`` lists do too, a QuickTime ``dref`` points at other
files. So every container is opened with a demuxer allow-list (the formats Alibaba takes,
plus the audio ones; no playlist or list demuxer: no ``hls``, ``concat``, ``image2``), the
``file`` protocol only and the mov demuxer's external references off. An uploaded
playlist is refused outright, whatever its name (sniffed, not trusted from the
extension): a live stream is moderated by URL, through the network guard.

The probe is a demux-only pass (~20 ms per minute of video, ENGINE-NOTES 6): it gives the
keyframe times, which choose the sampling strategy, and where each stream's packets end,
which tells a file cut short (its header still declares the full duration) from a whole
one before any frame is decoded.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field, replace
from typing import IO, Any

from ..errors import MediaError
from .duration import check_declared, check_reached

Source = str | os.PathLike[str] | IO[bytes]

# FFmpeg demuxers a video or audio upload may use (names as FFmpeg spells them).
ALLOWED_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2,avi,flv,live_flv,mpeg,mpegts,mpegvideo,asf,rm,swf,"
    "matroska,webm,ogg,mp3,wav,aac,flac,h264,hevc,m4v"
)
# Leading bytes of media files: an unreadable file that starts so is broken, not foreign.
SIGNATURES = (
    b"RIFF", b"FLV", b"\x1aE\xdf\xa3", b"OggS", b"ID3", b"fLaC", b".RMF",
    b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3", b"FWS", b"CWS", b"ZWS",
    b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",  # ASF, WMV, WMA
)
MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")
# Formats whose header declares the duration of every stream: fewer packets means cut off.
INDEXED_FORMATS = ("mov", "mp4", "matroska", "webm", "avi", "asf")
SEEKABLE_FORMATS = (*INDEXED_FORMATS, "flv", "rm")
TRUNCATION_SLACK = 0.1  # share of the declared duration that may be missing


@dataclass(frozen=True)
class VideoInfo:
    """What the demuxer knows, read without decoding a frame."""

    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    max_keyframe_gap: float | None = None
    format_name: str = ""
    video_codec: str = ""
    audio_codec: str = ""
    start_time: float = 0.0
    keyframes: tuple[float, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (the keyframe list is reduced to its length)."""
        data = {k: v for k, v in self.__dict__.items() if k != "keyframes"}
        data["keyframe_count"] = len(self.keyframes)
        return data


# --- Opening ------------------------------------------------------------------------------


def source_size(source: Source) -> int:
    if isinstance(source, str | os.PathLike):
        return os.path.getsize(source)
    position = source.seek(0, os.SEEK_END)
    source.seek(0)
    return position


def check_size(source: Source, max_bytes: int) -> int:
    """The size in bytes, or a MediaError for an empty or too large file (before decoding)."""
    size = source_size(source)
    if size == 0:
        raise MediaError("the file is empty", code="empty_file")
    if size > max_bytes:
        raise MediaError(
            f"the file has {size} bytes, more than the limit of {max_bytes}",
            code="file_too_large",
        )
    return size


def head(source: Source, size: int = 4096) -> bytes:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            return fh.read(size)
    source.seek(0)
    data = source.read(size)
    source.seek(0)
    return data


def looks_like_media(data: bytes) -> bool:
    if data[4:8] in MP4_BOXES or data.startswith(SIGNATURES):
        return True
    if data[:1] == b"\x47" and data[188:189] == b"\x47":  # MPEG-TS sync bytes
        return True
    return len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0  # MPEG audio frame


def check_playlist(source: Source) -> None:
    """Refuse an uploaded playlist (HLS/M3U, by its content, whatever the file name).

    Its entries would make FFmpeg open other local files or URLs; the demuxer allow-list
    has no ``hls`` either, this check only gives the clear error.
    """
    start = head(source, 64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith(b"#EXTM3U"):
        raise MediaError(
            "playlists (HLS/M3U) are not accepted as uploads: moderate the stream by its URL",
            code="unsupported_format",
        )


def open_container(source: Source) -> Any:
    """An av container over the file, with the demuxer and protocol allow-lists."""
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    if not isinstance(source, str | os.PathLike):
        source.seek(0)
    options = {"format_whitelist": ALLOWED_FORMATS, "protocol_whitelist": "file",
               "enable_drefs": "0", "use_absolute_path": "0"}
    try:
        return av.open(source, mode="r", options=options)
    except FileNotFoundError:
        raise  # a storage problem, not a bad file
    except av.error.ArgumentError as exc:  # FFmpeg refuses a demuxer off the allow-list
        raise MediaError(
            "the file is in a format that is not accepted for video", code="unsupported_format"
        ) from exc
    except (av.FFmpegError, ValueError, EOFError) as exc:
        start = head(source)
        if start[4:8] in MP4_BOXES:
            raise MediaError(
                "the MP4 file has no readable index (moov atom): it is truncated or corrupt",
                code="corrupt_media",
            ) from exc
        if looks_like_media(start):
            reason = getattr(exc, "strerror", None) or exc
            raise MediaError(
                f"the file is truncated or corrupt ({reason})", code="corrupt_media"
            ) from exc
        raise MediaError(
            "the file is not a video or audio format FFmpeg can read", code="unsupported_format"
        ) from exc


# --- Probing ------------------------------------------------------------------------------


def probe(source: Source, max_duration: float | None = None) -> VideoInfo:
    """Streams, duration and keyframe index of a file, from a demux-only pass.

    Raises ``MediaError``: ``empty_file``, ``corrupt_media`` (unreadable, or fewer packets
    than its header declares), ``unsupported_format``, ``no_streams``, ``too_long``
    (packets past ``max_duration`` seconds: the pass stops there, whatever the header says).
    The duration is the header's, or where the packets end when they run on past it.
    """
    check_playlist(source)
    if source_size(source) == 0:
        raise MediaError("the file is empty", code="empty_file")
    with open_container(source) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise MediaError("the file has neither a video nor an audio stream", code="no_streams")
        origin = (container.start_time or 0) / 1_000_000
        check_declared((container.duration or 0) / 1_000_000, max_duration)
        keyframes, ends = _scan_packets(container, video, origin, max_duration)
        duration = _duration(container, ends)
        _check_complete(container, ends)
        info = VideoInfo(
            duration=round(duration, 3),
            has_video=video is not None,
            has_audio=audio is not None,
            format_name=container.format.name,
            start_time=round(origin, 3),
            audio_codec=audio.codec_context.name if audio is not None else "",
        )
        if video is None:
            return info
        return replace(
            info,
            width=video.codec_context.width,
            height=video.codec_context.height,
            fps=round(float(video.average_rate or video.guessed_rate or 0), 3),
            video_codec=video.codec_context.name,
            max_keyframe_gap=_max_gap(keyframes, duration),
            keyframes=tuple(keyframes),
        )


def _scan_packets(
    container: Any, video: Any, origin: float, max_duration: float | None = None
) -> tuple[list[float], dict[Any, float]]:
    """Keyframe times of the video stream, and where each stream's packets end."""
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)


    keyframes: list[float] = []
    ends: dict[Any, float] = {}
    try:
        for packet in container.demux():
            if packet.pts is None or packet.size == 0:
                continue
            at = float(packet.pts * packet.time_base) - origin
            end = at + float((packet.duration or 0) * packet.time_base)
            ends[packet.stream] = max(ends.get(packet.stream, 0.0), end)
            check_reached(at, max_duration)
            if packet.stream is video and packet.is_keyframe:
                keyframes.append(round(at, 3))
    except (av.FFmpegError, EOFError) as exc:
        raise MediaError(f"the file is corrupt ({exc})", code="corrupt_media") from exc
    return sorted(set(keyframes)), ends


def _duration(container: Any, ends: dict[Any, float]) -> float:
    found = max(ends.values(), default=0.0)
    if container.duration:
        declared = container.duration / 1_000_000
        # A header that declares less than the packets hold is lying: frames are sampled
        # (and the duration cap applied) over what the file really holds.
        return found if found > declared * (1 + TRUNCATION_SLACK) + 1.0 else declared
    return found


def _check_complete(container: Any, ends: dict[Any, float]) -> None:
    """A file cut short keeps its header: its streams end before the declared duration."""
    if not any(name in container.format.name.split(",") for name in INDEXED_FORMATS):
        return
    for stream in (*container.streams.video[:1], *container.streams.audio[:1]):
        if not stream.duration or not stream.time_base:
            continue
        declared = float(stream.duration * stream.time_base)
        found = ends.get(stream, 0.0)
        if found < declared * (1 - TRUNCATION_SLACK) - 0.5:
            raise MediaError(
                f"the file is truncated: its {stream.type} ends at {found:.1f} s of the "
                f"{declared:.1f} s its header declares",
                code="corrupt_media",
            )


def _max_gap(keyframes: list[float], duration: float) -> float | None:
    if not keyframes:
        return None
    bounds = [0.0, *keyframes, duration] if keyframes[0] > 0 else [*keyframes, duration]
    return round(max(b - a for a, b in itertools.pairwise(bounds)), 3)
