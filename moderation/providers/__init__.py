"""Providers, looked up by alias from ``MODERATION["PROVIDERS"]``."""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import import_string

from .base import Callback, Feedback, Media, ModerationRequest, Provider, ReceivedCallback
from .errors import (
    AuthError,
    Expired,
    MalformedCallback,
    MediaError,
    ModerationError,
    NotSupported,
    ProviderError,
    Throttled,
)
from .result import Frame, Label, Result, Slice

__all__ = [
    "AuthError",
    "Callback",
    "Expired",
    "Feedback",
    "Frame",
    "Label",
    "MalformedCallback",
    "Media",
    "MediaError",
    "ModerationError",
    "ModerationRequest",
    "NotSupported",
    "Provider",
    "ProviderError",
    "ReceivedCallback",
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
