"""Hash libraries: allow- and block-list images matched by PDQ Hamming distance.

The entries live in the HashEntry model; the pipeline hands providers a
:class:`HashLibrary` snapshot so that providers never query models themselves. The
snapshot is cached per process: rows added since the last look are appended (feedback,
imports), any other change (a deletion) rebuilds it, and it is reloaded at least every
:data:`REFRESH_SECONDS` so that edits made in another process arrive too.

The snapshot type, :class:`HashLibrary`, and how it crosses to worker processes are
``pdq_index.py``'s (importable without Django). Figures: bench/libraries.py,
docs/libraries.md.

:func:`precheck` answers an image from the libraries before a remote provider is called
(``LIBRARY_PRECHECK``); :func:`frame_pdq` finds the hash that feedback adds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Max
from django.db.models.signals import post_delete, post_save

from .conf import moderation_settings
from .imaging import image_pdq, is_animated, thumbnail
from .labels import make_label
from .media import adhoc_media, is_url, media_for, stored_name
from .models import HashEntry
from .pdq_index import ALLOW, HashLibrary, LibraryMatch
from .providers.errors import ModerationError
from .providers.result import Frame, Result, worst_risk

if TYPE_CHECKING:
    from .providers.base import Media, Provider

logger = logging.getLogger(__name__)

#: a snapshot older than this is reloaded in full (edits made by other processes)
REFRESH_SECONDS = 300.0
def match_threshold() -> int:
    """The PDQ distance that counts as a match: the local provider's ``pdq_threshold``
    option when set, else ``LIBRARY_MATCH_THRESHOLD``."""
    local = (moderation_settings.PROVIDERS or {}).get("local") or {}
    override = (local.get("OPTIONS") or {}).get("pdq_threshold")
    return int(override if override is not None else moderation_settings.LIBRARY_MATCH_THRESHOLD)


# --- the per-process snapshot -----------------------------------------------------------------


@dataclass
class _Snapshot:
    version: tuple = ()
    library: HashLibrary | None = None
    loaded_at: float = 0.0


_lock = threading.Lock()
_cached = _Snapshot()
FIELDS = ("id", "list_type", "label", "pdq")


def invalidate() -> None:
    """Rebuild on the next look (rows changed in this process in ways the version misses)."""
    global _cached
    with _lock:
        _cached = _Snapshot()


def hash_library() -> HashLibrary | None:
    """The current library, or None when there are no entries."""
    global _cached
    threshold = match_threshold()
    # Two queries: SQLite counts a whole table without reading its rows only for a bare
    # COUNT(*) (0.2 ms at 100 000 entries; with MAX(id) beside it, 12 ms).
    version = (HashEntry.objects.count(),
               HashEntry.objects.aggregate(last=Max("id"))["last"], threshold)
    now = time.monotonic()
    with _lock:
        current = _cached
        fresh = now - current.loaded_at < REFRESH_SECONDS
        if current.version == version and fresh:
            return current.library
        library = None
        if fresh and current.library is not None and current.version[1:] != version[1:] \
                and current.version[2] == threshold and (version[1] or 0) > current.version[1]:
            # Rows were added (the common change): append those above the last id seen,
            # if that accounts for the new count (else something was deleted too).
            added = list(HashEntry.objects.filter(id__gt=current.version[1])
                         .order_by("id").values_list(*FIELDS))
            if len(current.library) + len(added) == version[0]:
                library = current.library.extended(added)
        if library is None:
            entries = list(HashEntry.objects.order_by("id").values_list(*FIELDS))
            library = HashLibrary(entries, threshold) if entries else None
            loaded_at = now
        else:
            loaded_at = current.loaded_at
        _cached = _Snapshot(version, library, loaded_at)
        return library


def _entries_changed(sender, **kwargs) -> None:
    invalidate()


# An edit in this process shows at once (the version, count and last id, misses edits).
post_save.connect(_entries_changed, sender="moderation.HashEntry",
                  dispatch_uid="moderation-hashentry-saved")
post_delete.connect(_entries_changed, sender="moderation.HashEntry",
                    dispatch_uid="moderation-hashentry-deleted")


# --- hashing --------------------------------------------------------------------------------


def _stored_pdq(raw: Any) -> tuple[str, int] | None:
    found = raw.get("pdq") if isinstance(raw, dict) else None
    if isinstance(found, dict) and is_pdq(found.get("hash")):
        return found["hash"].lower(), int(found.get("quality") or 0)
    return None


def is_pdq(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 64:
        return False
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def frame_pdq(frame, job) -> tuple[str, int] | None:
    """The PDQ hash of a frame, the best way available: the full-resolution hash the engine
    stored on the row (local provider, images and video frames), the hash in an image's
    raw result, the original image file, else the frame's thumbnail (320 px: typically
    10-16 bits from the full-resolution hash, ENGINE-NOTES §7; remote providers' frames)."""
    if frame.pdq and is_pdq(frame.pdq):  # stored by the engine at full resolution
        return frame.pdq, frame.pdq_quality if frame.pdq_quality is not None else 100
    if job.media_kind == "image" and frame.offset == 0:
        stored = _stored_pdq(job.raw_result)
        if stored:
            return stored
        data = _original_bytes(job)
        if data:
            try:
                return image_pdq(data)[:2]
            except ModerationError:
                pass
    if frame.thumbnail:
        try:
            with frame.thumbnail.open("rb") as fh:
                return image_pdq(fh.read())[:2]
        except (OSError, ModerationError):
            return None
    return None


def _original_bytes(job) -> bytes | None:
    """The job's image file, when it is still the one moderated."""
    try:
        if job.is_adhoc:
            if is_url(job.file_name):
                return None
            return adhoc_media(job).read()
        instance = job.content_object
        value = getattr(instance, job.field_name, None) if instance is not None else None
        if value is None or stored_name(value) != job.file_name or is_url(job.file_name):
            return None
        return media_for(value, job.file_name, job.media_kind).read()
    except Exception:  # missing file, storage trouble: fall back to the thumbnail
        logger.info("job %s: original image unavailable for hashing", job.pk, exc_info=True)
        return None


# --- the pre-check ---------------------------------------------------------------------------


def precheck(media: Media, provider: Provider) -> Result | None:
    """An image's answer from the hash libraries, without calling ``provider``: None when
    the pre-check is off, does not apply (not an image, no bytes, a provider that
    consults the libraries itself, as the local engine does), or nothing matches."""
    if not moderation_settings.LIBRARY_PRECHECK or media.kind != "image" \
            or not media.has_bytes or provider.consults_libraries:
        return None
    library = hash_library()
    if library is None:
        return None
    started = time.perf_counter()
    try:
        with media.open() as fh:
            data = fh.read(int(moderation_settings.MAX_IMAGE_BYTES) + 1)
        pdq, quality, bgr = image_pdq(data)
    except (ModerationError, OSError, ImportError):
        return None  # the provider will judge (and name) the problem
    match = library.match(pdq, quality)
    if match is None:
        return None
    if match.list_type == ALLOW and is_animated(data):
        return None  # an allowed first frame says nothing of the frames after it
    return _library_result(match, pdq, quality, bgr, time.perf_counter() - started)


def _library_result(match: LibraryMatch, pdq: str, quality: int, bgr, seconds: float):
    if match.list_type == ALLOW:
        note = f"allow-list match at distance {match.distance}"
        labels = [make_label("nonLabel_lib", 100, "library", "lib", note)]
    else:
        name = match.label or "blocked"
        name = name if name.endswith("_lib") else f"{name}_lib"
        note = f"block-list match at distance {match.distance}"
        labels = [make_label(name, 100, "library", "lib", note)]
    risk = worst_risk(label.risk_level for label in labels)
    image = thumbnail(bgr)
    return Result(
        status="done", risk_level=risk, labels=labels,
        frames=[Frame(offset=0.0, risk_level=risk, labels=list(labels), image=image)],
        raw={"provider": "library", "media": "image", "pdq": {"hash": pdq, "quality": quality},
             "library_match": {"list_type": match.list_type, "label": match.label,
                               "distance": match.distance, "entry": match.entry_id},
             "timings_ms": {"precheck": round(seconds * 1000, 2)}},
    )
