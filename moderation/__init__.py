"""Content moderation of images, videos, live streams and speech for Django.

Public API: :func:`register`, :func:`unregister`, :func:`visible` (see docs/).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def register(model, fields, **options: Any):
    """Moderate ``fields`` of ``model``; see moderation.registry.Registration for options."""
    from .registry import registry

    return registry.register(model, fields, **options)


def unregister(model) -> None:
    from .registry import registry

    registry.unregister(model)


def visible(queryset):
    """Only the objects whose registered fields all passed or were approved."""
    from .visibility import visible as _visible

    return _visible(queryset)
