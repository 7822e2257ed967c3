"""The built-in detectors: NudeNet (porn), OpenCV's QR detector (qrcode), text rules (ad).

Labels and details are those the engine gave before detectors were a list (the tests of
test_local_engine.py, test_video.py and test_animated.py hold them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np

from ....labels import make_label
from ...result import Label
from ..text_rules import TextHit, classify_text
from .base import PIXELS, TEXT, Detection, FrameInput, LazyModel, cv2_module, session_options

PORN, QRCODE, AD = "porn", "qrcode", "ad"

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

QR_DECODED_CONFIDENCE = 100.0
# Found the finder patterns but could not decode: still most likely a QR code.
QR_UNDECODED_CONFIDENCE = 70.0


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


class NudityDetector:
    """NudeNet 320n: exposed and covered body parts -> porn/sexual labels."""

    name = "nudenet"
    scenes = frozenset({PORN})
    labels = tuple(sorted(set(NUDENET_LABELS.values())))
    needs = frozenset({PIXELS})

    def __init__(self, resolution: int = 320, threads: int = 1):
        self.resolution, self.threads = int(resolution), int(threads)
        self.model: LazyModel[Any] = LazyModel(self._load)

    def _load(self) -> Any:
        import nudenet  # noqa: PLC0415 - heavy, local extra (NudeNet)
        import onnxruntime as ort  # noqa: PLC0415 - heavy, local extra (onnxruntime)

        cv2_module()
        detector = nudenet.NudeDetector(inference_resolution=self.resolution)
        # NudeDetector ignores ``providers`` and takes no SessionOptions, so its own
        # session would use every core (P3): swap in one with our thread count.
        path = os.path.join(os.path.dirname(nudenet.__file__), "320n.onnx")
        detector.onnx_session = ort.InferenceSession(
            path, sess_options=session_options(self.threads), providers=["CPUExecutionProvider"]
        )
        return detector

    def detect(self, frame: FrameInput) -> Detection:
        # NudeNet feeds BGR input to the network as BGR (P4); give it BGR.
        found = self.model.get().detect(frame.bgr)
        return Detection(nudenet_labels(found), {"nudenet": found})


class QrDetector:
    """OpenCV's Aruco QR detector: finds small codes the classic one misses, and is faster
    (ENGINE-NOTES 4). Its corners are blanked before OCR."""

    name = "qr"
    scenes = frozenset({QRCODE})
    labels = ("pt_qrCode",)
    needs = frozenset({PIXELS})

    def __init__(self) -> None:
        self.model: LazyModel[Any] = LazyModel(lambda: cv2_module().QRCodeDetectorAruco())
        self._lock = threading.Lock()  # an OpenCV object with per-call state

    def detect(self, frame: FrameInput) -> Detection:
        cv2 = cv2_module()
        gray = cv2.cvtColor(frame.bgr, cv2.COLOR_BGR2GRAY)
        detector = self.model.get()
        with self._lock:
            payload, points, _ = detector.detectAndDecode(gray)
        codes: list[dict[str, Any]] = []
        if points is not None:
            corners = np.asarray(points).reshape(-1, 2).round().astype(int).tolist()
            codes.append({"payload": payload or "", "points": corners})
        return Detection(qr_labels(codes), {"qr": codes}, [c["points"] for c in codes])


class TextRulesDetector:
    """The text rules (text_rules.py) on the frame's OCR text: contact details, traffic
    diversion, profanity, the configured KEYWORDS."""

    name = "rules"
    scenes = frozenset({AD})
    labels = ("pt_toDirectContact_tii", "profanity_offensive_tii", "<category>_tii")
    needs = frozenset({TEXT})

    def detect(self, frame: FrameInput) -> Detection:
        keywords = dict(frame.keywords) if frame.keywords is not None else None
        hits = classify_text(frame.text, keywords)
        return Detection(text_labels(hits), {"text_hits": [asdict(hit) for hit in hits]})
