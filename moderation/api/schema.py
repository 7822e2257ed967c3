"""OpenAPI annotations that cost nothing when drf-spectacular is absent.

The REST API needs only DRF; the schema (and its UI) is the ``api`` extra's. The views and
filters import ``extend_schema`` and friends from here: with drf-spectacular installed they
are its own, without it they are inert stand-ins, so ``include("moderation.api.urls")``
works either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import OpenApiParameter, extend_schema

    SCHEMA_AVAILABLE = True
except ImportError:  # the api extra is not installed: annotations do nothing
    SCHEMA_AVAILABLE = False

    class OpenApiTypes:  # type: ignore[no-redef]
        """The few type names the views use, as plain strings."""

        STR = "str"
        NUMBER = "number"
        DATETIME = "datetime"
        OBJECT = "object"

    class OpenApiParameter:  # type: ignore[no-redef]
        """Keeps its arguments (filters read ``name``) and nothing else."""

        def __init__(self, name: str, type: Any = None, *args: Any, **kwargs: Any) -> None:
            self.name = name
            self.type = type
            self.kwargs = kwargs

    def extend_schema(*args: Any, **kwargs: Any) -> Callable[[F], F]:  # type: ignore[no-redef]
        def decorate(view: F) -> F:
            return view

        return decorate


__all__ = ["SCHEMA_AVAILABLE", "OpenApiParameter", "OpenApiTypes", "extend_schema"]
