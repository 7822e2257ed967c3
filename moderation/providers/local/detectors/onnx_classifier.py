"""A generic ONNX image classifier: a site's own model file, its label map and thresholds.

For a violence, weapons or logo classifier a site trained or licensed::

    MODERATION["DETECTORS"] = [{
        "class": "moderation.providers.local.detectors.onnx_classifier.OnnxClassifier",
        "options": {"model": "/srv/models/weapons.onnx", "scenes": ["terrorism"],
                    "labels": {"0": None, "1": "violent_weapon"}, "threshold": 60,
                    "input_size": 224, "mean": [0.485, 0.456, 0.406],
                    "std": [0.229, 0.224, 0.225]},
    }]

The model takes one image (``layout`` NCHW or NHWC, ``channels`` RGB or BGR, float32 of
``pixel / 255``, then ``(x - mean) / std``) and gives one row of class scores: logits
(``output: "logits"``, softmax applied), probabilities, or independent sigmoid scores
(``output: "sigmoid"``, multi-label). A class mapped to a label gives it when its score x
100 reaches the threshold; ``null`` classes ("safe") give nothing. onnxruntime runs it on
``threads`` threads (1: one process per core is faster on small models, ENGINE-NOTES P3).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ....labels import make_label
from .base import (
    PIXELS,
    Detection,
    FrameInput,
    LazyModel,
    canonical_scene,
    cv2_module,
    session_options,
)

OUTPUTS = ("probabilities", "logits", "sigmoid")


class OnnxClassifier:
    """One ONNX image classifier; the session is created on first use in each process."""

    needs = frozenset({PIXELS})

    def __init__(
        self,
        model: str,
        labels: Mapping[str, str | None],
        scenes: list[str],
        threshold: float | Mapping[str, float] = 50,
        input_size: int | list[int] = 224,
        mean: list[float] = (0.0, 0.0, 0.0),  # type: ignore[assignment]
        std: list[float] = (1.0, 1.0, 1.0),  # type: ignore[assignment]
        channels: str = "rgb",
        layout: str = "nchw",
        output: str = "probabilities",
        name: str = "",
        threads: int = 1,
    ):
        if not isinstance(model, str) or not os.path.isfile(model):
            raise ValueError(f"model {model!r} is not a readable file")
        self.model_path = model
        self.name = name or "onnx_" + os.path.splitext(os.path.basename(model))[0]
        if isinstance(scenes, str) or not scenes:
            raise ValueError("scenes must be a non-empty list of scene names")
        self.scene_list = [canonical_scene(str(scene)) for scene in scenes]
        self.scenes = frozenset(self.scene_list)
        self.classes = _class_map(labels)
        self.labels = tuple(sorted(set(self.classes.values())))
        self.thresholds = _thresholds(threshold, self.labels)
        self.width, self.height = _size(input_size)
        self.mean = _triple("mean", mean)
        self.std = _triple("std", std)
        if not np.all(self.std):
            raise ValueError("std may not contain 0")
        self.channels = str(channels).lower()
        if self.channels not in ("rgb", "bgr"):
            raise ValueError(f"channels must be 'rgb' or 'bgr', got {channels!r}")
        self.layout = str(layout).lower()
        if self.layout not in ("nchw", "nhwc"):
            raise ValueError(f"layout must be 'nchw' or 'nhwc', got {layout!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        self.threads = int(threads)
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        self.session: LazyModel[Any] = LazyModel(self._load)

    def _load(self) -> Any:
        import onnxruntime as ort  # noqa: PLC0415 - heavy, local extra (onnxruntime)


        return ort.InferenceSession(self.model_path, sess_options=session_options(self.threads),
                                    providers=["CPUExecutionProvider"])

    def preprocess(self, bgr: np.ndarray) -> np.ndarray:
        """The frame as the model's one-image batch (float32)."""
        cv2 = cv2_module()
        image = cv2.resize(bgr, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.channels == "rgb":
            image = image[..., ::-1]
        tensor = (image.astype(np.float32) / 255.0 - self.mean) / self.std
        if self.layout == "nchw":
            tensor = tensor.transpose(2, 0, 1)
        return np.ascontiguousarray(tensor[np.newaxis], dtype=np.float32)

    def scores(self, bgr: np.ndarray) -> np.ndarray:
        session = self.session.get()
        feed = {session.get_inputs()[0].name: self.preprocess(bgr)}
        row = np.asarray(session.run(None, feed)[0], dtype=np.float64).reshape(-1)
        if self.output == "logits":
            row = np.exp(row - row.max())
            row = row / row.sum()
        elif self.output == "sigmoid":
            row = 1.0 / (1.0 + np.exp(-row))
        return row

    def detect(self, frame: FrameInput) -> Detection:
        row = self.scores(frame.bgr)
        if max(self.classes, default=-1) >= row.size:
            raise ValueError(f"{self.name}: the model gives {row.size} scores, the label map "
                             f"names class {max(self.classes)}")
        found: dict[str, float] = {}
        for index, label in self.classes.items():
            confidence = float(row[index]) * 100
            if confidence >= self.thresholds[label]:
                found[label] = max(found.get(label, 0.0), confidence)
        labels = [make_label(label, confidence, self.name, self.scene_list[0])
                  for label, confidence in found.items()]
        return Detection(labels, {self.name: [round(float(v), 4) for v in row]})


def _class_map(labels: Mapping[str, str | None]) -> dict[int, str]:
    if not isinstance(labels, Mapping) or not labels:
        raise ValueError("labels must map class indexes to label names (or null)")
    classes = {}
    for key, label in labels.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            raise ValueError(f"labels: {key!r} is not a class index") from None
        if index < 0:
            raise ValueError(f"labels: class index {index} is negative")
        if label is None:
            continue
        if not isinstance(label, str) or not label:
            raise ValueError(f"labels: class {index} maps to {label!r}, not a label name")
        classes[index] = label
    if not classes:
        raise ValueError("labels: every class maps to null, so nothing could be found")
    return classes


def _thresholds(threshold: Any, labels: tuple[str, ...]) -> dict[str, float]:
    if isinstance(threshold, Mapping):
        values = {label: threshold.get(label, 50) for label in labels}
    else:
        values = dict.fromkeys(labels, threshold)
    for label, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ValueError(f"threshold of {label!r} must be 0..100, got {value!r}")
    return {label: float(value) for label, value in values.items()}


def _size(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f"input_size must be a positive int or [width, height], got {value!r}")
    return int(value[0]), int(value[1])


def _triple(name: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32).reshape(3)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be three numbers, got {value!r}") from None
    return array
