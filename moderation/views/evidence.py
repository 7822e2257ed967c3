"""Evidence, served only to users who may view jobs. Never public media.

Every file goes through ``serving.serve_file``: an allow-listed media type or a download,
never a page that runs script (docs/admin.md, "Evidence and media serving").
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from ..models import AudioSlice, Frame, Job, MediaKind
from ..serving import serve_file
from ..storage import evidence_storage


def _serve(request, fieldfile):
    if not fieldfile:
        raise Http404("no evidence stored")
    return serve_file(request, fieldfile.storage, fieldfile.name)


def _require_view_permission(request) -> None:
    if not request.user.has_perm("moderation.view_job"):
        raise PermissionDenied


@require_GET
@login_required
def frame_thumbnail(request, pk: int):
    _require_view_permission(request)
    return _serve(request, get_object_or_404(Frame, pk=pk).thumbnail)


@require_GET
@login_required
def slice_clip(request, pk: int):
    _require_view_permission(request)
    return _serve(request, get_object_or_404(AudioSlice, pk=pk).clip)


def _job_media(job: Job):
    """(storage, name) of the file a job moderated, or Http404."""
    if job.media_kind in (MediaKind.FRAMES, MediaKind.LIVE) or not job.file_name:
        raise Http404("this job has no stored media file")
    if job.is_adhoc:
        return evidence_storage(), job.file_name
    model = job.content_type.model_class() if job.content_type else None
    if model is None:
        raise Http404("the content type no longer exists")
    try:
        field = model._meta.get_field(job.field_name)
        if not isinstance(field, models.FileField):
            raise TypeError(f"{job.field_name} holds no file")
        storage = field.storage
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
    return serve_file(request, storage, name)
