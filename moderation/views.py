"""Evidence, served only to users who may view jobs. Never public media."""

from __future__ import annotations

import mimetypes
import re

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from .models import AudioSlice, Frame, Job, MediaKind


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


#: the most one range answer carries when the browser asks for "bytes=N-" (video seeking)
RANGE_CHUNK = 4 * 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _job_media(job: Job):
    """(storage, name) of the file a job moderated, or Http404."""
    if job.media_kind in (MediaKind.FRAMES, MediaKind.LIVE) or not job.file_name:
        raise Http404("this job has no stored media file")
    if job.is_adhoc:
        from .storage import evidence_storage

        return evidence_storage(), job.file_name
    model = job.content_type.model_class()
    if model is None:
        raise Http404("the content type no longer exists")
    try:
        storage = model._meta.get_field(job.field_name).storage
    except Exception as exc:
        raise Http404("the media field no longer exists") from exc
    return storage, job.file_name


@require_GET
@login_required
def job_media(request, pk: int):
    """The original file of a job (image, video or audio) for the review console's player:
    only for users who may view jobs, never cached, with byte ranges so that a video
    player can seek."""
    _require_view_permission(request)
    job = get_object_or_404(Job.objects.select_related("content_type")
                            .only("pk", "media_kind", "file_name", "field_name",
                                  "content_type"), pk=pk)
    storage, name = _job_media(job)
    try:
        handle = storage.open(name, "rb")
        size = storage.size(name)
    except (FileNotFoundError, IsADirectoryError, SuspiciousFileOperation) as exc:
        raise Http404("the media file is missing") from exc
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last) if last else start + RANGE_CHUNK - 1, size - 1)
        else:  # "bytes=-N": the last N bytes
            start, end = max(size - int(last), 0), size - 1
        if start >= size or end < start:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        with handle:
            handle.seek(start)
            data = handle.read(end - start + 1)
        response = HttpResponse(data, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
    else:
        response = FileResponse(handle, content_type=content_type)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    return response
