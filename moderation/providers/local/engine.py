"""The offline image engine: PDQ hash libraries, NudeNet, QR codes, OCR + text rules.

One call analyses one BGR frame, so the video path can reuse it frame by frame. Measured
costs and the pitfalls (P1..P8) behind the choices here are in ENGINE-NOTES.md:

* Nothing loads at import time, and the heavy libraries are imported inside functions:
  django-q2 forks its workers from a parent that must stay model-free (P2). Each model is
  loaded on first use, once per process, behind a lock; a scene that is never asked for
  never costs memory (RapidOCR alone is about 250 MB after its first call).
* ``cv2.setNumThreads(1)`` runs once per process before any cv2 work (fork deadlock, P2).
* Every ONNX session gets ``intra_op_threads`` threads: one process per core beats more
  threads per process on these small models (P3, P5).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ...labels import make_label
from ..errors import ProviderError
from ..result import Label
from .text_rules import TextHit, classify_text

PORN, QRCODE, AD, LIB = "porn", "qrcode", "ad", "lib"
# Scene names a request may use -> the detector family that serves them.
SCENES = {"porn": PORN, "qrcode": QRCODE, "ad": AD, "antispam": AD, "text": AD}

# NudeNet class -> Alibaba 2.0 label. Classes not listed (faces, feet, belly, armpits,
# male breast) are kept in the details but give no label.
NUDENET_LABELS: dict[str, str] = {
    "FEMALE_GENITALIA_EXPOSED": "pornographic_adultContent",
    "MALE_GENITALIA_EXPOSED": "pornographic_adultContent",
    "ANUS_EXPOSED": "pornographic_adultContent",
    "FEMALE_BREAST_EXPOSED": "pornographic_adultContent",
    "BUTTOCKS_EXPOSED": "sexual_partialNudity",
    "FEMALE_GENITALIA_COVERED": "sexual_suggestiveContent",
    "FEMALE_BREAST_COVERED": "sexual_suggestiveContent",
    "BUTTOCKS_COVERED": "sexual_suggestiveContent",
    "ANUS_COVERED": "sexual_suggestiveContent",
}

# OCR lines scored below this are kept in the details but not read by the text rules:
# PP-OCR's misreadings of textures (trees, ripples) score about 0.5.
MIN_TEXT_SCORE = 0.6

# PDQ hashes frames reduced to this longest side (see pdq_hash).
PDQ_MAX_SIDE = 2048

QR_DECODED_CONFIDENCE = 100.0
# Found the finder patterns but could not decode: still most likely a QR code.
QR_UNDECODED_CONFIDENCE = 70.0

BgrImage = NDArray[np.uint8]


class HashMatch(Protocol):
    list_type: str  # "allow" | "block"
    label: str
    distance: int


class HashLibraries(Protocol):
    def match(self, pdq_hex: str, quality: int) -> HashMatch | None: ...


@dataclass(frozen=True)
class EngineConfig:
    """The provider OPTIONS the engine uses (the others concern decoding)."""

    ocr_width: int = 960
    intra_op_threads: int = 1
    nudenet_resolution: int = 320
    pdq_threshold: int = 31

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> EngineConfig:
        options = options or {}
        return cls(**{f.name: int(options[f.name]) for f in fields(cls) if f.name in options})


# --- Process-wide state -------------------------------------------------------------------

_process_lock = threading.Lock()
_cv2_ready = False
_engines: dict[EngineConfig, LocalEngine] = {}


def _cv2() -> Any:
    """cv2, with its thread pool set to one thread once per process (P2)."""
    global _cv2_ready
    import cv2

    if not _cv2_ready:
        with _process_lock:
            if not _cv2_ready:
                cv2.setNumThreads(1)
                _cv2_ready = True
    return cv2


def get_engine(options: Mapping[str, Any] | None = None) -> LocalEngine:
    """The engine for these provider options; one per configuration per process."""
    config = EngineConfig.from_options(options)
    with _process_lock:
        engine = _engines.get(config)
        if engine is None:
            engine = _engines[config] = LocalEngine(config)
    return engine


def warm_up(options: Mapping[str, Any] | None = None) -> None:
    """Load every model and run each once (RapidOCR's first call takes about a second).

    Call it in a worker process after the fork, never in the parent.
    """
    get_engine(options).warm_up()


# --- Pure helpers -------------------------------------------------------------------------


def resolve_scenes(scenes: Iterable[str]) -> tuple[set[str], list[str]]:
    """Detector families to run, and the scene names that were not understood."""
    wanted: set[str] = set()
    ignored: list[str] = []
    for scene in scenes:
        family = SCENES.get(scene.lower())
        if family:
            wanted.add(family)
        else:
            ignored.append(scene)
    return wanted, ignored


def pdq_hash(bgr: BgrImage) -> tuple[str, int]:
    """PDQ hash (64 hex digits, ThreatExchange order) and quality (0..100).

    On the frame as analysed, at most ``PDQ_MAX_SIDE`` px on its longest side: a
    36-megapixel photo hashed at 4096 or 2048 px moved 2 bits from its full-size hash
    (the match threshold is 31), a 320-px thumbnail moves 14-16 (ENGINE-NOTES 7).
    """
    import pdqhash

    height, width = bgr.shape[:2]
    scale = PDQ_MAX_SIDE / max(height, width)
    if scale < 1:  # PDQ's float buffers take ~13 bytes a pixel: 220 MB at 4096x4096
        cv2 = _cv2()
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    bits, quality = pdqhash.compute(np.ascontiguousarray(bgr[..., ::-1]))
    # pdqhash lists the bits most significant first, as the hex form writes them.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def merge_labels(
    found: Iterable[tuple[str, float, Iterable[str]]], service: str, scene: str
) -> list[Label]:
    """One label per name from (name, confidence, notes): the best confidence, every note."""
    best: dict[str, float] = {}
    notes: dict[str, list[str]] = {}
    for name, confidence, words in found:
        best[name] = max(best.get(name, 0.0), confidence)
        bucket = notes.setdefault(name, [])
        bucket.extend(word for word in words if word not in bucket)
    return [make_label(name, best[name], service, scene, ", ".join(notes[name])) for name in best]


def nudenet_labels(detections: Iterable[Mapping[str, Any]]) -> list[Label]:
    """Labels from NudeNet detections: score x 100, the best score per label."""
    found = (
        (NUDENET_LABELS[det["class"]], float(det["score"]) * 100, [det["class"]])
        for det in detections
        if det["class"] in NUDENET_LABELS
    )
    return merge_labels(found, "nudenet", PORN)


def text_labels(hits: Iterable[TextHit]) -> list[Label]:
    """One label per text label: the best confidence, every risk word."""
    return merge_labels(((hit.label, hit.confidence, hit.risk_words) for hit in hits), "ocr", AD)


def qr_labels(codes: list[dict[str, Any]]) -> list[Label]:
    if not codes:
        return []
    payloads = [code["payload"] for code in codes if code["payload"]]
    confidence = QR_DECODED_CONFIDENCE if payloads else QR_UNDECODED_CONFIDENCE
    return [make_label("pt_qrCode", confidence, "qr", QRCODE, "; ".join(payloads))]


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of the block in ``timings[stage]``, in milliseconds."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round((time.perf_counter() - start) * 1000, 1)


# --- The engine ---------------------------------------------------------------------------


class LocalEngine:
    """Detectors for one configuration, each loaded on first use and then shared.

    ONNX sessions are safe to share between threads; RapidOCR keeps per-call state on
    itself and the QR detector is an OpenCV object, so those two are used under a lock.
    """

    def __init__(self, config: EngineConfig):
        self.config = config
        self._load_lock = threading.Lock()
        self._ocr_lock = threading.Lock()
        self._qr_lock = threading.Lock()
        self._models: dict[str, Any] = {}

    def _model(self, name: str) -> Any:
        model = self._models.get(name)
        if model is None:
            with self._load_lock:
                model = self._models.get(name)
                if model is None:
                    try:
                        model = getattr(self, f"_load_{name}")()
                    except ImportError as exc:
                        raise ProviderError(
                            f"the local provider needs {exc.name or exc}: "
                            "pip install 'django-media-moderation[local]'",
                            code="missing_dependency",
                        ) from exc
                    self._models[name] = model
        return model

    def _session_options(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.intra_op_threads
        options.inter_op_num_threads = 1
        # Spinning threads hurt on a busy shared machine (P14).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def _load_nudenet(self) -> Any:
        import os

        import nudenet
        import onnxruntime as ort

        _cv2()
        detector = nudenet.NudeDetector(inference_resolution=self.config.nudenet_resolution)
        # NudeDetector ignores ``providers`` and takes no SessionOptions, so its own
        # session would use every core (P3): swap in one with our thread count.
        path = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
        detector.onnx_session = ort.InferenceSession(
            path, sess_options=self._session_options(), providers=["CPUExecutionProvider"]
        )
        return detector

    def _load_ocr(self) -> Any:
        from rapidocr_onnxruntime import RapidOCR

        _cv2()
        # "max": never upscale; the caller downscales to ocr_width (P5).
        return RapidOCR(
            intra_op_num_threads=self.config.intra_op_threads,
            inter_op_num_threads=1,
            det_limit_type="max",
        )

    def _load_qr(self) -> Any:
        # Aruco finds small QR codes the classic detector misses, and is faster (notes 4).
        return _cv2().QRCodeDetectorAruco()

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, size=(360, 640, 3), dtype=np.uint8)
        self.analyse_image(frame, [PORN, QRCODE, AD])

    # -- detectors --

    def detect_nudity(self, bgr: BgrImage) -> list[dict[str, Any]]:
        # NudeNet feeds BGR input to the network as BGR (P4); give it BGR.
        return self._model("nudenet").detect(bgr)

    def detect_qr(self, bgr: BgrImage) -> list[dict[str, Any]]:
        cv2 = _cv2()
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        detector = self._model("qr")
        with self._qr_lock:
            payload, points, _ = detector.detectAndDecode(gray)
        if points is None:
            return []
        corners = np.asarray(points).reshape(-1, 2).round().astype(int).tolist()
        return [{"payload": payload or "", "points": corners}]

    def read_text(
        self, bgr: BgrImage, mask: Iterable[list[list[int]]] = ()
    ) -> list[dict[str, Any]]:
        """OCR lines (text, score, box in source pixels) of the frame at ``ocr_width``.

        ``mask``: polygons to blank first. PP-OCR invents CJK text on QR codes (notes 3).
        """
        cv2 = _cv2()
        height, width = bgr.shape[:2]
        scale = min(1.0, self.config.ocr_width / width)
        small = bgr
        if scale < 1.0:
            size = (self.config.ocr_width, max(1, round(height * scale)))
            small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        polygons = list(mask)
        if polygons:
            small = small.copy()
            for polygon in polygons:
                cv2.fillPoly(small, [(np.asarray(polygon) * scale).astype(np.int32)], (255,) * 3)
        ocr = self._model("ocr")
        with self._ocr_lock:
            result, _ = ocr(small)
        lines = []
        for box, text, score in result or ():  # (None, None) when there is no text (P5)
            lines.append({
                "text": text,
                "score": round(float(score), 4),
                "box": (np.asarray(box, dtype=float) / scale).round().astype(int).tolist(),
            })
        return lines

    def match_library(
        self, libraries: HashLibraries | None, pdq_hex: str, quality: int
    ) -> dict[str, Any] | None:
        """The hash-library hit within ``pdq_threshold`` bits, as a plain dict.

        The library judges the hash quality itself (it gets ``quality``).
        """
        if libraries is None:
            return None
        match = libraries.match(pdq_hex, quality)
        if match is None or match.distance > self.config.pdq_threshold:
            return None
        return {"list_type": match.list_type, "label": match.label, "distance": int(match.distance)}

    # -- the whole analysis --

    def analyse_image(
        self,
        bgr: BgrImage,
        scenes: Iterable[str],
        libraries: HashLibraries | None = None,
        keywords: dict[str, list[str]] | None = None,
    ) -> tuple[list[Label], dict[str, Any]]:
        """Labels for one frame, and JSON-safe details: raw outputs and timings in ms.

        PDQ runs first and always (its hash is what feedback adds to a library): an
        allow-list hit ends the analysis with ``nonLabel_lib``.
        """
        wanted, ignored = resolve_scenes(scenes)
        timings: dict[str, float] = {}
        details: dict[str, Any] = {
            "scenes": sorted(wanted),
            "ignored_scenes": ignored,
            "size": [int(bgr.shape[1]), int(bgr.shape[0])],
            "timings_ms": timings,
        }
        labels: list[Label] = []

        with timed(timings, "pdq"):
            pdq_hex, quality = pdq_hash(bgr)
        details["pdq"] = {"hash": pdq_hex, "quality": quality}
        match = details["library_match"] = self.match_library(libraries, pdq_hex, quality)
        if match and match["list_type"] == "allow":
            details["skipped"] = sorted(wanted)
            note = f"allow-list match at distance {match['distance']}"
            return [make_label("nonLabel_lib", 100, "pdq", LIB, note)], details
        if match:
            name = match["label"] or "blocked"
            name = name if name.endswith("_lib") else f"{name}_lib"
            note = f"block-list match at distance {match['distance']}"
            labels.append(make_label(name, 100, "pdq", LIB, note))

        if PORN in wanted:
            with timed(timings, "nudenet"):
                details["nudenet"] = self.detect_nudity(bgr)
            labels += nudenet_labels(details["nudenet"])
        if QRCODE in wanted:
            with timed(timings, "qr"):
                details["qr"] = self.detect_qr(bgr)
            labels += qr_labels(details["qr"])
        if AD in wanted:
            with timed(timings, "ocr"):
                mask = [code["points"] for code in details.get("qr", ())]
                lines = details["ocr"] = self.read_text(bgr, mask)
            with timed(timings, "rules"):
                text = "\n".join(ln["text"] for ln in lines if ln["score"] >= MIN_TEXT_SCORE)
                hits = classify_text(text, keywords)
            details["text_hits"] = [asdict(hit) for hit in hits]
            labels += text_labels(hits)

        if not labels:
            labels.append(make_label("nonLabel", 100, "local", ",".join(sorted(wanted))))
        return labels, details
