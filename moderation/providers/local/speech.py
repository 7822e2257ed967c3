"""The offline speech path: decode audio, find utterances, transcribe, spot keywords, label.

Measured costs and pitfalls are in ENGINE-NOTES.md (sections 5 and 9, P9, P10):

* PyAV decodes the first audio stream to 16 kHz mono int16, the format both pocketsphinx and
  Whisper expect (0.19 s per 60 s of 48 kHz AAC).
* pocketsphinx's VAD endpointer cuts the track into utterances (7 ms per 60 s). Decoding
  utterance by utterance is cheaper than one long utterance (6.7-7.4 s vs 8.4-10 s per
  60 s) and gives each transcript a time span.
* The full language model mishears rare phrases ("cheap pills" -> "cheap thrills"), so the
  configured keywords are also *spotted* over the whole track by a second decoder in
  keyword-spotting mode (RTF 0.03), with a detection threshold per phrase length.
* Transcripts have no case or punctuation and spell things out ("example dot com", "five
  five five"), so speech gets its own patterns on top of the shared text rules.

Nothing loads at import time and pocketsphinx / PyAV / faster-whisper are imported inside
functions: workers fork from a parent that must stay model-free (P2). Each model loads on
first use, once per process, behind a lock. pocketsphinx decoders are not thread-safe, so
every decoder is used under its own lock.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import re
import tempfile
import threading
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

import numpy as np
from numpy.typing import NDArray

from ...labels import risk_of
from ..errors import MediaError, NotSupported
from ..result import Label, Slice, worst_risk
from .text_rules import CONTACT, PROFANITY, SPOKEN_TLDS, View, classify_text, plain_view, words_view

logger = logging.getLogger(__name__)

Pcm = NDArray[np.int16]

RATE = 16000  # samples per second of every PCM array in this module
SCENE = "antispam"
# Alibaba 1.0 audio antispam labels.
AD, PROFANITY_LABEL, CUSTOMIZED = "ad", "profanity", "C_customized"

# Utterance tidying: the endpointer splits at short breaths and keeps clicks.
MERGE_GAP = 0.3  # seconds of silence below which two utterances are one
MIN_UTTERANCE = 0.2  # shorter blips are noise, not words
MAX_UTTERANCE = 15.0  # longer spans are split: search cost grows and slices get vague
# Audio that starts this much later than asked for is padded with silence so that sample 0
# stays at the asked time; a larger gap is a broken timestamp, not a late track.
MAX_LEAD_PAD = 10.0

# KWS detection thresholds by letters in the phrase (ENGINE-NOTES 5: 18/18 hits, 1 false
# alarm on flite speech). Short words need a strict threshold or they fire on anything.
KWS_THRESHOLDS = ((5, 1e-3), (9, 1e-8))
KWS_LONG_THRESHOLD = 1e-15
# The threshold already decided the hit; the posterior pocketsphinx reports is not calibrated.
KWS_CONFIDENCE = 90.0
# A keyword hit belongs to an utterance when its middle lies within it, give or take this.
HIT_SLACK = 0.3
# Keyword searches kept per decoder; past this the decoder is rebuilt (about 0.1 s).
MAX_KWS_SEARCHES = 32
POCKETSPHINX_LOGLEVEL = "ERROR"  # INFO prints hundreds of lines per decoder


# --- Audio --------------------------------------------------------------------------------


def decode_audio(
    source: str | os.PathLike[str] | BinaryIO,
    start: float | None = None,
    end: float | None = None,
) -> Pcm:
    """16 kHz mono int16 PCM of the first audio stream, from ``start`` to ``end`` seconds.

    Sample 0 is at ``start`` (or 0). No audio stream gives an empty array: a silent video is
    not an error, the caller decides. An undecodable file raises ``MediaError``.
    """
    import av

    if hasattr(source, "seek"):
        source.seek(0)
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.audio:
                return np.zeros(0, dtype=np.int16)
            return _decode_stream(container, container.streams.audio[0], start, end)
    except FileNotFoundError:
        raise  # a storage problem, not a bad file
    except (av.FFmpegError, ValueError, EOFError) as exc:
        raise MediaError(f"the audio cannot be decoded ({exc})", code="corrupt_media") from exc


def _decode_stream(container: Any, stream: Any, start: float | None, end: float | None) -> Pcm:
    import av

    origin = (container.start_time or 0) / av.time_base  # MPEG-TS clocks start anywhere
    if start:
        container.seek(int((start + origin) * av.time_base))  # backward, to a packet <= start
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    chunks: list[Pcm] = []
    first: float | None = None
    for frame in container.decode(stream):
        at = (frame.time or 0.0) - origin
        if first is None:
            first = at
        if end is not None and at >= end:
            break
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
    if first is None and stream.frames and not start:
        # The index promises packets the file does not hold: cut off after its header.
        raise MediaError("the audio stream is truncated", code="corrupt_media")
    chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    return _align(pcm.astype(np.int16, copy=False), first or 0.0, start or 0.0, end)


def _align(pcm: Pcm, first: float, start: float, end: float | None) -> Pcm:
    """Cut or pad ``pcm`` (whose sample 0 is at ``first``) so that sample 0 is at ``start``."""
    lead = first - start
    if 0 < lead <= MAX_LEAD_PAD:
        pcm = np.concatenate([np.zeros(round(lead * RATE), dtype=np.int16), pcm])
    elif lead < 0:
        pcm = pcm[round(-lead * RATE) :]
    elif lead > MAX_LEAD_PAD:
        logger.debug("audio starts %.1f s after %.1f s; not padded, times may be off", lead, start)
    if end is not None:
        pcm = pcm[: max(0, round((end - start) * RATE))]
    return np.ascontiguousarray(pcm)


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


# --- Voice activity -----------------------------------------------------------------------


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
    """Raw (start, end) speech spans from pocketsphinx's endpointer.

    Written out instead of ``Segmenter.segment``, which loses speech running to the very end
    of a track whose length is a whole number of frames (and ``end_stream`` raises
    ``IndexError`` on an empty last frame).
    """
    from pocketsphinx import Endpointer

    endpointer = Endpointer(sample_rate=RATE)
    size = endpointer.frame_bytes
    data = np.ascontiguousarray(pcm, dtype=np.int16).tobytes()
    whole = len(data) - len(data) % size
    spans: list[tuple[float, float]] = []
    was_speech = False
    for at in range(0, whole, size):
        endpointer.process(data[at : at + size])
        if was_speech and not endpointer.in_speech:
            spans.append((endpointer.speech_start, endpointer.speech_end))
        was_speech = endpointer.in_speech
    if endpointer.in_speech:  # still talking when the track ends
        spans.append((endpointer.speech_start, len(data) / 2 / RATE))
    return spans


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


# --- Recognisers --------------------------------------------------------------------------


class Recogniser(Protocol):
    def transcribe(self, pcm: Pcm) -> str:
        """The words spoken in one utterance (16 kHz mono int16), "" for none."""
        ...


class PocketSphinxRecogniser:
    """pocketsphinx with its bundled en-us acoustic model, full LM and dictionary.

    The decoder (0.3-0.5 s, +90 MB) loads on the first ``transcribe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoder: Any = None

    def load(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            self._decoder = Decoder(samprate=RATE, loglevel=POCKETSPHINX_LOGLEVEL)
        return self._decoder

    def transcribe(self, pcm: Pcm) -> str:
        if pcm.size == 0:
            return ""
        with self._lock:
            decoder = self.load()
            decoder.start_utt()
            decoder.process_raw(np.ascontiguousarray(pcm, dtype=np.int16).tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()  # None when nothing was recognised (P9)
        return hyp.hypstr.strip() if hyp is not None else ""


class WhisperRecogniser:
    """faster-whisper (CTranslate2) from a local model directory; an optional extra.

    Never downloads: ``model_path`` must be a converted model directory on disk. The package
    and the path are checked here, the model loads on the first ``transcribe``.
    """

    def __init__(
        self,
        model_path: str,
        *,
        language: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        beam_size: int = 1,
    ) -> None:
        if not model_path or not os.path.isdir(model_path):
            raise NotSupported(
                f"asr_model_path {model_path!r} is not a directory with a faster-whisper model",
                code="asr_unavailable",
            )
        try:
            import faster_whisper  # noqa: F401
        except ImportError as exc:
            raise NotSupported(
                "asr_model_path needs faster-whisper: pip install faster-whisper",
                code="asr_unavailable",
            ) from exc
        self.model_path = model_path
        self.language = language
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self._lock = threading.Lock()
        self._model: Any = None

    def load(self) -> Any:
        if self._model is None:
            from faster_whisper import WhisperModel

            try:
                self._model = WhisperModel(
                    self.model_path,
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    local_files_only=True,
                )
            except (OSError, RuntimeError, ValueError) as exc:
                message = f"cannot load the whisper model at {self.model_path!r}: {exc}"
                raise NotSupported(message, code="asr_unavailable") from exc
        return self._model

    def transcribe(self, pcm: Pcm) -> str:
        if pcm.size == 0:
            return ""
        audio = pcm.astype(np.float32) / 32768.0
        with self._lock:
            model = self.load()
            parts, _info = model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                vad_filter=False,  # the utterance is already speech
                condition_on_previous_text=False,
            )
            return " ".join(part.text.strip() for part in parts).strip()


_recognisers: dict[tuple[Any, ...], Recogniser] = {}
_recognisers_lock = threading.Lock()


def recogniser_key(options: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The configuration a recogniser is built from, as a hashable key.

    ``asr_engine`` picks the engine explicitly; otherwise ``asr_model_path`` means Whisper.
    """
    options = options or {}
    path = options.get("asr_model_path") or ""
    engine = options.get("asr_engine") or ("whisper" if path else "pocketsphinx")
    if engine == "pocketsphinx":
        return ("pocketsphinx",)
    if engine == "whisper":
        return (
            "whisper",
            str(path),
            options.get("asr_language") or None,
            str(options.get("asr_compute_type", "int8")),
            int(options.get("intra_op_threads", 1)),
            int(options.get("asr_beam_size", 1)),
        )
    raise NotSupported(
        f"asr_engine {engine!r} is not one of 'pocketsphinx', 'whisper'", code="asr_unavailable"
    )


def get_recogniser(options: Mapping[str, Any] | None = None) -> Recogniser:
    """The recogniser for these provider options; one per configuration per process."""
    key = recogniser_key(options)
    with _recognisers_lock:
        recogniser = _recognisers.get(key)
        if recogniser is None:
            recogniser = _recognisers[key] = _build_recogniser(key)
    return recogniser


def _build_recogniser(key: tuple[Any, ...]) -> Recogniser:
    if key[0] == "pocketsphinx":
        return PocketSphinxRecogniser()
    _, path, language, compute_type, threads, beam = key
    return WhisperRecogniser(
        path, language=language, compute_type=compute_type, cpu_threads=threads, beam_size=beam
    )


# --- Keyword spotting ---------------------------------------------------------------------


@dataclass
class KeywordHit:
    phrase: str  # as configured, not as normalised
    start: float
    end: float


def kws_phrase(phrase: str) -> str:
    """A keyword as the pocketsphinx dictionary spells it: lower case words, one space apart."""
    return " ".join(re.findall(r"[a-z0-9']+", phrase.casefold()))


def kws_threshold(phrase: str) -> float:
    """Detection threshold by the letters in a phrase: longer phrases may be laxer."""
    letters = sum(ch.isalpha() for ch in phrase)
    return next((value for most, value in KWS_THRESHOLDS if letters <= most), KWS_LONG_THRESHOLD)


class KeywordSpotter:
    """A pocketsphinx decoder without an LM, with one KWS search per phrase list.

    Only one search is active per decoder (P9), so this decoder is separate from the
    recogniser's. Searches are cached by their phrase list; replacing the active search in
    place would free it under the decoder, so a full cache rebuilds the decoder instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoder: Any = None
        self._searches: dict[str, str] = {}  # keyword file text -> search name

    def _load(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder

            # lm=None: no language model, only the dictionary and the acoustic model.
            self._decoder = Decoder(samprate=RATE, lm=None, loglevel=POCKETSPHINX_LOGLEVEL)
            self._searches = {}
        return self._decoder

    def missing_words(self, phrase: str) -> list[str]:
        """The words of a normalised phrase that the dictionary lacks."""
        with self._lock:
            decoder = self._load()
            return [word for word in phrase.split() if decoder.lookup_word(word) is None]

    def spot(self, pcm: Pcm, phrases: list[str]) -> list[tuple[str, float, float]]:
        """(phrase, start, end) for each detection of normalised, in-dictionary phrases."""
        if not phrases or pcm.size == 0:
            return []
        keyfile = "".join(f"{p} /{kws_threshold(p):g}/\n" for p in phrases)
        with self._lock:
            decoder = self._with_search(keyfile)
            decoder.start_utt()
            decoder.process_raw(np.ascontiguousarray(pcm, dtype=np.int16).tobytes(), full_utt=True)
            decoder.end_utt()
            frate = float(decoder.config["frate"])
            found = [
                (seg.word.strip(), seg.start_frame / frate, (seg.end_frame + 1) / frate)
                for seg in decoder.seg() or ()  # None, not [], without a hypothesis (P9)
            ]
        return found

    def _with_search(self, keyfile: str) -> Any:
        """The decoder with the search for this keyword file active (added on first use)."""
        if keyfile not in self._searches and len(self._searches) >= MAX_KWS_SEARCHES:
            self._decoder = None  # rebuilt below; never replace a live search in place
        decoder = self._load()
        name = self._searches.get(keyfile)
        if name is None:
            name = f"kws{len(self._searches)}"
            # pocketsphinx reads a keyword list with thresholds only from a file.
            with tempfile.NamedTemporaryFile("w", suffix=".kws", encoding="utf-8") as tmp:
                tmp.write(keyfile)
                tmp.flush()
                decoder.add_kws(name, tmp.name)
            self._searches[keyfile] = name
        decoder.activate_search(name)
        return decoder


_spotter: KeywordSpotter | None = None
_spotter_lock = threading.Lock()


def get_spotter() -> KeywordSpotter:
    global _spotter
    with _spotter_lock:
        if _spotter is None:
            _spotter = KeywordSpotter()
    return _spotter


def spot_keywords(pcm: Pcm, phrases: list[str]) -> list[KeywordHit]:
    """Keyword-spotting hits of ``phrases`` over the whole of ``pcm``, in time order.

    Phrases with a word the dictionary lacks (numbers, brand names, other scripts) cannot
    be spotted; they are skipped and logged at debug level rather than failing the job.
    """
    spotter = get_spotter()
    wanted: dict[str, str] = {}  # normalised -> as configured
    skipped: list[str] = []
    for phrase in phrases:
        normal = kws_phrase(phrase)
        if not normal or not re.search(r"[a-z]", normal) or spotter.missing_words(normal):
            skipped.append(phrase)
        else:
            wanted.setdefault(normal, phrase)
    if skipped:
        logger.debug("keyword spotting skips phrases not in the dictionary: %s", skipped)
    found = spotter.spot(pcm, sorted(wanted))
    hits = [KeywordHit(wanted[p], start, end) for p, start, end in found if p in wanted]
    return sorted(hits, key=lambda hit: (hit.start, hit.end))


# --- Speech text rules --------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechRule:
    """A regex over the ``words`` view of a transcript (lower case, one space between words)."""

    name: str
    label: str
    pattern: re.Pattern[str]
    confidence: float


def _speech_rule(name: str, label: str, regex: str, confidence: float) -> SpeechRule:
    return SpeechRule(name, label, re.compile(regex), confidence)


# Words that name no site before "dot com": "the dot com bubble", "polka dot com...".
NOT_A_SITE = r"the|a|an|this|that|these|those|my|your|our|his|her|its|their|polka|whole"
# Mail providers people spell out: "john at gmail dot com".
MAIL_HOSTS = r"g ?mail|yahoo|hotmail|outlook|icloud|proton ?mail|aol|qq"
# Messaging and social apps as a recogniser writes them ("what's app" -> "what s app").
SPOKEN_APPS = (
    r"whats ?app|what s app|we ?chat|telegram|snap ?chat|instagram|insta|tik ?tok|facebook"
    r"|twitter|discord|kik|skype|line|signal|viber"
)
# Insults addressed to someone: "you stupid ...", "you are so dumb".
INSULTS = r"stupid|dumb|ugly|pathetic|worthless|useless|loser|losers|jerk|scumbag|freak"

SPEECH_RULES: tuple[SpeechRule, ...] = (
    # A spelled-out site: "example dot com", "w w w dot example dot net".
    _speech_rule(
        "speech.url", AD,
        rf"\b(?!(?:{NOT_A_SITE})\b)[a-z0-9]+ dot (?:{SPOKEN_TLDS})\b(?: dot [a-z]{{2}}\b)?", 90,
    ),
    _speech_rule("speech.www", AD, r"\b(?:www|double u double u double u) dot [a-z0-9]+\b", 90),
    # A spelled-out e-mail address: "john at gmail dot com".
    _speech_rule(
        "speech.email", AD, rf"\b(?:[a-z0-9]+ )?at (?:{MAIL_HOSTS}) dot (?:{SPOKEN_TLDS})\b", 95
    ),
    # "follow me on instagram", "find me on telegram", "hit me up on snapchat".
    _speech_rule(
        "speech.follow_me", AD,
        rf"\b(?:follow|find|hit|add|message|text|call|reach|contact) me(?: up)? (?:on|at|via) "
        rf"(?:{SPOKEN_APPS})\b",
        85,
    ),
    _speech_rule(
        "speech.link", AD,
        r"\blinks? (?:is |are )?(?:in|down) (?:the|my) (?:description|bio|comments)\b"
        r"|\b(?:click|tap|check|hit) (?:on )?(?:the|this|my) links?\b",
        85,
    ),
    # "buy cheap pills now", misheard as "... know" by the LM; not "buy you know".
    _speech_rule("speech.buy_now", AD, r"\bbuy(?: [a-z0-9']+){1,4} (?:now|(?<!you )know)\b", 85),
    _speech_rule(
        "speech.free_gift", AD,
        r"\bfree (?:i ?phones?|i ?pads?|gift ?cards?|gifts?|money|cash|bitcoin|crypto|samples?"
        r"|v ?bucks|robux)\b",
        70,
    ),
    _speech_rule(
        "speech.promo_code", AD,
        r"\b(?:promo|discount|coupon|referral) codes?\b|\buse my code\b", 75,
    ),
    _speech_rule(
        "speech.insult", PROFANITY_LABEL,
        rf"\byou(?: (?:are|re|is|so|such|a|an|little|fucking))* (?:{INSULTS})\b", 80,
    ),
    _speech_rule(
        "speech.abuse", PROFANITY_LABEL,
        r"\b(?:screw|damn) you\b|\b(?:go to|burn in) hell\b|\bkill yourself\b", 80,
    ),
)

# Shared text rules replaced by a speech rule here: the shared "x dot com" also fires on
# "the dot com bubble", which a transcript says more often than a written text does.
SUPERSEDED_TEXT_RULES = frozenset({"contact.spoken_url"})

# Spoken digits: "five five five oh one oh ...". "oh" and "o" read as zero.
DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
REPEATS = {"double": 2, "triple": 3}
DIGIT_RUN = re.compile(
    r"\b(?:plus )?(?:(?:double|triple) )?(?:{d})(?: (?:(?:double|triple) )?(?:{d}))+\b".format(
        d="|".join(DIGIT_WORDS)
    )
)
PHONE_DIGITS = (7, 15)  # as many digits as a phone number has, local to international
PHONE_CONFIDENCE = 90.0
MAX_SPOKEN_ZEROS = 3  # "oh oh oh ..." is an exclamation, not a number


@dataclass
class SpeechHit:
    """A rule that fired on a transcript, with the Alibaba 1.0 audio label it gives."""

    label: str
    confidence: float
    risk_words: list[str] = field(default_factory=list)
    rule: str = ""


def classify_speech(
    text: str, keywords: dict[str, list[str]] | None = None
) -> list[SpeechHit]:
    """Every rule that fires on a transcript: the speech rules plus the shared text rules.

    Shared labels are mapped to speech labels so that both sources agree.
    """
    if not text or not text.strip():
        return []
    words = words_view(plain_view(text))
    hits = [hit for rule in SPEECH_RULES if (hit := _apply(rule, words, text))]
    phones = spoken_phone_numbers(words, text)
    if phones:
        hits.append(SpeechHit(AD, PHONE_CONFIDENCE, phones, "speech.phone"))
    for shared in classify_text(text, keywords):
        if shared.rule not in SUPERSEDED_TEXT_RULES:
            label = speech_label(shared.label)
            hits.append(SpeechHit(label, shared.confidence, shared.risk_words, shared.rule))
    return hits


def speech_label(text_label: str) -> str:
    """The audio label for a shared text-rule label (``<category>_tii`` is a keyword)."""
    if text_label == CONTACT:
        return AD
    if text_label == PROFANITY:
        return PROFANITY_LABEL
    return CUSTOMIZED


def _apply(rule: SpeechRule, words: View, source: str) -> SpeechHit | None:
    found = [
        words.source_span(source, m.start(), m.end()) for m in rule.pattern.finditer(words.text)
    ]
    return SpeechHit(rule.label, rule.confidence, _unique(found), rule.name) if found else None


def spoken_phone_numbers(words: View, source: str) -> list[str]:
    """Runs of spoken digits long enough to be a phone number, as they were said."""
    found = [
        words.source_span(source, m.start(), m.end())
        for m in DIGIT_RUN.finditer(words.text)
        if _is_spoken_phone(m.group())
    ]
    return _unique(found)


def _is_spoken_phone(run: str) -> bool:
    """7 to 15 digits, not mostly "oh", and not someone counting ("one two three ...")."""
    tokens = run.split()
    zeros = sum(token in ("oh", "o") for token in tokens)
    digits = _spoken_digits(tokens)
    low, high = PHONE_DIGITS
    if not low <= len(digits) <= high or zeros > MAX_SPOKEN_ZEROS:
        return False
    steps = {int(b) - int(a) for a, b in itertools.pairwise(digits)}
    return steps not in ({1}, {-1})


def _spoken_digits(tokens: list[str]) -> str:
    digits, repeat = [], 1
    for token in tokens:
        if token in REPEATS:
            repeat = REPEATS[token]
        elif token in DIGIT_WORDS:
            digits.append(DIGIT_WORDS[token] * repeat)
            repeat = 1
    return "".join(digits)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


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


def analyse_speech(
    pcm: Pcm,
    *,
    keywords: dict[str, list[str]] | None,
    options: dict | None = None,
    offset: float = 0.0,
) -> list[Slice]:
    """One ``Slice`` per utterance of ``pcm`` (times + ``offset``), plus keyword-only slices.

    Each utterance is transcribed and matched by the speech and text rules; the configured
    keywords are also spotted over the whole track. Flagged slices carry a WAV clip.
    """
    if pcm.size == 0:
        return []
    recogniser = get_recogniser(options)
    spans = [
        _Span(u.start, u.end, recogniser.transcribe(cut(pcm, u.start, u.end)))
        for u in segment(pcm)
    ]
    for span in spans:
        span.findings = asr_findings(span.text, keywords)
    phrases = keyword_phrases(keywords)
    hits = spot_keywords(pcm, phrases) if phrases else []
    spans = attach_hits(spans, hits)
    return [to_slice(span, pcm, offset) for span in spans]


def keyword_phrases(keywords: dict[str, list[str]] | None) -> list[str]:
    """Every configured keyword of every category, once."""
    return _unique(word for words in (keywords or {}).values() for word in words)


def asr_findings(text: str, keywords: dict[str, list[str]] | None) -> list[Finding]:
    return [
        Finding(hit.label, hit.confidence, hit.risk_words, "asr")
        for hit in classify_speech(text, keywords)
    ]


def attach_hits(spans: list[_Span], hits: list[KeywordHit]) -> list[_Span]:
    """Add each keyword hit to the utterance it falls in, or to a slice of its own.

    Hits outside every utterance (speech the VAD missed) that overlap each other share one
    slice; it has no transcript, so its ``text`` stays empty.
    """
    loose: list[_Span] = []
    for hit in hits:
        finding = Finding(CUSTOMIZED, KWS_CONFIDENCE, [hit.phrase], "kws")
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
        home.findings.append(finding)
    return sorted(spans + loose, key=lambda s: s.start)


def merge_findings(findings: list[Finding]) -> list[Label]:
    """One label per name: best confidence, every word, and which services found it."""
    by_label: dict[str, list[Finding]] = {}
    for finding in findings:
        by_label.setdefault(finding.label, []).append(finding)
    return [_label(name, group) for name, group in by_label.items()]


def _label(name: str, group: list[Finding]) -> Label:
    confidence = round(float(max(f.confidence for f in group)), 2)
    services = {f.service for f in group}
    service = "+".join(s for s in ("asr", "kws") if s in services)
    return Label(
        label=name,
        confidence=confidence,
        risk_level=risk_of(name, confidence),
        service=service,
        scene=SCENE,
        description=", ".join(risk_words(group)),
    )


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
    )
