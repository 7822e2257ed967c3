"""Which model fields are moderated, and how.

    import moderation
    moderation.register(Post, fields=["image", "video"], on_block="hide")

Call it from ``AppConfig.ready()`` or from a ``moderation.py`` module of any installed app
(autodiscovered). Registration connects the model's signals (see handlers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.utils.module_loading import import_string

from .conf import moderation_settings
from .providers.base import MEDIA_KINDS
from .providers.result import RISK_LEVELS, SUGGESTIONS

ON_BLOCK_CHOICES = ("flag", "hide")
#: called with the model class on (un)registration
Listener = Callable[[type[models.Model]], None]


INTERVAL_RANGE = (1, 600)  # seconds, as Alibaba's video scan
MAX_FRAMES_RANGE = (5, 3600)


def validate_frame_options(interval: float | None, max_frames: int | None) -> str:
    """A readable problem with frame-capture options, or "" (shared with the command)."""
    if interval is not None and not INTERVAL_RANGE[0] <= interval <= INTERVAL_RANGE[1]:
        return f"interval={interval!r} must be within {INTERVAL_RANGE} seconds"
    if max_frames is not None and not MAX_FRAMES_RANGE[0] <= max_frames <= MAX_FRAMES_RANGE[1]:
        return f"max_frames={max_frames!r} must be within {MAX_FRAMES_RANGE}"
    return ""


class AlreadyRegistered(ImproperlyConfigured):
    pass


class NotRegistered(LookupError):
    pass


@dataclass
class Registration:
    model: type[models.Model]
    fields: list[str]
    provider: str | None = None  # None: MODERATION["DEFAULT_PROVIDER"]
    scenes: list[str] = field(default_factory=list)  # empty: the provider's defaults
    biz_type: str = ""
    kinds: dict[str, str] = field(default_factory=dict)  # field -> media kind; else guessed
    policy: dict[str, str] = field(default_factory=dict)  # risk level -> suggestion overrides
    on_block: str | Callable[..., Any] = "flag"
    hide_field: str = "hidden"
    # Video: one frame every `interval` s (1..600), at most `max_frames` (5..3600);
    # None: the provider's defaults. `audio`: moderate the soundtrack too.
    interval: float | None = None
    max_frames: int | None = None
    audio: bool = True
    options: dict[str, Any] = field(default_factory=dict)  # more provider options

    def job_options(self) -> dict[str, Any]:
        opts = dict(self.options)
        if self.interval is not None:
            opts["interval"] = self.interval
        if self.max_frames is not None:
            opts["max_frames"] = self.max_frames
        opts["audio"] = self.audio
        return opts

    def provider_alias(self) -> str:
        return self.provider or moderation_settings.DEFAULT_PROVIDER

    def block_action(self) -> Callable[..., Any] | str:
        """'flag', 'hide', or the callable ``on_block(instance, job)``."""
        if callable(self.on_block) or self.on_block in ON_BLOCK_CHOICES:
            return self.on_block
        action: Callable[..., Any] = import_string(self.on_block)
        return action

    def validate(self) -> None:
        opts = self.model._meta
        for name in self.fields:
            try:
                f = opts.get_field(name)
            except FieldDoesNotExist as exc:
                raise ImproperlyConfigured(
                    f"moderation.register({opts.label}): no field {name!r}"
                ) from exc
            if not isinstance(f, models.FileField | models.URLField | models.CharField):
                raise ImproperlyConfigured(
                    f"moderation.register({opts.label}): {name!r} is a "
                    f"{type(f).__name__}; expected a FileField, ImageField or URLField"
                )
        for name, kind in self.kinds.items():
            if name not in self.fields:
                raise ImproperlyConfigured(f"kinds names {name!r}, which is not registered")
            if kind not in MEDIA_KINDS:
                raise ImproperlyConfigured(f"kind {kind!r} of {name!r} is not one of {MEDIA_KINDS}")
        for level, suggestion in self.policy.items():
            if level not in RISK_LEVELS or suggestion not in SUGGESTIONS:
                raise ImproperlyConfigured(
                    f"policy {level!r}: {suggestion!r} - expected risk levels {RISK_LEVELS} "
                    f"mapped to suggestions {SUGGESTIONS}"
                )
        problem = validate_frame_options(self.interval, self.max_frames)
        if problem:
            raise ImproperlyConfigured(f"moderation.register({opts.label}): {problem}")
        if (isinstance(self.on_block, str) and self.on_block not in ON_BLOCK_CHOICES
                and "." not in self.on_block):
            raise ImproperlyConfigured(
                f"on_block={self.on_block!r}: use 'flag', 'hide' or a dotted path"
            )
        if self.on_block == "hide":
            try:
                hide = opts.get_field(self.hide_field)
            except FieldDoesNotExist as exc:
                raise ImproperlyConfigured(
                    f"on_block='hide' needs a BooleanField {self.hide_field!r} on {opts.label}"
                ) from exc
            if not isinstance(hide, models.BooleanField):
                raise ImproperlyConfigured(f"{opts.label}.{self.hide_field} is not a BooleanField")


class Registry:
    """The registered models. Who must act on a (un)registration, the model signal
    receivers of ``handlers.py``, subscribes (:meth:`subscribe`): the registry imports none
    of them."""

    def __init__(self) -> None:
        self._registry: dict[type[models.Model], Registration] = {}
        self._listeners: list[tuple[Listener, Listener]] = []

    def subscribe(self, on_register: Listener, on_unregister: Listener) -> None:
        """Call ``on_register(model)`` for every model registered, now and from now on, and
        ``on_unregister(model)`` when one is unregistered."""
        self._listeners.append((on_register, on_unregister))
        for model in list(self._registry):
            on_register(model)

    def register(
        self, model: type[models.Model], fields: Iterable[str], **options: Any
    ) -> Registration:
        if isinstance(fields, str):
            fields = [fields]
        if model._meta.abstract:
            raise ImproperlyConfigured(f"cannot register abstract model {model.__name__}")
        if model in self._registry:
            raise AlreadyRegistered(f"{model._meta.label} is already registered for moderation")
        registration = Registration(model=model, fields=list(fields), **options)
        registration.validate()
        self._registry[model] = registration
        for on_register, _ in self._listeners:
            on_register(model)
        return registration

    def unregister(self, model: type[models.Model]) -> None:
        if model not in self._registry:
            raise NotRegistered(f"{model._meta.label} is not registered")
        for _, on_unregister in self._listeners:
            on_unregister(model)
        del self._registry[model]

    def get(self, model: type[models.Model]) -> Registration | None:
        return self._registry.get(model)

    def __contains__(self, model: type[models.Model]) -> bool:
        return model in self._registry

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._registry.values())


registry = Registry()
