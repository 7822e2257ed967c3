"""The offline speech path: decode audio, find utterances, transcribe, spot keywords, label.

This module decodes the audio, runs the analysis and cuts the evidence clips. Utterances
come from :mod:`.vad`, transcripts and keyword hits from :mod:`.asr`, labels from
:mod:`.speech_rules`; their public names are re-exported here. Measured costs are in
ENGINE-NOTES.md (sections 5 and 9):

* PyAV decodes the first audio stream to 16 kHz mono int16, the format both pocketsphinx and
  Whisper expect (0.19 s per 60 s of 48 kHz AAC).
* Decoding utterance by utterance is cheaper than one long utterance (6.7-7.4 s vs 8.4-10 s
  per 60 s) and gives each transcript a time span.

Nothing loads at import time: PyAV is imported inside functions, and so are the models in
the modules above, because workers fork from a parent that must stay model-free (P2).
"""

from __future__ import annotations

import io
import logging
import os
import re
import wave
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from ...labels import make_label
from ..errors import MediaError
from ..result import Label, Slice, worst_risk
from .asr import (
    KWS_LONG_THRESHOLD,
    KWS_THRESHOLDS,
    MAX_KWS_SEARCHES,
    POCKETSPHINX_LOGLEVEL,
    RATE,
    KeywordHit,
    KeywordSpotter,
    Pcm,
    PocketSphinxRecogniser,
    Recogniser,
    Transcript,
    WhisperRecogniser,
    Word,
    get_recogniser,
    get_spotter,
    join_words,
    kws_phrase,
    kws_threshold,
    recogniser_key,
    spot_keywords,
)
from .container import open_container, source_size
from .duration import check_reached
from .speech_rules import (
    AD,
    CUSTOMIZED,
    DIGIT_RUN,
    DIGIT_WORDS,
    INSULTS,
    MAIL_HOSTS,
    MAX_SPOKEN_ZEROS,
    NOT_A_SITE,
    PHONE_CONFIDENCE,
    PHONE_DIGITS,
    PROFANITY_LABEL,
    REPEATS,
    SPEECH_RULES,
    SPOKEN_APPS,
    SUPERSEDED_TEXT_RULES,
    SpeechHit,
    SpeechRule,
    _unique,
    classify_speech,
    keyword_labels,
    speech_label,
    spoken_phone_numbers,
)
from .vad import (
    MAX_UTTERANCE,
    MERGE_GAP,
    MIN_UTTERANCE,
    SpeechSegment,
    drop_blips,
    merge_close,
    segment,
    split_long,
)

# The public API, kept from before the split. A re-exported constant is a copy: patch it
# in the module that defines it (e.g. ``asr.MAX_KWS_SEARCHES``).
__all__ = [
    "AD", "CUSTOMIZED", "DIGIT_RUN", "DIGIT_WORDS", "HIT_SLACK", "INSULTS", "KWS_CONFIDENCE",
    "KWS_LONG_THRESHOLD", "KWS_THRESHOLDS", "MAIL_HOSTS", "MAX_KWS_SEARCHES", "MAX_LEAD_PAD",
    "MAX_SPOKEN_ZEROS", "MAX_UTTERANCE", "MERGE_GAP", "MIN_UTTERANCE", "NOT_A_SITE",
    "PHONE_CONFIDENCE", "PHONE_DIGITS", "POCKETSPHINX_LOGLEVEL", "PROFANITY_LABEL", "RATE",
    "REPEATS", "SCENE", "SPEECH_RULES", "SPOKEN_APPS", "SUPERSEDED_TEXT_RULES", "Finding",
    "KeywordHit", "KeywordSpotter", "Pcm", "PocketSphinxRecogniser", "Recogniser", "SpeechHit",
    "SpeechRule", "SpeechSegment", "Transcript", "WhisperRecogniser", "Word", "analyse_speech",
    "asr_findings",
    "attach_hits", "classify_speech", "cut", "decode_audio", "drop_blips", "get_recogniser",
    "get_spotter", "keyword_phrases", "kws_phrase", "kws_threshold", "merge_close",
    "merge_findings", "recogniser_key", "risk_words", "segment", "speech_label", "split_long",
    "spoken_phone_numbers", "spot_keywords", "to_slice", "wav_bytes",
]

logger = logging.getLogger(__name__)

SCENE = "antispam"

# Audio that starts this much later than asked for is padded with silence so that sample 0
# stays at the asked time; a larger gap is a broken timestamp, not a late track.
MAX_LEAD_PAD = 10.0

# The threshold already decided the hit; the posterior pocketsphinx reports is not calibrated.
# Decoded audio is handed on in chunks of this many seconds (320 KB each).
CHUNK_SECONDS = 10.0

KWS_CONFIDENCE = 90.0
# A keyword hit belongs to an utterance when its middle lies within it, give or take this.
HIT_SLACK = 0.3
# A whisper word belongs to the nearest utterance within this many seconds (its times are
# coarser than the VAD's), else it is dropped.
WORD_SLACK = 1.0
# Keyword spotting on top of the recogniser: measured by bench/speech_asr.py (docs/providers.md).
KEYWORD_SPOTTING_DEFAULT = True


# --- Audio --------------------------------------------------------------------------------


def decode_audio(
    source: str | os.PathLike[str] | BinaryIO,
    start: float | None = None,
    end: float | None = None,
) -> Pcm:
    """16 kHz mono int16 PCM of the first audio stream, from ``start`` to ``end`` seconds.

    Sample 0 is at ``start`` (or 0). No audio stream gives an empty array: a silent video is
    not an error, the caller decides. An undecodable file raises ``MediaError``. The whole
    span is in memory: for a file of any length use :func:`iter_pcm`.
    """
    chunks = list(iter_pcm(source, start, end))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def iter_pcm(
    source: str | os.PathLike[str] | BinaryIO,
    start: float | None = None,
    end: float | None = None,
    *,
    max_duration: float | None = None,
    chunk_seconds: float = CHUNK_SECONDS,
) -> Iterator[Pcm]:
    """:func:`decode_audio`'s samples as consecutive chunks of about ``chunk_seconds``.

    Memory does not grow with the file's length. Past ``max_duration`` seconds of decoded
    audio the file fails with ``too_long`` (its header may have declared less).
    """
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    if source_size(source) == 0:
        raise MediaError("the file is empty", code="empty_file")
    try:
        # the same demuxer and protocol allow-lists as the probe: never another file or URL
        with open_container(source) as container:
            if not container.streams.audio:
                return
            stream = container.streams.audio[0]
            yield from _decode_chunks(
                container, stream, start, end, max_duration, round(chunk_seconds * RATE)
            )
    except FileNotFoundError:
        raise  # a storage problem, not a bad file
    except (av.FFmpegError, ValueError, EOFError) as exc:
        raise MediaError(f"the audio cannot be decoded ({exc})", code="corrupt_media") from exc


def _decode_chunks(
    container: Any,
    stream: Any,
    start: float | None,
    end: float | None,
    max_duration: float | None,
    chunk: int,
) -> Iterator[Pcm]:
    import av  # noqa: PLC0415 - heavy, local extra (PyAV)

    origin = (container.start_time or 0) / av.time_base  # MPEG-TS clocks start anywhere
    if start:
        container.seek(int((start + origin) * av.time_base))  # backward, to a packet <= start
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    aligner = _Aligner(start or 0.0, end)
    batch = _Batcher(chunk)
    first: float | None = None
    for frame in container.decode(stream):
        at = (frame.time or 0.0) - origin
        if first is None:
            first = at
            batch.add(aligner.begin(first))
        if end is not None and at >= end:
            break
        for out in resampler.resample(frame):
            batch.add(aligner.take(out.to_ndarray().reshape(-1)))
        check_reached((start or 0.0) + aligner.emitted / RATE, max_duration)
        yield from batch.full()
    if first is None and stream.frames and not start:
        # The index promises packets the file does not hold: cut off after its header.
        raise MediaError("the audio stream is truncated", code="corrupt_media")
    if first is None:
        batch.add(aligner.begin(0.0))
    for out in resampler.resample(None):
        batch.add(aligner.take(out.to_ndarray().reshape(-1)))
    check_reached((start or 0.0) + aligner.emitted / RATE, max_duration)
    yield from batch.rest()


class _Aligner:
    """Cut or pad the decoded samples (sample 0 at ``first``) so that sample 0 is at
    ``start``, and stop at ``end``: one chunk at a time."""

    def __init__(self, start: float, end: float | None) -> None:
        self.start = start
        self.limit = None if end is None else max(0, round((end - start) * RATE))
        self.skip = 0
        self.emitted = 0

    def begin(self, first: float) -> Pcm:
        """The silence to put before the first sample (most often none)."""
        lead = first - self.start
        if 0 < lead <= MAX_LEAD_PAD:
            return self.take(np.zeros(round(lead * RATE), dtype=np.int16))
        if lead < 0:
            self.skip = round(-lead * RATE)
        elif lead > MAX_LEAD_PAD:
            logger.debug(
                "audio starts %.1f s after %.1f s; not padded, times may be off", lead, self.start
            )
        return np.zeros(0, dtype=np.int16)

    def take(self, pcm: Pcm) -> Pcm:
        if self.skip:
            dropped = min(self.skip, pcm.size)
            pcm, self.skip = pcm[dropped:], self.skip - dropped
        if self.limit is not None:
            pcm = pcm[: max(0, self.limit - self.emitted)]
        self.emitted += pcm.size
        return pcm.astype(np.int16, copy=False)


class _Batcher:
    """Small decoded frames gathered into chunks of ``size`` samples."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.parts: list[Pcm] = []
        self.count = 0

    def add(self, pcm: Pcm) -> None:
        if pcm.size:
            self.parts.append(pcm)
            self.count += pcm.size

    def full(self) -> Iterator[Pcm]:
        if self.count >= self.size:
            yield from self.rest()

    def rest(self) -> Iterator[Pcm]:
        if self.count:
            whole = np.ascontiguousarray(np.concatenate(self.parts))
            self.parts, self.count = [], 0
            yield whole


def wav_bytes(pcm: Pcm) -> bytes:
    """A 16 kHz mono WAV file of ``pcm``: the evidence clip of a flagged utterance."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(np.ascontiguousarray(pcm, dtype=np.int16).tobytes())
    return buf.getvalue()


def cut(pcm: Pcm, start: float, end: float) -> Pcm:
    """The samples of ``pcm`` between two times in seconds."""
    return pcm[max(0, round(start * RATE)) : max(0, round(end * RATE))]


# --- The analysis -------------------------------------------------------------------------


@dataclass
class Finding:
    """One label's evidence from one source ("asr" or "kws") inside one slice."""

    label: str
    confidence: float
    words: list[str]
    service: str


@dataclass
class _Span:
    """A slice under construction: a time span, its transcript and its findings."""

    start: float
    end: float
    text: str = ""
    findings: list[Finding] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)  # times from the start of the piece
    language: str = ""
    language_confidence: float | None = None


def analyse_speech(
    pcm: Pcm,
    *,
    keywords: dict[str, list[str]] | None,
    options: dict | None = None,
    offset: float = 0.0,
) -> list[Slice]:
    """One ``Slice`` per utterance of ``pcm`` (times + ``offset``), plus keyword-only slices.

    Each utterance is transcribed (the configured keywords as hotwords) and matched by the
    speech and text rules; with ``asr_keyword_spotting`` the keywords are also spotted over
    the whole track. Flagged slices carry a WAV clip and their risk words' times.
    """
    if pcm.size == 0:
        return []
    options = options or {}
    recogniser = get_recogniser(options)
    phrases = keyword_phrases(keywords)
    spans = [_Span(u.start, u.end) for u in segment(pcm)]
    if getattr(recogniser, "whole_piece", False):
        hear_piece(recogniser, pcm, spans, phrases)
    else:
        for span in spans:
            heard = recogniser.recognise(cut(pcm, span.start, span.end), phrases)
            shift = [Word(w.text, w.start + span.start, w.end + span.start) for w in heard.words]
            span.text, span.words = heard.text, shift
            span.language, span.language_confidence = heard.language, heard.language_confidence
    for span in spans:
        span.findings = asr_findings(span.text, keywords)
    spotting = options.get("asr_keyword_spotting", KEYWORD_SPOTTING_DEFAULT)
    hits = spot_keywords(pcm, phrases) if phrases and spotting else []
    spans = attach_hits(spans, hits, keywords)
    return [to_slice(span, pcm, offset) for span in spans]


def hear_piece(recogniser: Recogniser, pcm: Pcm, spans: list[_Span], phrases: list[str]) -> None:
    """Transcribe the whole piece at once and give each utterance the words said in it.

    Whisper encodes 30 s windows whatever the input's length (~2 s for base on one thread),
    so one call per piece costs what one call per utterance would. A word belongs to the
    utterance its middle is nearest to; words further than ``WORD_SLACK`` from every
    utterance are dropped (the VAD heard nothing there: likely an echo of the prompt).
    """
    if not spans:
        return
    heard = recogniser.recognise(pcm, phrases)
    for word in heard.words:
        middle = (word.start + word.end) / 2
        span = min(spans, key=lambda s: max(s.start - middle, middle - s.end, 0.0))
        if max(span.start - middle, middle - span.end) <= WORD_SLACK:
            span.words.append(word)
    for span in spans:
        span.text = join_words(span.words)
        span.language, span.language_confidence = heard.language, heard.language_confidence


def keyword_phrases(keywords: dict[str, list[str]] | None) -> list[str]:
    """Every configured keyword of every category, once."""
    return _unique(word for words in (keywords or {}).values() for word in words)


def asr_findings(text: str, keywords: dict[str, list[str]] | None) -> list[Finding]:
    return [
        Finding(hit.label, hit.confidence, hit.risk_words, "asr")
        for hit in classify_speech(text, keywords)
    ]


def attach_hits(
    spans: list[_Span], hits: list[KeywordHit], keywords: dict[str, list[str]] | None = None
) -> list[_Span]:
    """Add each keyword hit to the utterance it falls in, or to a slice of its own.

    A hit is labelled with its category's speech label (``keyword_labels``), as the same
    words in a transcript are.

    Hits outside every utterance (speech the VAD missed) that overlap each other share one
    slice; it has no transcript, so its ``text`` stays empty.
    """
    loose: list[_Span] = []
    for hit in hits:
        findings = [Finding(label, KWS_CONFIDENCE, [hit.phrase], "kws")
                    for label in keyword_labels(hit.phrase, keywords)]
        middle = (hit.start + hit.end) / 2
        home = next(
            (s for s in spans if s.start - HIT_SLACK <= middle <= s.end + HIT_SLACK), None
        )
        if home is None and loose and hit.start <= loose[-1].end:
            home = loose[-1]
            home.end = max(home.end, hit.end)
        if home is None:
            home = _Span(hit.start, hit.end)
            loose.append(home)
        home.findings.extend(findings)
    return sorted(spans + loose, key=lambda s: s.start)


def merge_findings(findings: list[Finding]) -> list[Label]:
    """One label per name: best confidence, every word, and which services found it."""
    by_label: dict[str, list[Finding]] = {}
    for finding in findings:
        by_label.setdefault(finding.label, []).append(finding)
    return [_label(name, group) for name, group in by_label.items()]


def _label(name: str, group: list[Finding]) -> Label:
    services = {f.service for f in group}
    service = "+".join(s for s in ("asr", "kws") if s in services)
    confidence = max(f.confidence for f in group)
    return make_label(name, confidence, service, SCENE, ", ".join(risk_words(group)))


def risk_words(findings: Iterable[Finding]) -> list[str]:
    """The words of some findings, once each, without those said inside a longer one
    ("gmail dot com" inside "john at gmail dot com")."""
    words = _unique(word for finding in findings for word in finding.words)
    return [w for w in words if not any(w != o and f" {w} " in f" {o} " for o in words)]


def to_slice(span: _Span, pcm: Pcm, offset: float) -> Slice:
    labels = merge_findings(span.findings)
    risk = worst_risk(label.risk_level for label in labels)
    return Slice(
        start=round(span.start + offset, 2),
        end=round(span.end + offset, 2),
        text=span.text,
        labels=labels,
        risk_words=risk_words(span.findings),
        risk_level=risk,
        audio=wav_bytes(cut(pcm, span.start, span.end)) if risk != "none" else None,
        language=span.language,
        language_confidence=span.language_confidence,
        words=word_times(risk_words(span.findings), span.words, offset),
    )


def word_times(phrases: list[str], words: list[Word], offset: float) -> list[dict]:
    """Where each risk phrase was said: its first and last word's times (+ ``offset``).

    Words and phrase are compared without case, spaces and punctuation, so "example.com"
    is found in the words "example" ".com", and "cheap pills" inside "cheappills.com". A
    phrase not in the words (a keyword-spotting hit, digits read out) gets no entry.
    """
    keys = [_word_key(w.text) for w in words]
    out = []
    for phrase in phrases:
        wanted = _word_key(phrase)
        for i in range(len(keys)) if wanted else ():
            joined, j = keys[i], i
            while len(joined) < len(wanted) and j + 1 < len(keys) and keys[i]:
                j += 1
                joined += keys[j]
            if joined == wanted or (i == j and wanted in joined):
                out.append({"word": phrase, "start": round(float(words[i].start) + offset, 2),
                            "end": round(float(words[j].end) + offset, 2)})
    return out


def _word_key(text: str) -> str:
    return re.sub(r"[^\w]+", "", text.casefold())
