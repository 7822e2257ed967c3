"""The private storage for evidence (thumbnails, audio clips).

Evidence is never public media: it is served only by the permission-checked view in
``moderation.views``. FileSystemStorage with ``base_url=None`` makes ``.url()`` useless
on purpose, so a template cannot leak it.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.functional import LazyObject, empty

from .conf import moderation_settings


class PrivateFileSystemStorage(FileSystemStorage):
    def url(self, name):  # pragma: no cover - guard
        raise ValueError("evidence has no public URL; use moderation:evidence")


@cache
def evidence_storage() -> Storage:
    alias = moderation_settings.EVIDENCE_STORAGE
    if alias and alias in getattr(settings, "STORAGES", {}):
        return storages[alias]
    return PrivateFileSystemStorage(location=moderation_settings.evidence_root)


class _LazyEvidenceStorage(LazyObject):
    """Resolves the evidence storage on first use, not at import."""

    def _setup(self):
        self._wrapped = evidence_storage()


LazyEvidence = _LazyEvidenceStorage()


def get_evidence_storage() -> Storage:
    """FileField ``storage=`` callable: migrations record this path, not settings."""
    return LazyEvidence


def reset() -> None:
    evidence_storage.cache_clear()
    LazyEvidence._wrapped = empty
