"""From a model field to a provider Media: which kind it is and how to read it."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.db import models
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from .providers.base import Media
from .storage import evidence_storage, save_evidence

STREAM_SCHEMES = ("rtmp://", "rtmps://", "rtsp://", "srt://")
STREAM_SUFFIXES = (".m3u8", ".flv")
AUDIO_SUFFIXES = {".wma", ".mp3", ".wav", ".m4a", ".aac", ".ogg", ".flac", ".opus"}
VIDEO_SUFFIXES = {
    ".avi", ".flv", ".mp4", ".mpg", ".mpeg", ".asf", ".wmv", ".mov", ".rmvb", ".rm",
    ".ts", ".m3u8", ".mkv", ".webm", ".3gp", ".m4v",
}


def stored_name(value) -> str:
    """The stored name of a file field value, or the text of a URL field."""
    if hasattr(value, "name"):
        return value.name or ""
    return value or ""


def is_url(name: str) -> bool:
    scheme, sep, _ = name.partition("://")
    return bool(sep) and scheme.isalpha()


def guess_kind(field: models.Field, name: str) -> str:
    """Media kind from the field type and the file name or URL."""
    if isinstance(field, models.ImageField):
        return "image"
    lowered = name.lower()
    if not isinstance(field, models.FileField):  # a URL
        path = lowered.split("?", 1)[0]
        if lowered.startswith(STREAM_SCHEMES) or path.endswith(STREAM_SUFFIXES):
            return "live"
    suffix = PurePosixPath(lowered.split("?", 1)[0]).suffix
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    mime, _ = mimetypes.guess_type(lowered)
    if mime:
        major = mime.split("/", 1)[0]
        if major in ("image", "video", "audio"):
            return major
    return "image"


def file_sha256(fieldfile: FieldFile, name: str | None = None) -> str:
    digest = hashlib.sha256()
    with fieldfile.storage.open(name or fieldfile.name, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def media_for(value, name: str, kind: str) -> Media:
    """A Media that reads ``name`` from the field's storage (or points at a URL)."""
    if isinstance(value, FieldFile):
        return _media_from_storage(value.storage, name, kind)
    return Media(name=name, kind=kind, url=name)


def _media_from_storage(storage, name: str, kind: str) -> Media:
    def opener():
        return storage.open(name, "rb")

    try:
        size = storage.size(name)
    except (OSError, NotImplementedError):  # missing files fail later, with a clear code
        size = None
    try:
        path = storage.path(name)
    except NotImplementedError:  # remote storages have no local path
        path = ""
    return Media(name=name, kind=kind, opener=opener, size=size, path=path)


# --- ad-hoc inputs (no model field): kept in evidence storage under inputs/ ----------------


def save_adhoc_input(data_id: str, name: str, content: bytes) -> str:
    day = timezone.now().strftime("%Y/%m/%d")
    safe = PurePosixPath(name).name or "input"
    return save_evidence(f"inputs/{day}/{data_id}/{safe}", ContentFile(content))


def adhoc_media(job) -> Media:
    """The Media of a job without a content object (see pipeline.create_adhoc_job)."""
    storage = evidence_storage()
    if job.media_kind == "frames":
        frames = []
        for offset, name in job.options.get("frames", []):
            with storage.open(name, "rb") as fh:
                frames.append((float(offset), fh.read()))
        return Media(name=job.file_name, kind="frames", frames=frames,
                     size=sum(len(data) for _, data in frames))
    if is_url(job.file_name):
        return Media(name=job.file_name, kind=job.media_kind, url=job.file_name)

    return _media_from_storage(storage, job.file_name, job.media_kind)
