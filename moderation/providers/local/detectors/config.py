"""A site's detectors from configuration: ``DETECTORS`` entries -> detector objects.

The configuration, not the objects, crosses process boundaries: frame-pool children are
started by forkserver and see none of the parent's module state (nor its settings unless
DJANGO_SETTINGS_MODULE names a module), so each worker builds its own detectors from the
specs that come with the task. A spec is ``(dotted path, options as sorted JSON)``:
picklable, and hashable so that a process keeps one engine per configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.utils.module_loading import import_string

from .base import NEEDS, Detector, canonical_scene
from .builtin import NudityDetector, QrDetector, TextRulesDetector

DetectorSpec = tuple[str, str]


def normalize_specs(value: Any) -> tuple[DetectorSpec, ...]:
    """``["pkg.mod.Class", {"class": "pkg.mod.Other", "options": {...}}]`` -> specs.

    ``ValueError`` for anything else (a bare string, unknown keys, options that JSON cannot
    carry to a worker process).
    """
    if value is None:
        return ()
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise ValueError("DETECTORS must be a list of dotted paths or "
                         "{'class': path, 'options': {...}} dicts")
    specs = []
    options: Any
    for item in value:
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], str):
            specs.append((str(item[0]), item[1]))  # already a spec (sent to a worker)
            continue
        if isinstance(item, str):
            path, options = item, {}
        elif isinstance(item, dict):
            unknown = set(item) - {"class", "options"}
            if unknown or not isinstance(item.get("class"), str):
                raise ValueError(f"a DETECTORS entry takes 'class' (a dotted path) and "
                                 f"'options', got {sorted(item)}")
            path, options = item["class"], item.get("options") or {}
        else:
            raise ValueError(f"a DETECTORS entry must be a dotted path or a dict, got {item!r}")
        if not isinstance(options, dict):
            raise ValueError(f"{path}: options must be a dict, got {options!r}")
        try:
            encoded = json.dumps(options, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: options must be JSON values ({exc})") from None
        specs.append((path, encoded))
    return tuple(specs)


def build(spec: DetectorSpec) -> Detector:
    """Import and construct one detector; ``ImportError``, ``TypeError`` or ``ValueError``
    saying what is wrong. Constructing loads no model."""
    path, encoded = spec
    factory = import_string(path)
    try:
        detector = factory(**json.loads(encoded))
    except TypeError as exc:
        raise TypeError(f"{path}: {exc}") from exc
    check_detector(detector, path)
    return detector


def check_detector(detector: Any, where: str) -> None:
    """``TypeError`` unless ``detector`` satisfies the protocol with sensible values."""
    if not isinstance(detector, Detector):
        missing = [name for name in ("name", "scenes", "labels", "needs", "detect")
                   if not hasattr(detector, name)]
        raise TypeError(f"{where} is not a Detector (missing {', '.join(missing)})")
    if not callable(detector.detect):
        raise TypeError(f"{where}: detect is not callable")
    if not isinstance(detector.name, str) or not detector.name:
        raise TypeError(f"{where}: name must be a non-empty string")
    scenes = detector.scenes
    if isinstance(scenes, str) or not all(isinstance(s, str) for s in scenes) or not scenes:
        raise TypeError(f"{where}: scenes must be a non-empty set of scene names")
    needs = set(detector.needs)
    if not needs or not needs <= NEEDS:
        raise TypeError(f"{where}: needs must be a non-empty subset of {sorted(NEEDS)}")


def build_all(specs: Iterable[DetectorSpec], builtins: Iterable[Detector] = ()) -> list[Detector]:
    """The built-ins, then the site's detectors, names unique (timings and details)."""
    detectors = list(builtins)
    detectors += [build(spec) for spec in specs]
    seen: set[str] = set()
    for detector in detectors:
        if detector.name in seen:
            raise ValueError(f"two detectors are named {detector.name!r}")
        seen.add(detector.name)
    return detectors


def scenes_of(detector: Detector) -> frozenset[str]:
    return frozenset(canonical_scene(scene) for scene in detector.scenes)


def covered_scenes(detectors: Iterable[Detector]) -> set[str]:
    """Canonical scenes some detector serves."""
    covered: set[str] = set()
    for detector in detectors:
        covered |= scenes_of(detector)
    return covered


def configured(value: Any) -> list[Detector]:
    """The built-ins and the detectors ``value`` (a ``DETECTORS`` list) names, constructed
    as a worker would (no model loaded); errors as :func:`build`. For checks and docs."""
    return build_all(normalize_specs(value), [NudityDetector(), QrDetector(),
                                              TextRulesDetector()])
