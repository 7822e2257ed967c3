"""Serves a site media file to a moderation provider through a signed, expiring URL.

Alibaba Cloud downloads the media it moderates (aliyun-api-reference.md §3.2); when the
storage has no public URL, ``providers.aliyun.media_url.public_url_for`` hands out
``/moderation/media/<token>/`` and this view answers it. The token is the only credential:
a bad or expired one gets a bare 403 (nothing about why), a missing file a 404.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.core.signing import BadSignature
from django.http import FileResponse, Http404, HttpRequest, HttpResponseForbidden
from django.views.decorators.http import require_GET

from .media_url import MAX_AGE, unsign_name


@require_GET
def signed_media(request: HttpRequest, token: str) -> FileResponse | HttpResponseForbidden:
    """The default-storage file named in ``token`` (valid ``MAX_AGE`` seconds), never cached."""
    try:
        name = unsign_name(token, max_age=MAX_AGE)
    except (BadSignature, TypeError, ValueError):
        return HttpResponseForbidden(b"", content_type="text/plain")
    try:
        handle = default_storage.open(name, "rb")
    except (FileNotFoundError, IsADirectoryError, SuspiciousFileOperation) as exc:
        raise Http404("no such file") from exc
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(
        handle, content_type=content_type, filename=PurePosixPath(name).name
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
