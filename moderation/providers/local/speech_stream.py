"""A soundtrack cut into speech pieces while it decodes: memory independent of its length.

The speech task is the longest single task (RTF ~0.1), so the track goes to the workers
in pieces of about ``SPEECH_PIECE`` seconds, cut mid-pause so that no utterance or keyword
is split (video.py). Before, the whole track was decoded into one array first (a 3 h file:
345 MB of PCM, then copies of it; +1.7 GB). Now the audio streams through in 10 s chunks:
the voice-activity endpointer sees each chunk once, and only the piece being built stays
in memory. The cuts are the same as those of the whole track at once:

* a pause's middle becomes a cut once it lies ``piece`` past the previous cut *and* the
  track runs on for ``piece / 2`` after it (which the stream shows by getting there);
* a piece that finds no such pause by ``MAX_PIECE`` seconds (hours of music, noise or
  silence) is cut at its latest pause, or at ``MAX_PIECE``: no piece is longer;
* a piece of digital silence (every sample within ``SILENT_PEAK``) is not sent at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .asr import RATE, Pcm
from .vad import SpeechSegment, Tidier, VadStream

SPEECH_PIECE = 30.0  # seconds of audio per speech task
MAX_PIECE = 120.0  # seconds: a piece without a pause is cut here
# A piece whose samples all lie within this (of 32767, -66 dBFS) holds nothing to hear.
SILENT_PEAK = 16


@dataclass
class PieceStats:
    """What the cutter saw, for the job's raw result."""

    seconds: float = 0.0  # audio decoded
    pieces: int = 0  # sent to analysis
    silent_seconds: float = 0.0  # in pieces skipped as digital silence
    clips_dropped: int = 0  # flagged slices past the job's evidence budget (video.py)

    def to_dict(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "pieces": self.pieces,
            "silent_seconds": round(self.silent_seconds, 3),
            "clips_dropped": self.clips_dropped,
        }


def speech_pieces_of(
    chunks: Iterable[Pcm],
    piece: float = SPEECH_PIECE,
    stats: PieceStats | None = None,
) -> Iterator[tuple[float, Pcm]]:
    """(start seconds, PCM) of each piece of a track given as consecutive chunks."""
    cutter = PieceCutter(piece, stats)
    for chunk in chunks:
        yield from cutter.feed(chunk)
    yield from cutter.finish()


class PieceCutter:
    """The cuts of the module doc, for a track fed chunk by chunk."""

    def __init__(self, piece: float = SPEECH_PIECE, stats: PieceStats | None = None) -> None:
        self.piece = piece
        self.longest = max(MAX_PIECE, 2 * piece)
        self.stats = stats if stats is not None else PieceStats()
        self.vad = VadStream()
        self.tidier = Tidier()
        self.samples = _Samples()
        self.start = 0.0  # of the piece being built, seconds
        self.target = piece  # the earliest next cut
        self.previous: SpeechSegment | None = None
        self.pauses: deque[float] = deque()  # middles of pauses not yet decided on

    def feed(self, pcm: Pcm) -> list[tuple[float, Pcm]]:
        if not pcm.size:
            return []
        self.samples.append(pcm)
        self._add(self.tidier.add(self.vad.feed(pcm)))
        return self._cuts(final=False)

    def finish(self) -> list[tuple[float, Pcm]]:
        total = self.vad.samples / RATE
        self.stats.seconds = total
        self._add(self.tidier.add(self.vad.finish()) + self.tidier.finish(total))
        out = self._cuts(final=True)
        if self.vad.samples > round(self.start * RATE):
            out += self._emit(total, end_sample=self.vad.samples)
        return out

    def _add(self, spans: list[SpeechSegment]) -> None:
        for span in spans:
            if self.previous is not None:
                self.pauses.append((self.previous.end + span.start) / 2)
            self.previous = span

    def _cuts(self, final: bool) -> list[tuple[float, Pcm]]:
        reached = self.vad.samples / RATE  # the track runs at least this long
        out: list[tuple[float, Pcm]] = []
        while self.pauses:
            middle = self.pauses[0]
            if middle < self.target:
                self.pauses.popleft()
                continue
            if reached - middle >= self.piece / 2 and reached > 1.5 * self.piece:
                self.pauses.popleft()
                out += self._cut(middle)
                continue
            if final:  # the track ends too soon after it: so does it after every later one
                self.pauses.clear()
            break
        while not final and reached - self.start > self.longest:
            out += self._cut(self._forced_cut())
        return out

    def _forced_cut(self) -> float:
        """The latest known pause inside the longest piece, else the longest piece."""
        limit = self.start + self.longest
        inside = [m for m in self.pauses if self.start < m <= limit]
        if self.previous is not None and self.start < self.previous.end <= limit:
            inside = inside or [self.previous.end]
        return max(inside, default=limit)

    def _cut(self, at: float) -> list[tuple[float, Pcm]]:
        out = self._emit(at, end_sample=round(at * RATE))
        self.target = at + self.piece
        while self.pauses and self.pauses[0] <= at:
            self.pauses.popleft()
        return out

    def _emit(self, end: float, end_sample: int) -> list[tuple[float, Pcm]]:
        start, self.start = self.start, end
        pcm = self.samples.take(round(start * RATE), end_sample)
        self.samples.drop_before(end_sample)
        if not pcm.size:
            return []
        if int(np.abs(pcm, dtype=np.int32).max()) <= SILENT_PEAK:
            self.stats.silent_seconds += pcm.size / RATE
            return []
        self.stats.pieces += 1
        return [(start, pcm)]


class _Samples:
    """The recent samples of a track, addressed by their index in the whole track."""

    def __init__(self) -> None:
        self.base = 0  # index of the first sample held
        self.parts: list[Pcm] = []

    def append(self, pcm: Pcm) -> None:
        self.parts.append(pcm)

    def take(self, first: int, end: int) -> Pcm:
        held = np.concatenate(self.parts) if len(self.parts) != 1 else self.parts[0]
        self.parts = [held] if held.size else []
        # A copy: the piece outlives this buffer (it waits for a worker).
        return held[max(0, first - self.base) : max(0, end - self.base)].copy()

    def drop_before(self, index: int) -> None:
        if not self.parts:
            self.base = max(self.base, index)
            return
        held = self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)
        cut = min(held.size, max(0, index - self.base))
        self.parts = [held[cut:].copy()] if cut < held.size else []
        self.base += cut
