"""Site media served by the app: to a provider through a signed URL, and to the public only
once moderation has let the owning object be shown.

``signed_media``: Alibaba Cloud downloads the media it moderates (aliyun-api-reference.md
§3.2); when the storage has no public URL, ``media_url.public_url_for`` hands out
``/moderation/media/<token>/`` and this view answers it. The token is the only credential:
a bad or expired one gets a bare 403 (nothing about why), a missing file a 404.

``visible_media``: what a site mounts at ``MEDIA_URL`` instead of serving ``MEDIA_ROOT``
wholesale, so that pending and blocked uploads are never public (docs/registration.md).

Both answer through ``serving.serve_file``: a media type from an allow-list or a download,
never a page that runs script.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from django.core.files.storage import default_storage
from django.core.signing import BadSignature
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseForbidden
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from ..media_url import MAX_AGE, unsign_name
from ..registry import Registration, registry
from ..serving import serve_file
from ..visibility import visible


@require_GET
def signed_media(request: HttpRequest, token: str) -> HttpResponseBase:
    """The default-storage file named in ``token`` (valid ``MAX_AGE`` seconds), never cached."""
    try:
        name = unsign_name(token, max_age=MAX_AGE)
    except (BadSignature, TypeError, ValueError):
        return HttpResponseForbidden(b"", content_type="text/plain")
    return serve_file(request, default_storage, name, filename=PurePosixPath(name).name)


def is_plain_storage_name(name: str) -> bool:
    """A relative name without ``.``/``..``/empty segments, backslashes or NULs: what
    a FileField stores. Anything else is refused before the database is asked."""
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _file_fields() -> Iterator[tuple[Registration, models.FileField]]:
    for registration in registry:
        for field_name in registration.fields:
            field = registration.model._meta.get_field(field_name)
            if isinstance(field, models.FileField):
                yield registration, field


def _shown(registration: Registration, queryset: models.QuerySet) -> models.QuerySet:
    """The objects of ``queryset`` the public may see: passed or approved, and not hidden."""
    queryset = visible(queryset)
    if registration.on_block == "hide":
        queryset = queryset.filter(**{registration.hide_field: False})
    return queryset


@require_GET
def visible_media(request: HttpRequest, name: str) -> HttpResponseBase:
    """The stored file ``name`` of a registered file field, when an object holding it may be
    shown (``moderation.visible``, and not hidden by ``on_block="hide"``) or the user may
    view moderation jobs. Everything else, including files no registered field holds, is a
    404 that says nothing about whether the file exists.

    Mount it where the site's media are served, e.g.
    ``path("media/<path:name>", visible_media, name="media")``.
    """
    if not is_plain_storage_name(name):
        raise Http404("no such file")
    user = getattr(request, "user", None)
    moderator = user is not None and user.has_perm("moderation.view_job")
    for registration, field in _file_fields():
        holders = registration.model._default_manager.filter(**{field.name: name})
        if not moderator:
            holders = _shown(registration, holders)
        if holders.exists():
            return serve_file(request, field.storage, name)
    raise Http404("no such file")
