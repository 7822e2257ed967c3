"""The offline image engine: PDQ hash libraries, then a list of detectors, OCR shared.

One call analyses one BGR frame, so the video path can reuse it frame by frame. The
detectors (NudeNet, QR, text rules, and a site's own from ``DETECTORS``) follow the
``Detector`` protocol of :mod:`.detectors`; the engine runs those whose scenes were asked
for, pixel detectors first, then OCR once if any detector needs text, then the text
detectors on that one text. Measured costs and the pitfalls (P1..P8) behind the choices
here are in ENGINE-NOTES.md:

* Nothing loads at import time, and the heavy libraries are imported inside functions:
  django-q2 forks its workers from a parent that must stay model-free (P2). Each model is
  loaded on first use, once per process, behind a lock; a scene that is never asked for
  never costs memory (RapidOCR alone is about 250 MB after its first call).
* ``cv2.setNumThreads(1)`` runs once per process before any cv2 work (fork deadlock, P2).
* Every ONNX session gets ``intra_op_threads`` threads: one process per core beats more
  threads per process on these small models (P3, P5).

PDQ stays outside the detector list: it runs whatever the scenes (its hash is what
feedback adds to a library) and an allow-list hit stops every detector.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ...labels import make_label
from ..errors import ProviderError
from ..result import Label
from .detectors import (
    TEXT,
    Detection,
    Detector,
    DetectorSpec,
    FrameInput,
    LazyModel,
    build_all,
    canonical_scene,
    cv2_module,
    normalize_specs,
    scenes_of,
)
from .detectors.builtin import (  # noqa: F401  (re-exported: tests and older imports)
    AD,
    NUDENET_LABELS,
    PORN,
    QR_DECODED_CONFIDENCE,
    QR_UNDECODED_CONFIDENCE,
    QRCODE,
    NudityDetector,
    QrDetector,
    TextRulesDetector,
    merge_labels,
    nudenet_labels,
    qr_labels,
    text_labels,
)

LIB = "lib"

# OCR lines scored below this are kept in the details but not read by the text rules:
# PP-OCR's misreadings of textures (trees, ripples) score about 0.5.
MIN_TEXT_SCORE = 0.6

# PDQ hashes frames reduced to this longest side (see pdq_hash).
PDQ_MAX_SIDE = 2048

BgrImage = NDArray[np.uint8]

_cv2 = cv2_module  # the name the rest of the package imports


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
    detectors: tuple[DetectorSpec, ...] = ()  # a site's, after the built-ins

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> EngineConfig:
        options = options or {}
        values: dict[str, Any] = {}
        for spec in fields(cls):
            if options.get(spec.name) is None:
                continue
            if spec.name == "detectors":
                values["detectors"] = normalize_specs(options["detectors"])
            else:
                values[spec.name] = int(options[spec.name])
        return cls(**values)


# --- Process-wide state -------------------------------------------------------------------

_process_lock = threading.Lock()
_engines: dict[EngineConfig, LocalEngine] = {}


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


def resolve_scenes(
    scenes: Iterable[str], covered: Iterable[str] = (PORN, QRCODE, AD)
) -> tuple[set[str], list[str]]:
    """Canonical scenes to run (``antispam``/``text`` -> ``ad``), and the scene names that
    no detector serves."""
    covered = set(covered)
    wanted: set[str] = set()
    ignored: list[str] = []
    for scene in scenes:
        name = canonical_scene(scene)
        if name in covered:
            wanted.add(name)
        else:
            ignored.append(scene)
    return wanted, ignored


def pdq_hash(bgr: BgrImage) -> tuple[str, int]:
    """PDQ hash (64 hex digits, ThreatExchange order) and quality (0..100).

    On the frame as analysed, at most ``PDQ_MAX_SIDE`` px on its longest side: a
    36-megapixel photo hashed at 4096 or 2048 px moved 2 bits from its full-size hash
    (the match threshold is 31), a 320-px thumbnail moves 14-16 (ENGINE-NOTES 7).
    """
    import pdqhash  # noqa: PLC0415 - local extra, C extension loaded on the first hash

    height, width = bgr.shape[:2]
    scale = PDQ_MAX_SIDE / max(height, width)
    if scale < 1:  # PDQ's float buffers take ~13 bytes a pixel: 220 MB at 4096x4096
        cv2 = _cv2()
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    bits, quality = pdqhash.compute(np.ascontiguousarray(bgr[..., ::-1]))
    # pdqhash lists the bits most significant first, as the hex form writes them.
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


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
    """The detectors of one configuration, each loading its model on first use.

    RapidOCR keeps per-call state on itself, so OCR runs under a lock (one at a time per
    process); detectors take care of their own thread safety.
    """

    def __init__(self, config: EngineConfig):
        self.config = config
        builtins: list[Detector] = [
            NudityDetector(config.nudenet_resolution, config.intra_op_threads),
            QrDetector(),
            TextRulesDetector(),
        ]
        try:
            self.detectors = build_all(config.detectors, builtins)
        except (ImportError, TypeError, ValueError) as exc:
            raise ProviderError(f"a configured detector cannot be used: {exc}",
                                code="bad_detector") from exc
        self._scenes = {d.name: scenes_of(d) for d in self.detectors}
        self.covered = frozenset().union(*self._scenes.values())
        self._ocr: LazyModel[Any] = LazyModel(self._load_ocr)
        self._ocr_lock = threading.Lock()

    def _load_ocr(self) -> Any:
        from rapidocr import RapidOCR  # noqa: PLC0415 - heavy, local extra (RapidOCR)

        _cv2()
        # rapidocr 3 (its default PP-OCR models ship in the wheel: nothing is downloaded).
        # "max": never upscale; the caller downscales to ocr_width (P5).
        return RapidOCR(params={
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": self.config.intra_op_threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "Det.limit_type": "max",
        })

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        frame = rng.integers(0, 255, size=(360, 640, 3), dtype=np.uint8)
        self.analyse_image(frame, sorted(self.covered))

    def active(self, scenes: Iterable[str], read_text: bool = True) -> list[Detector]:
        """The detectors serving these scenes, in their configured order."""
        wanted, _ = resolve_scenes(scenes, self.covered)
        return [d for d in self.detectors
                if self._scenes[d.name] & wanted and (read_text or TEXT not in d.needs)]

    def needs_text(self, scenes: Iterable[str]) -> bool:
        """Would these scenes run OCR? (The OCR gate asks before it looks for text.)"""
        return any(TEXT in d.needs for d in self.active(scenes))

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
        ocr = self._ocr.get()
        with self._ocr_lock:
            result = ocr(small)
        # boxes, txts and scores are None when there is no text
        found: Iterable[tuple[Any, Any, Any]] = ()
        if result.boxes is not None and result.txts is not None:
            found = zip(result.boxes, result.txts, result.scores, strict=True)
        lines = []
        for box, text, score in found:
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
        read_text: bool = True,
    ) -> tuple[list[Label], dict[str, Any]]:
        """Labels for one frame, and JSON-safe details: raw outputs and timings in ms.

        PDQ runs first and always (its hash is what feedback adds to a library): an
        allow-list hit ends the analysis with ``nonLabel_lib``. ``read_text=False`` (the
        OCR gate found no text) skips OCR and the detectors that need it.
        """
        scenes = list(scenes)
        wanted, ignored = resolve_scenes(scenes, self.covered)
        active = self.active(scenes, read_text)
        served = sorted(set().union(*(self._scenes[d.name] for d in active)) & wanted)
        timings: dict[str, float] = {}
        details: dict[str, Any] = {
            "scenes": served,
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
            details["skipped"] = served
            note = f"allow-list match at distance {match['distance']}"
            return [make_label("nonLabel_lib", 100, "pdq", LIB, note)], details
        if match:
            name = match["label"] or "blocked"
            name = name if name.endswith("_lib") else f"{name}_lib"
            note = f"block-list match at distance {match['distance']}"
            labels.append(make_label(name, 100, "pdq", LIB, note))

        frame = FrameInput(bgr=bgr, keywords=keywords)
        mask: list[list[list[int]]] = []
        text_detectors = [d for d in active if TEXT in d.needs]
        for detector in active:
            if detector in text_detectors:
                continue
            detection = self._run(detector, frame, timings)
            mask += detection.text_mask
            details.update(detection.details)
            labels += detection.labels
        if text_detectors:
            with timed(timings, "ocr"):
                frame.text_lines = details["ocr"] = self.read_text(bgr, mask)
                frame.text = "\n".join(
                    ln["text"] for ln in frame.text_lines if ln["score"] >= MIN_TEXT_SCORE
                )
            for detector in text_detectors:
                detection = self._run(detector, frame, timings)
                details.update(detection.details)
                labels += detection.labels

        if not labels:
            labels.append(make_label("nonLabel", 100, "local", ",".join(served)))
        return labels, details

    @staticmethod
    def _run(detector: Detector, frame: FrameInput, timings: dict[str, float]) -> Detection:
        with timed(timings, detector.name):
            detection = detector.detect(frame)
        if not isinstance(detection, Detection):
            raise ProviderError(f"detector {detector.name!r} returned {type(detection).__name__}"
                                ", not a Detection", code="bad_detector")
        return detection
