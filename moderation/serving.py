"""Stored bytes served to a browser in a way that can never run as a page.

Every view that answers with a stored file (evidence, a job's original, the signed URL for
providers, the visibility-checked media view) goes through :func:`serve_file`. Uploads are
attacker-controlled: an HTML or SVG file opened directly by a logged-in moderator would
otherwise run script with the moderator's session. So:

* the type comes from the name's extension and only from an allow-list of image, video and
  audio types (a browser renders them as media, never as a document that runs script);
  anything else (HTML, SVG, XML, PDF, JavaScript, unknown) is sent as
  ``application/octet-stream`` with ``Content-Disposition: attachment`` (a download);
* ``X-Content-Type-Options: nosniff`` stops the browser from guessing HTML in a file named
  ``.mp4``;
* ``Content-Security-Policy: sandbox`` (and nothing but the media itself may load) makes
  even a misjudged document a page with scripts, forms and plugins disabled (video and
  audio keep their origin so that the browser's own player can load them, see
  ``PLAYER_SECURITY_POLICY``).

These headers bind only a document opened from this response; ``<img>``/``<video>`` in the
console embed the bytes as media, which the policy does not restrict.

How the bytes travel is ``MODERATION["FILE_DELIVERY"]`` (docs/operations.md, "Serving
files"): ``proxy`` streams them through Django (the default; any storage), ``redirect`` sends
the browser to a short-lived presigned URL where the storage offers one (S3-like storages:
the bytes never pass through a worker), ``x-accel-redirect`` and ``x-sendfile`` hand a local
file to nginx or Apache. Whatever the mode, the permission check has already run: only the
transfer moves.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

from .conf import moderation_settings

log = logging.getLogger("moderation.serving")

DELIVERY_MODES = ("proxy", "redirect", "x-accel-redirect", "x-sendfile")

#: Extension -> the media type sent inline. A fixed table rather than ``mimetypes``, whose
#: answers depend on the host's /etc/mime.types.
MEDIA_TYPES: dict[str, str] = {
    # images
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg",
    ".png": "image/png", ".apng": "image/apng", ".gif": "image/gif",
    ".webp": "image/webp", ".bmp": "image/bmp", ".avif": "image/avif",
    # video
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm",
    ".mov": "video/quicktime", ".mkv": "video/x-matroska", ".ts": "video/mp2t",
    ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".ogv": "video/ogg",
    ".avi": "video/x-msvideo", ".flv": "video/x-flv", ".3gp": "video/3gpp",
    # audio
    ".mp3": "audio/mpeg", ".wav": "audio/wav", ".ogg": "audio/ogg", ".oga": "audio/ogg",
    ".opus": "audio/ogg", ".flac": "audio/flac", ".aac": "audio/aac", ".m4a": "audio/mp4",
}
DOWNLOAD_TYPE = "application/octet-stream"

#: No script, no plugins, no forms, no navigation of the top window, an opaque origin;
#: nothing loads but the image itself (in the browser's own image document).
CONTENT_SECURITY_POLICY = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
)
#: Video and audio: the same, except that the browser's player document keeps the site's
#: origin. Chromium's player fetches the file again with ``crossorigin="anonymous"``, which
#: fails from an opaque origin (the video would not play when opened in a tab). Scripts stay
#: off (no ``allow-scripts``), and nosniff keeps these types from ever being parsed as HTML.
PLAYER_SECURITY_POLICY = (
    "sandbox allow-same-origin; default-src 'none'; media-src 'self'; style-src 'unsafe-inline'"
)

#: the most one range answer carries when the browser asks for "bytes=N-" (video seeking)
RANGE_CHUNK = 4 * 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: a path an ``X-Sendfile`` header names exactly, whatever the web server: printable ASCII
#: without ``%`` (mod_xsendfile unescapes it) and without control characters
_PLAIN_PATH = re.compile(r"[\x20-\x24\x26-\x7e]+")


def media_type(name: str) -> str | None:
    """The allow-listed media type for ``name``'s extension, or None (serve as a download)."""
    return MEDIA_TYPES.get(PurePosixPath(name).suffix.lower())


def security_policy(content_type: str | None) -> str:
    """The CSP for a response of ``content_type`` (None: a download)."""
    if content_type and content_type.startswith(("video/", "audio/")):
        return PLAYER_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY


def _disposition(inline: bool, filename: str | None) -> str:
    kind = "inline" if inline else "attachment"
    if not filename:
        return kind
    # Only a safe ASCII subset of the name; the header cannot be split or quoted out of.
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:150] or "download"
    return f'{kind}; filename="{safe}"'


def protect(response: HttpResponseBase, name: str, filename: str | None = None
            ) -> HttpResponseBase:
    """Set the type and the headers that keep ``response`` (bytes of ``name``) inert."""
    content_type = media_type(name)
    response["Content-Type"] = content_type or DOWNLOAD_TYPE
    response["Content-Disposition"] = _disposition(content_type is not None, filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = security_policy(content_type)
    response["Cache-Control"] = "private, no-store"
    return response


def _range_response(request: HttpRequest, handle, size: int) -> HttpResponse | None:
    """A 206/416 answer to a ``Range: bytes=...`` request, or None to send the whole file."""
    match = _RANGE.match(request.headers.get("Range", "").strip())
    if not (match and (match.group(1) or match.group(2))):
        return None
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
    response = HttpResponse(data, status=206)
    response["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
    return response


def presigned_url(storage: Storage, name: str, filename: str | None = None) -> str | None:
    """A short-lived URL at which the storage itself serves ``name``, or None when the
    storage cannot sign one.

    A storage may offer ``presigned_url(name, expires, content_type, disposition)`` (this
    app's hook, for storages of your own); otherwise a ``url(name, parameters=..., expire=...)``
    in the manner of django-storages' S3 backend is used, asking the object store to answer
    with the allow-listed type and disposition (``ResponseContentType``/``...Disposition``),
    so the bytes keep their inert type on the other origin too.
    """
    expires = int(moderation_settings.FILE_DELIVERY_EXPIRES)
    content_type = media_type(name) or DOWNLOAD_TYPE
    disposition = _disposition(content_type != DOWNLOAD_TYPE, filename)
    hook = getattr(storage, "presigned_url", None)
    if callable(hook):
        return hook(name, expires=expires, content_type=content_type, disposition=disposition)
    try:
        params = inspect.signature(storage.url).parameters
    except (TypeError, ValueError):
        return None
    if "expire" not in params:
        return None  # a plain storage: its url() is a public, unsigned address
    kwargs: dict = {"expire": expires}
    if "parameters" in params:
        kwargs["parameters"] = {"ResponseContentType": content_type,
                                "ResponseContentDisposition": disposition}
    return storage.url(name, **kwargs)


def _local_path(storage: Storage, name: str) -> str | None:
    try:
        return os.path.realpath(storage.path(name))
    except (NotImplementedError, AttributeError):
        return None


def _accel_location(path: str) -> str | None:
    """The internal URL nginx serves ``path`` at, from ``FILE_DELIVERY_LOCATIONS``
    (directory -> internal prefix; the longest directory containing the file wins)."""
    best = None
    for directory, prefix in (moderation_settings.FILE_DELIVERY_LOCATIONS or {}).items():
        root = os.path.realpath(str(directory))
        inside = path.startswith(root.rstrip(os.sep) + os.sep)
        if inside and (best is None or len(root) > len(best[0])):
            best = (root, str(prefix))
    if best is None:
        return None
    root, prefix = best
    relative = os.path.relpath(path, root).replace(os.sep, "/")
    return prefix.rstrip("/") + "/" + quote(relative)


def _handed_over(storage: Storage, name: str, filename: str | None) -> HttpResponseBase | None:
    """The configured mode's answer when it can serve ``name`` without Django reading the
    bytes; None sends them through Django (``proxy``, or a mode this storage cannot do)."""
    mode = moderation_settings.FILE_DELIVERY
    if mode == "redirect":
        if not storage.exists(name):
            raise Http404("the file is missing")
        url = presigned_url(storage, name, filename)
        if url and urlsplit(url).scheme in ("http", "https"):
            response: HttpResponseBase = HttpResponse(status=302)
            response["Location"] = url
            response["Cache-Control"] = "private, no-store"
            response["Referrer-Policy"] = "no-referrer"
            return response
    elif mode in ("x-accel-redirect", "x-sendfile"):
        path = _local_path(storage, name)
        if path is not None and os.path.isfile(path):
            if mode == "x-sendfile":
                if _PLAIN_PATH.fullmatch(path):
                    response = protect(HttpResponse(), name, filename)
                    response["X-Sendfile"] = path
                    return response
                # Apache's mod_xsendfile unescapes %XX (an uploaded "a%2F..%2F.." would name
                # another file) and a header cannot carry non-ASCII bytes as they are
                log.warning("X-Sendfile cannot name %r exactly; sent through Django", path)
                return None
            location = _accel_location(path)
            if location is not None:
                response = protect(HttpResponse(), name, filename)
                response["X-Accel-Redirect"] = location
                return response
            log.warning("FILE_DELIVERY_LOCATIONS maps no directory holding %s; sent through "
                        "Django", path)
    return None


def serve_file(request: HttpRequest, storage: Storage, name: str,
               filename: str | None = None) -> HttpResponseBase:
    """``name`` from ``storage`` with byte ranges (video seeking) and :func:`protect`'s
    headers; Http404 when it is missing or the name is refused by the storage. Handed to
    the storage or the web server instead when ``FILE_DELIVERY`` says so and it can."""
    if not name:
        raise Http404("no file stored")
    try:
        handed = _handed_over(storage, name, filename)
    except SuspiciousFileOperation as exc:
        raise Http404("the file is missing") from exc
    if handed is not None:
        return handed
    try:
        handle = storage.open(name, "rb")
        size = storage.size(name)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError,
            SuspiciousFileOperation) as exc:
        raise Http404("the file is missing") from exc
    response: HttpResponseBase | None = _range_response(request, handle, size)
    if response is None:
        response = FileResponse(handle)
    response["Accept-Ranges"] = "bytes"
    return protect(response, name, filename)
