"""Risk level -> suggestion -> action on the content object."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

from .conf import moderation_settings
from .registry import Registration

logger = logging.getLogger(__name__)


def suggestion_for(risk_level: str, registration: Registration | None = None) -> str:
    """The suggestion for a risk level: registration policy over MODERATION["POLICY"]."""
    mapping = {**moderation_settings.POLICY, **(registration.policy if registration else {})}
    return mapping.get(risk_level, "review")


def apply_block(instance: models.Model, registration: Registration, job: Any) -> None:
    """Run the registration's block action on ``instance``."""
    action = registration.block_action()
    if action == "flag":
        return
    if action == "hide":
        _set_hidden(instance, registration.hide_field, True)
        return
    if callable(action):  # on_block(instance, job)
        action(instance, job)


def apply_unblock(instance: models.Model, registration: Registration, job: Any) -> None:
    """Undo a 'hide' (a moderator approved content that was blocked)."""
    if registration.on_block == "hide":
        _set_hidden(instance, registration.hide_field, False)


def _set_hidden(instance: models.Model, field: str, value: bool) -> None:
    # A queryset update: no post_save, so hiding never triggers a new moderation.
    type(instance)._default_manager.filter(pk=instance.pk).update(**{field: value})
    setattr(instance, field, value)
