"""Voice activity: the utterances of a PCM track, as time spans.

pocketsphinx's VAD endpointer cuts the track (7 ms per 60 s, ENGINE-NOTES.md section 5);
its spans are then tidied: short gaps merged, blips dropped, long spans split. pocketsphinx
is imported on first use, not at import time (P2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .asr import RATE, Pcm

# Utterance tidying: the endpointer splits at short breaths and keeps clicks.
MERGE_GAP = 0.3  # seconds of silence below which two utterances are one
MIN_UTTERANCE = 0.2  # shorter blips are noise, not words
MAX_UTTERANCE = 15.0  # longer spans are split: search cost grows and slices get vague


@dataclass
class SpeechSegment:
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def segment(pcm: Pcm) -> list[SpeechSegment]:
    """Utterances in ``pcm``: VAD spans, tidied (short gaps merged, blips dropped, long split)."""
    if pcm.size == 0:
        return []
    duration = pcm.size / RATE
    spans = [SpeechSegment(max(0.0, a), min(duration, b)) for a, b in _vad_spans(pcm)]
    return split_long(drop_blips(merge_close(spans)))


def _vad_spans(pcm: Pcm) -> list[tuple[float, float]]:
    """Raw (start, end) speech spans from pocketsphinx's endpointer (see :class:`VadStream`)."""
    vad = VadStream()
    return vad.feed(pcm) + vad.finish()


class VadStream:
    """pocketsphinx's endpointer fed chunk by chunk: each raw span as soon as it ends.

    Written out instead of ``Segmenter.segment``, which loses speech running to the very end
    of a track whose length is a whole number of frames (and ``end_stream`` raises
    ``IndexError`` on an empty last frame). Any cut of a track into chunks gives the same
    spans as the whole track at once: the part of a frame left over waits for the next chunk.
    """

    def __init__(self) -> None:
        from pocketsphinx import Endpointer  # noqa: PLC0415 - optional, heavy (pocketsphinx)

        self._endpointer = Endpointer(sample_rate=RATE)
        self._rest = b""
        self._was_speech = False
        self.samples = 0  # fed so far

    def feed(self, pcm: Pcm) -> list[tuple[float, float]]:
        """The spans that ended inside this chunk."""
        endpointer = self._endpointer
        size = endpointer.frame_bytes
        data = self._rest + np.ascontiguousarray(pcm, dtype=np.int16).tobytes()
        whole = len(data) - len(data) % size
        spans: list[tuple[float, float]] = []
        for at in range(0, whole, size):
            endpointer.process(data[at : at + size])
            if self._was_speech and not endpointer.in_speech:
                spans.append((endpointer.speech_start, endpointer.speech_end))
            self._was_speech = endpointer.in_speech
        self._rest = data[whole:]
        self.samples += pcm.size
        return spans

    def finish(self) -> list[tuple[float, float]]:
        """The span still open when the track ends, if any."""
        if self._endpointer.in_speech:
            return [(self._endpointer.speech_start, self.samples / RATE)]
        return []


class Tidier:
    """:func:`segment`'s tidying for spans that arrive one by one: a span is final once
    the next one starts ``MERGE_GAP`` after it (or the track ends)."""

    def __init__(self) -> None:
        self._open: SpeechSegment | None = None

    def add(self, spans: list[tuple[float, float]]) -> list[SpeechSegment]:
        done: list[SpeechSegment] = []
        for a, b in spans:
            span = SpeechSegment(max(0.0, a), b)
            if self._open is not None and span.start - self._open.end < MERGE_GAP:
                self._open = SpeechSegment(self._open.start, max(self._open.end, span.end))
                continue
            if self._open is not None:
                done += split_long(drop_blips([self._open]))
            self._open = span
        return done

    def finish(self, duration: float) -> list[SpeechSegment]:
        last, self._open = self._open, None
        if last is None:
            return []
        return split_long(drop_blips([SpeechSegment(last.start, min(duration, last.end))]))


def merge_close(spans: list[SpeechSegment], gap: float = MERGE_GAP) -> list[SpeechSegment]:
    """Join spans separated by less than ``gap`` seconds (a breath inside a sentence)."""
    merged: list[SpeechSegment] = []
    for span in sorted(spans, key=lambda s: s.start):
        if merged and span.start - merged[-1].end < gap:
            merged[-1] = SpeechSegment(merged[-1].start, max(merged[-1].end, span.end))
        else:
            merged.append(SpeechSegment(span.start, span.end))
    return merged


def drop_blips(spans: list[SpeechSegment], shortest: float = MIN_UTTERANCE) -> list[SpeechSegment]:
    return [span for span in spans if span.duration >= shortest]


def split_long(spans: list[SpeechSegment], longest: float = MAX_UTTERANCE) -> list[SpeechSegment]:
    """Cut spans longer than ``longest`` into equal parts no longer than it."""
    out: list[SpeechSegment] = []
    for span in spans:
        parts = max(1, int(np.ceil(span.duration / longest)))
        step = span.duration / parts
        out.extend(
            SpeechSegment(span.start + i * step, span.start + (i + 1) * step) for i in range(parts)
        )
    return out
