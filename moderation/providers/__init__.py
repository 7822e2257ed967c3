"""Providers, looked up by alias from ``MODERATION["PROVIDERS"]``.

This module is where the site meets its providers: :func:`get_provider` resolves the
settings and the rate limiter into a :class:`ProviderContext` and hands it to the
provider's constructor, so the providers themselves never read ``moderation.conf``'s
settings nor import models (tests/unit/test_provider_boundary.py).
"""

from __future__ import annotations

from functools import cache
from types import MappingProxyType
from typing import Any

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..conf import moderation_settings
from .base import (
    AUDIO,
    CALLBACK,
    CAPABILITIES,
    FEEDBACK,
    FRAMES,
    IMAGE,
    LIVE,
    SYNC,
    VIDEO,
    Callback,
    Feedback,
    Media,
    ModerationRequest,
    Provider,
    ProviderContext,
    ReceivedCallback,
)
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
    "AUDIO",
    "CALLBACK",
    "CAPABILITIES",
    "FEEDBACK",
    "FRAMES",
    "IMAGE",
    "LIVE",
    "SYNC",
    "VIDEO",
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
    "ProviderContext",
    "ProviderError",
    "ReceivedCallback",
    "Result",
    "Slice",
    "Throttled",
    "UnknownProvider",
    "get_provider",
    "provider_context",
]


class UnknownProvider(ModerationError, LookupError):
    code = "unknown_provider"


def provider_context() -> ProviderContext:
    """The site's context for providers: every ``MODERATION`` setting resolved (read-only)
    and the ``RATE_LIMITER`` (default: the database-backed :func:`moderation.ratelimit.acquire`,
    shared by every worker)."""
    return ProviderContext(
        settings=MappingProxyType(moderation_settings.snapshot()),
        acquire=import_string(moderation_settings.RATE_LIMITER),
    )


@cache
def get_provider(alias: str | None = None) -> Provider:
    """The configured provider for ``alias`` (the default provider when None).

    Cached per process: providers may hold loaded models or HTTP sessions. The cache is
    emptied when ``MODERATION`` changes (``override_settings`` in tests).
    """
    alias = alias or moderation_settings.DEFAULT_PROVIDER
    conf = moderation_settings.providers.get(alias)
    if conf is None:
        known = ", ".join(sorted(moderation_settings.providers))
        raise UnknownProvider(f"unknown moderation provider {alias!r} (known: {known})")
    backend: type[Provider] = import_string(conf["BACKEND"])
    return backend(alias, conf.get("OPTIONS", {}), context=provider_context())


def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting in ("MODERATION", "STORAGES", "BASE_DIR", "MEDIA_ROOT"):
        get_provider.cache_clear()


setting_changed.connect(_clear_cache, dispatch_uid="moderation.providers.get_provider")
