"""Evidence, served only to users who may view jobs. Never public media."""

from __future__ import annotations

import mimetypes

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from .models import AudioSlice, Frame


def _serve(fieldfile):
    if not fieldfile:
        raise Http404("no evidence stored")
    try:
        handle = fieldfile.storage.open(fieldfile.name, "rb")
    except FileNotFoundError as exc:
        raise Http404("evidence file is missing") from exc
    content_type = mimetypes.guess_type(fieldfile.name)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    return response


def _require_view_permission(request) -> None:
    if not request.user.has_perm("moderation.view_job"):
        raise PermissionDenied


@require_GET
@login_required
def frame_thumbnail(request, pk: int):
    _require_view_permission(request)
    return _serve(get_object_or_404(Frame, pk=pk).thumbnail)


@require_GET
@login_required
def slice_clip(request, pk: int):
    _require_view_permission(request)
    return _serve(get_object_or_404(AudioSlice, pk=pk).clip)
