"""Providers, looked up by alias from ``MODERATION["PROVIDERS"]``."""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from .base import Feedback, Media, ModerationRequest, Provider
from .errors import (
    AuthError,
    Expired,
    MediaError,
    ModerationError,
    NotSupported,
    ProviderError,
    Throttled,
)
from .result import Frame, Label, Result, Slice

__all__ = [
    "AuthError",
    "Expired",
    "Feedback",
    "Frame",
    "Label",
    "Media",
    "MediaError",
    "ModerationError",
    "ModerationRequest",
    "NotSupported",
    "Provider",
    "ProviderError",
    "Result",
    "Slice",
    "Throttled",
    "UnknownProvider",
    "get_provider",
]


class UnknownProvider(ModerationError, LookupError):
    code = "unknown_provider"


@cache
def get_provider(alias: str | None = None) -> Provider:
    """The configured provider for ``alias`` (the default provider when None).

    Cached per process: providers may hold loaded models or HTTP sessions.
    """
    from ..conf import moderation_settings

    alias = alias or moderation_settings.DEFAULT_PROVIDER
    conf = moderation_settings.providers.get(alias)
    if conf is None:
        known = ", ".join(sorted(moderation_settings.providers))
        raise UnknownProvider(f"unknown moderation provider {alias!r} (known: {known})")
    backend = import_string(conf["BACKEND"])
    return backend(alias, conf.get("OPTIONS", {}))
