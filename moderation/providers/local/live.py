"""Live streams (HLS, RTMP, HTTP-FLV, RTSP, SRT) moderated continuously, chunk by chunk.

The stream is read once, in the calling thread: video frames are sampled every
``interval`` seconds and sent to the workers as they arrive (with the same near-duplicate
reuse as files), the audio is collected per chunk and sent as one speech task when the
chunk closes. A chunk is yielded as soon as its frames and speech are done, while the
reading goes on; offsets count from the start of the stream.

Security: FFmpeg protocols can read local files (``file:``, ``concat:``, ``subfile:``) and
a playlist can point anywhere, so only network schemes are accepted and the stream is
opened with a protocol allow-list for its scheme, which also binds every segment and key
a playlist names. Every connection goes to a vetted public address (``moderation.remote``):
http(s) through a guarded loopback proxy that resolves and checks each hop (redirects,
variant playlists, segments, keys) at connect time (``guard_proxy``); rtsp over TCP only,
through a loopback relay to the vetted address that refuses redirects (``guard_rtsp``);
rtmp(s) and srt, which FFmpeg never sends elsewhere, to the vetted IP literal. A refused
hop ends the job with ``forbidden_address``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ...guard_proxy import GuardProxy, to_guarded_url
from ...guard_rtsp import RtspGuard
from ...remote import DEFAULT_PORTS, pinned_url, vetted_addresses
from ..errors import MediaError
from ..result import Frame, Result
from .container import ALLOWED_FORMATS
from .jobs import (
    FrameDispatcher,
    FrameTask,
    StageTimes,
    VideoOptions,
    build_result,
    engine_options,
    rescore_slice,
)
from .pool import analyse_audio, choose_mode, crash_guard, executor_for
from .sampling import TIME_SLACK

RATE = 16000  # speech PCM, as speech.py wants it
HTTP = "http,https,tcp,tls,crypto"
GUARDED_HTTP = "http,tcp,crypto"  # plain http to the guard proxy only (see guard_proxy)
PROTOCOLS = {
    "http": HTTP,
    "https": HTTP,
    "rtmp": "rtmp,rtmps,tcp,tls",
    "rtmps": "rtmp,rtmps,tcp,tls",
    "rtsp": "rtsp,rtp,srtp,udp,tcp,tls",
    "srt": "srt,udp",
}
LIVE_FORMATS = ALLOWED_FORMATS + ",hls,rtsp"  # playlists only from the network, never uploads
# A stream whose audio and video drift apart by more than this closes the chunk anyway.
MAX_STREAM_LAG = 2.0


def check_url(url: str) -> str:
    """The protocol allow-list for a stream URL, or ``MediaError("unsupported_url")``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in PROTOCOLS or not urlsplit(url).hostname:
        raise MediaError(
            f"only {', '.join(sorted(PROTOCOLS))} stream URLs are accepted, not {scheme or url!r}",
            code="unsupported_url",
        )
    return PROTOCOLS[scheme]


def stream_live(
    url: str,
    *,
    scenes: list[str],
    audio: bool,
    libraries: Any = None,
    keywords: dict[str, list[str]] | None = None,
    options: Mapping[str, Any] | None = None,
    allow_private_addresses: bool = False,
) -> Iterator[Result]:
    """Partial results every ``chunk_seconds`` (``in_progress``), the last one ``done``.

    The URL and options are checked now; the stream is opened on the first ``next()``.
    Stop iterating to cancel: the stream is closed and pending analyses dropped.
    ``allow_private_addresses``: the ``ALLOW_PRIVATE_ADDRESSES`` setting (the provider
    passes it; never from a job's options), which turns the network guard off.
    """
    opts = VideoOptions.from_options(options)
    protocols = check_url(url)
    task = FrameTask(list(scenes), libraries, keywords, engine_options(options), opts.ocr_gate)
    job = _LiveJob(url, protocols, opts, task, audio, keywords, dict(options or {}),
                   allow_private_addresses=allow_private_addresses)
    return job.run()


Guard = GuardProxy | RtspGuard


@contextmanager
def network_guard(
    url: str, allow_private_addresses: bool = False
) -> Iterator[tuple[str, dict[str, str], Guard | None]]:
    """The URL and FFmpeg options that keep every connection on vetted addresses, and the
    guard whose refusals tell a guarded hop from a broken stream (none at all with
    ``allow_private_addresses``, the ``ALLOW_PRIVATE_ADDRESSES`` setting)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "rtsp":  # also with private addresses allowed: never UDP to a named source
        options = {"rtsp_transport": "tcp"}
        if allow_private_addresses:
            yield url, options, None
            return
        port = parts.port or DEFAULT_PORTS["rtsp"]
        address = vetted_addresses(parts.hostname or "", port)[0]
        with RtspGuard(address, port, parts.netloc.rpartition("@")[2]) as relay:
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = (f"{userinfo}@" if userinfo else "") + relay.netloc
            yield parts._replace(netloc=netloc).geturl(), options, relay
    elif allow_private_addresses:
        yield url, {}, None
    elif scheme in ("http", "https"):
        with GuardProxy() as proxy:
            options = {"http_proxy": proxy.url, "protocol_whitelist": GUARDED_HTTP}
            yield to_guarded_url(url), options, proxy
    else:
        yield pinned_url(url), {}, None


def check_guard(guard: Guard | None) -> None:
    """``forbidden_address`` once the guard has refused a hop of this stream."""
    if guard is not None and guard.refused:
        raise MediaError(f"the network guard refused {'; '.join(guard.refused[:3])}",
                         code="forbidden_address")


def open_stream(url: str, protocols: str, opts: VideoOptions,
                guard_options: Mapping[str, str] | None = None,
                guard: Guard | None = None) -> Any:
    """The opened container; ``forbidden_address`` when the guard refused a hop on the way,
    ``stream_timeout`` or ``stream_unavailable`` otherwise."""
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    started = time.monotonic()
    options = {"protocol_whitelist": protocols, "format_whitelist": LIVE_FORMATS,
               **(guard_options or {})}
    try:
        container = av.open(url, timeout=(opts.open_timeout, opts.read_timeout),
                            options=options)
    except av.error.ExitError as exc:  # the interrupt callback fired: nothing came in time
        check_guard(guard)
        raise MediaError(
            f"the stream did not answer within {opts.open_timeout:g} s", code="stream_timeout"
        ) from exc
    except (av.FFmpegError, OSError) as exc:
        check_guard(guard)
        if time.monotonic() - started >= 0.9 * opts.open_timeout:
            raise MediaError(
                f"the stream did not answer within {opts.open_timeout:g} s",
                code="stream_timeout",
            ) from exc
        raise MediaError(
            f"the stream cannot be opened ({_reason(exc)})", code="stream_unavailable"
        ) from exc
    try:
        check_guard(guard)  # a refused variant or key may still leave something to open
    except MediaError:
        container.close()
        raise
    return container


@dataclass
class _Chunk:
    index: int
    start: float
    end: float
    frames: list[Frame] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    speech: Future | None = None

    def ready(self) -> bool:
        return self.speech is None or self.speech.done()


class _LiveJob:
    """One stream: read, sample, dispatch, and yield chunk results in order."""

    def __init__(
        self,
        url: str,
        protocols: str,
        opts: VideoOptions,
        task: FrameTask,
        audio: bool,
        keywords: dict[str, list[str]] | None,
        options: dict[str, Any],
        allow_private_addresses: bool = False,
    ):
        self.url, self.protocols, self.opts, self.task = url, protocols, opts, task
        self.allow_private_addresses = allow_private_addresses
        self.audio, self.keywords, self.options = audio, keywords, options
        self.times = StageTimes()
        self.waiting: deque[_Chunk] = deque()
        self.chunk = _Chunk(0, 0.0, opts.chunk_seconds)
        self.carry: list[Frame] = []
        self.pcm: list[np.ndarray] = []
        self.pcm_start = 0.0
        self.end_reason = "end_of_stream"
        self.mode = choose_mode(opts.parallelism)
        self.next_sample = 0.0
        self.resample: Any = None
        self.guard: Guard | None = None

    def run(self) -> Iterator[Result]:
        with network_guard(self.url, self.allow_private_addresses) as (
                url, guard_options, self.guard):
            container = open_stream(url, self.protocols, self.opts, guard_options, self.guard)
            dispatcher = None
            workers = self.opts.workers
            try:
                with crash_guard(workers), executor_for(self.mode, workers) as executor:
                    dispatcher = FrameDispatcher(
                        executor, self.task, self.opts, self.times, window=4 * workers
                    )
                    yield from self._read(container, executor, dispatcher)
                    check_guard(self.guard)  # segments refused until the end
                    yield from self._finish(executor, dispatcher)
            finally:
                if dispatcher is not None:
                    dispatcher.cancel()
                for chunk in self.waiting:
                    if chunk.speech is not None:
                        chunk.speech.cancel()
                container.close()

    # -- reading --

    def _read(
        self, container: Any, executor: Executor, dispatcher: FrameDispatcher
    ) -> Iterator[Result]:
        import av  # noqa: PLC0415 - heavy, local extra (PyAV)

        clock = _Clock(container, self._streams(container))
        try:
            for packet in container.demux(*clock.latest):
                check_guard(self.guard)  # a refused segment or key ends the job visibly
                for frame in _decode(packet):
                    at = clock.offset(packet.stream, frame)
                    if at >= self.opts.max_duration:
                        self.end_reason = "max_duration"
                        return
                    if packet.stream.type == "video":
                        self._sample(frame, at, dispatcher)
                    else:
                        self.pcm += [pcm.to_ndarray().reshape(-1) for pcm in self.resample(frame)]
                while clock.passed(self.chunk.end):
                    self._close_chunk(executor, dispatcher)
                yield from self._ready()
        except (av.FFmpegError, OSError) as exc:
            # the interrupt callback fires (ExitError) when nothing came within read_timeout
            timeout = isinstance(exc, av.error.ExitError)
            if not clock.started:
                raise MediaError(
                    f"the stream sent nothing within {self.opts.read_timeout:g} s"
                    if timeout else f"the stream broke off ({_reason(exc)})",
                    code="stream_timeout" if timeout else "stream_unavailable",
                ) from exc
            # what was read is moderated; a stalled or dropped stream has ended
            self.end_reason = "read_timeout" if timeout else f"stream_error: {_reason(exc)}"

    def _streams(self, container: Any) -> list[Any]:
        """The first video stream (B-frames skipped, as for files) and the audio if wanted."""
        import av  # noqa: PLC0415 - heavy, local extra (PyAV)

        streams = [*container.streams.video[:1]]
        if self.audio and container.streams.audio:
            streams.append(container.streams.audio[0])
            self.resample = av.AudioResampler(format="s16", layout="mono", rate=RATE).resample
        if not streams:
            raise MediaError("the stream has neither video nor audio", code="no_streams")
        for stream in container.streams.video[:1]:
            stream.thread_type = "AUTO"
            stream.codec_context.skip_frame = "BIDIR"
        return streams

    def _sample(self, frame: Any, at: float, dispatcher: FrameDispatcher) -> None:
        """Send the frame for every sample instant it is the first frame at or after."""
        while at >= self.next_sample - TIME_SLACK and self.next_sample < self.opts.max_duration:
            self.carry += dispatcher.add(self.next_sample, frame.to_ndarray(format="bgr24"))
            self.next_sample = round(self.next_sample + self.opts.interval, 3)

    def _close_chunk(self, executor: Executor, dispatcher: FrameDispatcher) -> None:
        """Hand the chunk's audio to a worker, collect its frames, and start the next chunk."""
        chunk = self.chunk
        if self.pcm:
            pcm = np.concatenate(self.pcm)
            chunk.speech = executor.submit(
                analyse_audio, pcm, self.keywords, self.options, self.pcm_start
            )
            self.pcm_start += len(pcm) / RATE
            self.pcm = []
        frames = self.carry + dispatcher.flush()
        chunk.frames = [f for f in frames if f.offset < chunk.end]
        self.carry = [f for f in frames if f.offset >= chunk.end]
        chunk.records = [r for r in dispatcher.records if r["offset"] < chunk.end]
        dispatcher.records = [r for r in dispatcher.records if r["offset"] >= chunk.end]
        self.waiting.append(chunk)
        start = chunk.end
        self.chunk = _Chunk(chunk.index + 1, start, start + self.opts.chunk_seconds)

    def _ready(self, final: bool = False) -> Iterator[Result]:
        while self.waiting and (final or self.waiting[0].ready()):
            chunk = self.waiting.popleft()
            done = final and not self.waiting
            yield self._result(chunk, "done" if done else "in_progress")

    def _finish(self, executor: Executor, dispatcher: FrameDispatcher) -> Iterator[Result]:
        self._close_chunk(executor, dispatcher)
        yield from self._ready(final=True)

    def _result(self, chunk: _Chunk, status: str) -> Result:
        slices = []
        if chunk.speech is not None:
            outcome = chunk.speech.result()
            self.times.add("speech", outcome.wall, outcome.cpu)
            slices = [rescore_slice(part) for part in outcome.slices]
        analysed = sum(1 for r in chunk.records if r["analysed"])
        raw = {
            "provider": "local",
            "media": "live",
            "chunk": chunk.index,
            "start": chunk.start,
            "end": chunk.end,
            "parallelism": self.mode,
            "frames_sampled": len(chunk.records),
            "frames_analysed": analysed,
            "frames_reused": len(chunk.records) - analysed,
            "frames": chunk.records,
            "stages": self.times.to_dict(),  # running totals since the stream opened
        }
        if status == "done":
            raw["end_reason"] = self.end_reason
        return build_result(chunk.frames, slices, raw, status=status)


def _decode(packet: Any) -> list[Any]:
    """Frames of a packet (an empty one drains the decoder at the end); a broken packet is
    skipped, as players do: a live stream goes on."""
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    try:
        return packet.decode()
    except av.error.InvalidDataError:
        return []


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc)


class _Clock:
    """Offsets from the stream start, kept monotonic per stream (live timestamps jump)."""

    def __init__(self, container: Any, streams: list[Any]):
        start = container.start_time
        self.origin: float | None = start / 1_000_000 if start else None
        self.latest = {stream: 0.0 for stream in streams}
        self.started = False

    def offset(self, stream: Any, frame: Any) -> float:
        self.started = True
        if self.origin is None:
            self.origin = frame.time or 0.0
        at = max(self.latest[stream], (frame.time or 0.0) - self.origin)
        self.latest[stream] = at
        return at

    def passed(self, end: float) -> bool:
        """Every stream has reached ``end``, or one is far past it (the other stalled)."""
        times = self.latest.values()
        return min(times) >= end or max(times) >= end + MAX_STREAM_LAG
