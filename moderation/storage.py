"""The private storage for evidence (thumbnails, audio clips).

Evidence is never public media: it is served only by the permission-checked view in
``moderation.views``. FileSystemStorage with ``base_url=None`` makes ``.url()`` useless
on purpose, so a template cannot leak it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.utils.functional import LazyObject, empty

from .conf import moderation_settings

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


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
    return cast(Storage, LazyEvidence)  # a LazyObject: behaves as the Storage it wraps


def reset() -> None:
    evidence_storage.cache_clear()
    LazyEvidence._wrapped = empty


def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    """A test's ``override_settings`` may move the evidence storage: forget the old one.
    (``conf`` clears its own cache first: it connected before this module was imported.)"""
    if setting in ("MODERATION", "STORAGES", "BASE_DIR", "MEDIA_ROOT"):
        reset()


setting_changed.connect(_reset_on_change, dispatch_uid="moderation.storage.reset")


# --- no orphans: evidence written for a transaction that fails is deleted -----------------

#: the names saved by :func:`save_evidence` in each open :func:`discard_on_failure` block
_written: ContextVar[tuple[list[str], ...]] = ContextVar("moderation_evidence_written",
                                                          default=())


def save_evidence(name: str, content: File) -> str:
    """Save to evidence storage; the stored name is remembered by every open
    :func:`discard_on_failure` block, so that a failure can take it back."""
    stored = evidence_storage().save(name, content)
    for names in _written.get():
        names.append(stored)
    return stored


def discard(names: Iterable[str]) -> None:
    """Delete evidence files nothing refers to; a file that cannot be deleted is logged."""
    storage = evidence_storage()
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # best effort: the original error matters more
            logger.exception("could not delete orphaned evidence %r", name)


@contextmanager
def discard_on_failure() -> Iterator[list[str]]:
    """Evidence saved inside the block is deleted if the block raises: files are written
    before the database transaction that refers to them (no file I/O under a row lock), so
    a transaction that fails, at any statement or at commit, must take them back. Put the
    whole transaction inside the block."""
    names: list[str] = []
    token = _written.set((*_written.get(), names))
    try:
        yield names
    except BaseException:
        discard(names)
        raise
    finally:
        _written.reset(token)


def discards_evidence_on_failure(function: F) -> F:
    """Decorator form of :func:`discard_on_failure` for a function that writes evidence and
    then runs its transaction."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with discard_on_failure():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
