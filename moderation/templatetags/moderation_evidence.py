"""Template filters for evidence display: ``{% load moderation_evidence %}``."""

from __future__ import annotations

from django import template

from ..admin.evidence import display_name

register = template.Library()


@register.filter
def label_name(code: str) -> str:
    """A label code's human name in the active language (``pt_qrCode`` -> "a QR code");
    templates keep the code in a ``title`` beside it."""
    return display_name(str(code))
