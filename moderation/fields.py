"""Model and form fields for stream URLs (schemes and checks of ``StreamURLValidator``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models

from .validators import StreamURLValidator


class StreamURLFormField(forms.URLField):
    default_validators = [StreamURLValidator()]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{"assume_scheme": "https", **kwargs})


# Unparametrised on purpose: django-stubs' plugin then gives a model's attribute the
# URLField's own get/set types (str), as for any URLField.
class StreamURLField(models.URLField):  # type: ignore[type-arg]
    """A ``URLField`` for live streams: rtmp(s), rtsp, srt and http(s), no private literal."""

    default_validators = [StreamURLValidator()]

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": StreamURLFormField, **kwargs})
