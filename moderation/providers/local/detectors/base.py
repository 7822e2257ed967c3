"""What a detector is: the ``Detector`` protocol, what it is given and what it gives back.

The engine owns the costs shared between detectors, so that a site's detector never pays
them twice: the frame is decoded once, OCR runs once per frame (only when a detector that
needs text is asked for) and every text detector reads the same text, and each model is
loaded once per process on first use (:class:`LazyModel`), never at import time: pool
children are started by forkserver and django-q2 forks its workers from a model-free
parent (ENGINE-NOTES P2).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ...errors import ProviderError
from ...result import Label

BgrImage = NDArray[np.uint8]
Polygon = list[list[int]]

#: What a detector may need (``Detector.needs``).
PIXELS, TEXT = "pixels", "text"
NEEDS = frozenset({PIXELS, TEXT})

#: The scenes the app knows (Alibaba's names), and the aliases the local engine accepts.
KNOWN_SCENES = ("porn", "terrorism", "ad", "qrcode", "live", "logo")
SCENE_ALIASES = {"antispam": "ad", "text": "ad"}


def canonical_scene(scene: str) -> str:
    """``"Antispam"`` -> ``"ad"``: the name detectors declare in ``scenes``."""
    scene = scene.strip().lower()
    return SCENE_ALIASES.get(scene, scene)


@dataclass
class FrameInput:
    """One frame as every detector sees it.

    ``text`` and ``text_lines`` are filled by the engine's OCR stage before the detectors
    that need ``TEXT`` run; pixel-only detectors run first and see them empty.
    """

    bgr: BgrImage  # height x width x 3, uint8, BGR (OpenCV's order), at the working size
    keywords: Mapping[str, list[str]] | None = None  # MODERATION["KEYWORDS"] or the job's
    text: str = ""  # OCR lines scoring at least MIN_TEXT_SCORE, one per line
    text_lines: list[dict[str, Any]] = field(default_factory=list)  # {"text", "score", "box"}


@dataclass
class Detection:
    """What one detector found on one frame.

    ``details``: JSON-safe entries merged into the frame's details (the job's raw result);
    key them by the detector's name. ``text_mask``: polygons (source pixels) that OCR must
    blank before it reads the frame (PP-OCR invents CJK text on QR codes).
    """

    labels: list[Label] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    text_mask: list[Polygon] = field(default_factory=list)


@runtime_checkable
class Detector(Protocol):
    """A detector of the local engine (docs/providers.md, "Writing a detector").

    Built in a worker process from its configuration (a dotted path and options), so it
    must be cheap to construct: load models in ``detect`` on first use (``LazyModel``).
    ``detect`` may be called from several threads at once.
    """

    # Read-only members (a plain class attribute satisfies each), so that a detector's
    # `labels = ("qrcode",)` type-checks as a tuple[str, ...].
    @property
    def name(self) -> str:  # key of its timings and details; short, unique in the engine
        ...

    @property
    def scenes(self) -> frozenset[str]:  # the scenes it serves (canonical: KNOWN_SCENES or new)
        ...

    @property
    def labels(self) -> tuple[str, ...]:  # the label names it may yield (docs, checks)
        ...

    @property
    def needs(self) -> frozenset[str]:  # PIXELS and/or TEXT
        ...

    def detect(self, frame: FrameInput) -> Detection: ...


T = TypeVar("T")


class LazyModel(Generic[T]):
    """A model loaded on first ``get()``, once per process, behind a lock.

    A missing package becomes ``ProviderError("missing_dependency")``: the job is retried
    once the worker has it, and the message names the install command.
    """

    def __init__(self, load: Callable[[], T], install_hint: str = "django-media-moderation[local]"):
        self._load = load
        self._hint = install_hint
        self._lock = threading.Lock()
        self._value: T | None = None

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                value = self._value
                if value is None:
                    try:
                        value = self._value = self._load()
                    except ImportError as exc:
                        raise ProviderError(
                            f"the local provider needs {exc.name or exc}: "
                            f"pip install '{self._hint}'",
                            code="missing_dependency",
                        ) from exc
        return value


# --- Process-wide helpers shared by the built-ins and site detectors ----------------------

_cv2_lock = threading.Lock()
_cv2_ready = False


def cv2_module() -> Any:
    """cv2, with its thread pool set to one thread once per process (fork deadlock, P2)."""
    global _cv2_ready
    import cv2  # noqa: PLC0415 - heavy, local extra (OpenCV)

    if not _cv2_ready:
        with _cv2_lock:
            if not _cv2_ready:
                cv2.setNumThreads(1)
                _cv2_ready = True
    return cv2


def session_options(threads: int = 1) -> Any:
    """onnxruntime SessionOptions with ``threads`` intra-op threads and no spinning.

    One process per core beats more threads per process on these small models (P3, P5);
    spinning threads hurt on a busy shared machine (P14).
    """
    import onnxruntime as ort  # noqa: PLC0415 - heavy, local extra (onnxruntime)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
