"""Detectors of the local engine: the protocol, the built-ins, a site's own (``DETECTORS``).

* :mod:`.base`: ``Detector``, ``FrameInput``, ``Detection``, ``LazyModel``, scene names;
* :mod:`.builtin`: NudeNet (porn), QR codes (qrcode), text rules on OCR (ad);
* :mod:`.config`: ``DETECTORS`` entries -> specs (picklable) -> detector objects;
* :mod:`.onnx_classifier`: a generic ONNX image classifier a site points at its model.
* :mod:`.opennsfw`: Yahoo's open_nsfw as a second porn opinion (optional extra).

docs/providers.md, "Detectors", says how to write one.
"""

from .base import (
    KNOWN_SCENES,
    NEEDS,
    PIXELS,
    SCENE_ALIASES,
    TEXT,
    Detection,
    Detector,
    FrameInput,
    LazyModel,
    canonical_scene,
    cv2_module,
    session_options,
)
from .config import (
    DetectorSpec,
    build,
    build_all,
    check_detector,
    configured,
    covered_scenes,
    normalize_specs,
    scenes_of,
)

__all__ = [
    "KNOWN_SCENES", "NEEDS", "PIXELS", "SCENE_ALIASES", "TEXT", "Detection", "Detector",
    "DetectorSpec", "FrameInput", "LazyModel", "build", "build_all", "canonical_scene",
    "check_detector", "configured", "covered_scenes", "cv2_module", "normalize_specs", "scenes_of",
    "session_options",
]
