"""From a model field to a provider Media: which kind it is and how to read it."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import PurePosixPath

from django.db import models
from django.db.models.fields.files import FieldFile

from .providers.base import Media

STREAM_SCHEMES = ("rtmp://", "rtmps://", "rtsp://", "srt://")
STREAM_SUFFIXES = (".m3u8", ".flv")
AUDIO_SUFFIXES = {".wma", ".mp3", ".wav", ".m4a", ".aac", ".ogg", ".flac", ".opus"}
VIDEO_SUFFIXES = {
    ".avi", ".flv", ".mp4", ".mpg", ".mpeg", ".asf", ".wmv", ".mov", ".rmvb", ".rm",
    ".ts", ".m3u8", ".mkv", ".webm", ".3gp", ".m4v",
}


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
        storage = value.storage

        def opener():
            return storage.open(name, "rb")

        try:
            size = storage.size(name)
        except (OSError, NotImplementedError):
            size = None
        return Media(name=name, kind=kind, opener=opener, size=size)
    return Media(name=name, kind=kind, url=name)
