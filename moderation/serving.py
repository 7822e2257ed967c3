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
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase

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


def serve_file(request: HttpRequest, storage: Storage, name: str,
               filename: str | None = None) -> HttpResponseBase:
    """``name`` from ``storage`` with byte ranges (video seeking) and :func:`protect`'s
    headers; Http404 when it is missing or the name is refused by the storage."""
    if not name:
        raise Http404("no file stored")
    try:
        handle = storage.open(name, "rb")
        size = storage.size(name)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError,
            SuspiciousFileOperation) as exc:
        raise Http404("the file is missing") from exc
    response = _range_response(request, handle, size)
    if response is None:
        response = FileResponse(handle)
    response["Accept-Ranges"] = "bytes"
    return protect(response, name, filename)
