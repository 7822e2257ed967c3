"""Speech recognition: the recognisers, keyword spotting, and their per-process caches.

Measured costs are in ENGINE-NOTES.md (section 5, P9):

* ``WhisperRecogniser`` (the default) runs a Whisper model shipped in a PyPI wheel
  (whisper_models.py) with faster-whisper; ``PocketSphinxRecogniser`` is the light option,
  decoding one utterance with pocketsphinx's full language model.
* pocketsphinx's language model mishears rare phrases ("cheap pills" -> "cheap thrills"),
  so the configured keywords can also be *spotted* over the whole track by a second
  decoder in keyword-spotting mode (RTF 0.03), with a detection threshold per phrase length.

Nothing loads at import time and pocketsphinx / faster-whisper are imported inside
functions: workers fork from a parent that must stay model-free (P2). Each model loads on
first use, once per process, behind a lock. pocketsphinx decoders are not thread-safe, so
every decoder is used under its own lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import NotSupported
from .whisper_models import DEFAULT_MODEL, model_path

# The speech path's logger, as before the split, so logging configuration keeps applying.
logger = logging.getLogger(f"{__package__}.speech")

Pcm = NDArray[np.int16]

RATE = 16000  # samples per second of every PCM array of the speech path

# KWS detection thresholds by letters in the phrase (ENGINE-NOTES 5: 18/18 hits, 1 false
# alarm on flite speech). Short words need a strict threshold or they fire on anything.
KWS_THRESHOLDS = ((5, 1e-3), (9, 1e-8))
KWS_LONG_THRESHOLD = 1e-15
# Keyword searches kept per decoder; past this the decoder is rebuilt (about 0.1 s).
MAX_KWS_SEARCHES = 32
POCKETSPHINX_LOGLEVEL = "ERROR"  # INFO prints hundreds of lines per decoder


# --- Recognisers --------------------------------------------------------------------------


@dataclass
class Word:
    """One recognised word and its time in seconds from the start of the utterance.

    ``text`` is as the recogniser wrote it: Whisper's words carry their leading space (none
    before ".com", none in Chinese), so joining them gives back its transcript.
    """

    text: str
    start: float
    end: float


@dataclass
class Transcript:
    """What a recogniser heard in one utterance.

    ``language`` is an ISO 639-1 code, "" when the recogniser does not detect it
    (pocketsphinx); ``language_confidence`` is the detector's probability in [0, 1], None
    when the language was not detected but given (an English-only model, ``asr_language``).
    """

    text: str
    words: list[Word] = field(default_factory=list)
    language: str = ""
    language_confidence: float | None = None


class Recogniser(Protocol):
    def transcribe(self, pcm: Pcm) -> str:
        """The words spoken in one utterance (16 kHz mono int16), "" for none."""
        ...

    def recognise(self, pcm: Pcm, hotwords: list[str] | None = None) -> Transcript:
        """The words of one utterance with their times and language, if the engine knows."""
        ...

    def load(self) -> Any: ...


class PocketSphinxRecogniser:
    """pocketsphinx with its bundled en-us acoustic model, full LM and dictionary.

    The light option (``asr_engine="pocketsphinx"``): WER about 0.6 on synthetic speech
    (docs/providers.md). The decoder (0.3-0.5 s, +90 MB) loads on the first ``transcribe``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decoder: Any = None

    def load(self) -> Any:
        if self._decoder is None:
            from pocketsphinx import Decoder  # noqa: PLC0415 - optional, heavy (pocketsphinx)

            self._decoder = Decoder(samprate=RATE, loglevel=POCKETSPHINX_LOGLEVEL)
        return self._decoder

    def transcribe(self, pcm: Pcm) -> str:
        return self.recognise(pcm).text

    def recognise(self, pcm: Pcm, hotwords: list[str] | None = None) -> Transcript:
        """The hypothesis and its word times; ``hotwords`` are not used (the LM is fixed)."""
        if pcm.size == 0:
            return Transcript("")
        with self._lock:
            decoder = self.load()
            decoder.start_utt()
            decoder.process_raw(np.ascontiguousarray(pcm, dtype=np.int16).tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()  # None when nothing was recognised (P9)
            frate = float(decoder.config["frate"])
            words = [
                Word(seg.word, seg.start_frame / frate, (seg.end_frame + 1) / frate)
                for seg in decoder.seg() or ()
                if seg.word and not seg.word.startswith(("<", "[")) and seg.word != "(NULL)"
            ]
        for word in words:  # alternates are spelt "word(2)"
            word.text = re.sub(r"\(\d+\)$", "", word.text)
        return Transcript(hyp.hypstr.strip() if hyp is not None else "", words)


class WhisperRecogniser:
    """faster-whisper (CTranslate2) from a local model folder, decoded deterministically.

    Never downloads (``local_files_only``). Decoding is greedy at temperature 0 with no
    fallback and without conditioning on earlier text, so the same audio gives the same
    words; output that loops is cut (:func:`drop_loops`). The configured keywords go in as
    ``hotwords`` (a prompt: "cheap pills" stops coming out as "cheap peals"). Words come
    with their times. A multilingual model detects the language of each piece.
    """

    whole_piece = True  # one call per speech piece: the encoder's cost is per 30 s window

    def __init__(
        self,
        model_path: str,
        *,
        language: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        beam_size: int = 1,
        model_name: str = "",
        model_dir: str | None = None,
    ) -> None:
        if not model_name and (not model_path or not os.path.isdir(model_path)):
            raise NotSupported(
                f"asr_model_path {model_path!r} is not a directory with a faster-whisper model",
                code="asr_unavailable",
            )
        try:
            import faster_whisper  # noqa: F401, PLC0415 - optional, heavy (faster-whisper)
        except ImportError as exc:
            raise NotSupported(
                "the whisper recogniser needs faster-whisper: pip install faster-whisper "
                "(in the 'local' extra), or set asr_engine='pocketsphinx'",
                code="asr_unavailable",
            ) from exc
        self.model_path = model_path
        self.model_name = model_name  # a shipped model (whisper_models.py), checked at load
        self.model_dir = model_dir
        self.language = language
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self._lock = threading.Lock()
        self._model: Any = None

    def load(self) -> Any:
        if self._model is None:
            path = str(model_path(self.model_name, self.model_dir)) if self.model_name else (
                self.model_path
            )
            try:
                self._model = _model_class()(
                    path,
                    device="cpu",
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                    num_workers=1,
                    local_files_only=True,
                )
            except (OSError, RuntimeError, ValueError) as exc:
                message = f"cannot load the whisper model at {path!r}: {exc}"
                raise NotSupported(message, code="asr_unavailable") from exc
        return self._model

    def transcribe(self, pcm: Pcm) -> str:
        return self.recognise(pcm).text

    def recognise(self, pcm: Pcm, hotwords: list[str] | None = None) -> Transcript:
        if pcm.size == 0:
            return Transcript("")
        audio = pcm.astype(np.float32) / 32768.0
        with self._lock:
            model = self.load()
            language, confidence = self.language, None
            if language is None and model.model.is_multilingual:
                language, confidence = _detect_language(model, audio)
            parts, _info = model.transcribe(
                audio,
                language=language or "en",
                beam_size=self.beam_size,
                temperature=0.0,  # one temperature: no sampling fallback, same words each run
                condition_on_previous_text=False,
                # kept at their defaults: with one temperature they no longer start a
                # fallback, they only drop a window that is likely no speech (where the
                # hotwords prompt would otherwise be echoed back)
                no_speech_threshold=0.6,
                log_prob_threshold=-1.0,
                word_timestamps=True,
                hotwords=hotword_prompt(hotwords),
                vad_filter=False,  # the utterance is already speech
                without_timestamps=False,
            )
            words = [
                Word(w.word, round(float(w.start), 3), round(float(w.end), 3))
                for part in parts
                for w in part.words or ()
                if w.word.strip()
            ]
        words = drop_loops(words)
        return Transcript(join_words(words), words, language or "en", confidence)


# The hotwords prompt is cut to this many characters (whisper's prompt holds ~223 tokens).
MAX_HOTWORDS_CHARS = 400
# A word run repeated more than this many times in a row is a decoding loop.
MAX_REPEATS = 3
MAX_LOOP_WORDS = 6


def join_words(words: list[Word]) -> str:
    """A transcript from Whisper's words, which carry their own spacing."""
    return "".join(w.text for w in words).strip()


def hotword_prompt(hotwords: list[str] | None) -> str | None:
    """The keyword phrases as one prompt, most of them if they are many; None for none."""
    prompt = ", ".join(dict.fromkeys(p.strip() for p in hotwords or () if p.strip()))
    return prompt[:MAX_HOTWORDS_CHARS].rsplit(",", 1)[0] if len(prompt) > MAX_HOTWORDS_CHARS else (
        prompt or None
    )


def drop_loops(words: list[Word]) -> list[Word]:
    """Words with any run of 1-6 words said more than :data:`MAX_REPEATS` times in a row cut
    back to that many: whisper sometimes repeats a phrase until the window ends."""
    keys = [re.sub(r"\W+", "", w.text.casefold()) for w in words]
    keep = list(range(len(words)))
    size = 1
    while size <= MAX_LOOP_WORDS:
        out: list[int] = []
        i = 0
        while i < len(keep):
            gram = [keys[k] for k in keep[i : i + size]]
            runs = 1
            while keep[i + runs * size : i + (runs + 1) * size] and [
                keys[k] for k in keep[i + runs * size : i + (runs + 1) * size]
            ] == gram:
                runs += 1
            if runs > MAX_REPEATS and len(gram) == size:
                out += keep[i : i + MAX_REPEATS * size]
                i += runs * size
            else:
                out.append(keep[i])
                i += 1
        keep = out
        size += 1
    return [words[k] for k in keep]


def _detect_language(model: Any, audio: NDArray[np.float32]) -> tuple[str, float]:
    """The language of the first 30 s window and its probability.

    The window is the one transcription then encodes first, so the encoder output is reused
    (:func:`_model_class`); faster-whisper's own detection pads it differently.
    """
    from faster_whisper.audio import pad_or_trim  # noqa: PLC0415 - optional, heavy (faster-whisper)

    features = model.feature_extractor(audio)
    content = features.shape[-1] - 1  # as faster-whisper's transcription counts frames
    window = pad_or_trim(features[:, : min(model.feature_extractor.nb_max_frames, content)])
    token, probability = model.model.detect_language(model.encode(window))[0][0]
    return token[2:-2], round(float(probability), 3)


_model_classes: list[type] = []


def _model_class() -> type:
    """faster-whisper's ``WhisperModel``, encoding the same 30 s window only once.

    Detecting the language encodes the first window, then transcription encodes it again
    (faster-whisper 1.2.1): 45 % of the time of a 30 s piece with Whisper base. The last
    window's encoder output is kept and reused when the same features come back (one
    entry, ~3 MB; the recogniser's lock serialises its use).
    """
    if not _model_classes:
        from faster_whisper import WhisperModel  # noqa: PLC0415 - optional, heavy (faster-whisper)

        class ReusingEncoder(WhisperModel):
            _last: tuple[bytes, Any] | None = None

            def encode(self, features: Any) -> Any:
                array = np.ascontiguousarray(features)
                key = hashlib.blake2b(array.tobytes(), digest_size=16).digest()
                key += repr(array.shape).encode()
                if self._last is not None and self._last[0] == key:
                    return self._last[1]
                output = super().encode(features)
                self._last = (key, output)
                return output

        _model_classes.append(ReusingEncoder)
    return _model_classes[0]


_recognisers: dict[tuple[Any, ...], Recogniser] = {}
_recognisers_lock = threading.Lock()


def recogniser_key(options: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The configuration a recogniser is built from, as a hashable key.

    ``asr_engine`` is ``"whisper"`` (the default) or ``"pocketsphinx"``. Whisper runs the
    shipped ``asr_model`` (``"base"``, or ``"tiny.en"``) unless ``asr_model_path`` names a
    model folder of one's own (used as is, without the sha256 check).
    """
    options = options or {}
    path = options.get("asr_model_path") or ""
    engine = options.get("asr_engine") or "whisper"
    if engine == "pocketsphinx":
        return ("pocketsphinx",)
    if engine == "whisper":
        name = "" if path else str(options.get("asr_model") or DEFAULT_MODEL)
        return (
            "whisper",
            str(path),
            name,
            str(options.get("asr_model_dir") or "") or None,
            options.get("asr_language") or None,
            str(options.get("asr_compute_type", "int8")),
            int(options.get("intra_op_threads", 1)),
            int(options.get("asr_beam_size", 1)),
        )
    raise NotSupported(
        f"asr_engine {engine!r} is not one of 'whisper', 'pocketsphinx'", code="asr_unavailable"
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
    _, path, name, model_dir, language, compute_type, threads, beam = key
    return WhisperRecogniser(
        path, language=language, compute_type=compute_type, cpu_threads=threads,
        beam_size=beam, model_name=name, model_dir=model_dir,
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
            from pocketsphinx import Decoder  # noqa: PLC0415 - optional, heavy (pocketsphinx)

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
