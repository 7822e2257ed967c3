"""Hash libraries: allow- and block-list images matched by PDQ Hamming distance.

The entries live in the HashEntry model; the pipeline hands providers a
:class:`HashLibrary` snapshot so that providers never query models themselves. The
snapshot is cached per process: rows added since the last look are appended (feedback,
imports), any other change (a deletion) rebuilds it, and it is reloaded at least every
:data:`REFRESH_SECONDS` so that edits made in another process arrive too.

A snapshot is a few numpy arrays (8 bytes of id, 32 of hash, 4 of list type and label per
entry). Sent to the local engine's worker processes (video frames), it travels as the path
of a memory-mapped file written once per snapshot, not as its 4.4 MB (at 100 000 entries):
see :meth:`HashLibrary.__reduce__`. Figures: bench/libraries.py, docs/libraries.md.

:func:`precheck` answers an image from the libraries before a remote provider is called
(``LIBRARY_PRECHECK``); :func:`frame_pdq` finds the hash that feedback adds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.db.models import Max
from django.db.models.signals import post_delete, post_save

from .conf import moderation_settings

if TYPE_CHECKING:
    from .providers.base import Media, Provider
    from .providers.result import Result

logger = logging.getLogger(__name__)

#: a snapshot older than this is reloaded in full (edits made by other processes)
REFRESH_SECONDS = 300.0
#: a hash with a lower quality matches almost anything (ENGINE-NOTES §7)
MIN_QUALITY = 50
ALLOW, BLOCK = "allow", "block"


@dataclass(frozen=True)
class LibraryMatch:
    list_type: str  # "allow" | "block"
    label: str
    distance: int
    entry_id: int


def match_threshold() -> int:
    """The PDQ distance that counts as a match: the local provider's ``pdq_threshold``
    option when set, else ``LIBRARY_MATCH_THRESHOLD``."""
    local = (moderation_settings.PROVIDERS or {}).get("local") or {}
    override = (local.get("OPTIONS") or {}).get("pdq_threshold")
    return int(override if override is not None else moderation_settings.LIBRARY_MATCH_THRESHOLD)


class HashLibrary:
    """Nearest-entry lookup over packed 256-bit PDQ hashes (numpy popcount)."""

    def __init__(self, entries: list[tuple[int, str, str, str]], threshold: int):
        import numpy as np

        labels = sorted({e[2] for e in entries})
        index = {label: i for i, label in enumerate(labels)}
        packed = b"".join(bytes.fromhex(e[3]) for e in entries)
        hashes = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(-1, 4)
        self._set(
            threshold,
            words=np.ascontiguousarray(hashes.T),
            ids=np.fromiter((e[0] for e in entries), dtype=np.int64, count=len(entries)),
            allow=np.fromiter((e[1] == ALLOW for e in entries), dtype=bool,
                              count=len(entries)),
            label_index=np.fromiter((index[e[2]] for e in entries), dtype=np.int32,
                                    count=len(entries)),
            labels=labels,
        )

    def _set(self, threshold: int, *, words, ids, allow, label_index, labels) -> None:
        self.threshold = int(threshold)
        # Word k of every hash side by side (shape 4 x n): a lookup XORs and counts one
        # contiguous column at a time, 8x faster than row by row at 100 000 entries.
        self.words, self.ids, self.allow = words, ids, allow
        self.label_index, self.labels = label_index, list(labels)
        self._shared: str | None = None

    @classmethod
    def _from_arrays(cls, threshold: int, **arrays: Any) -> HashLibrary:
        library = cls.__new__(cls)
        library._set(threshold, **arrays)
        return library

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def max_id(self) -> int:
        return int(self.ids.max()) if len(self) else 0

    def extended(self, entries: list[tuple[int, str, str, str]]) -> HashLibrary:
        """A new snapshot with ``entries`` appended (this one is left as it is)."""
        import numpy as np

        if not entries:
            return self
        more = HashLibrary(entries, self.threshold)
        labels = list(dict.fromkeys([*self.labels, *more.labels]))
        position = {label: i for i, label in enumerate(labels)}
        remap = np.array([position[label] for label in more.labels] or [0], dtype=np.int32)
        return HashLibrary._from_arrays(
            self.threshold,
            words=np.concatenate([self.words, more.words], axis=1),
            ids=np.concatenate([self.ids, more.ids]),
            allow=np.concatenate([self.allow, more.allow]),
            label_index=np.concatenate([self.label_index, remap[more.label_index]]),
            labels=labels,
        )

    def match(self, pdq_hex: str, quality: int = 100) -> LibraryMatch | None:
        """The closest entry within the threshold (allow wins a tie), or None."""
        import numpy as np

        if not len(self) or quality < MIN_QUALITY:  # low-quality hashes match anything
            return None
        probe = np.frombuffer(bytes.fromhex(pdq_hex), dtype=">u8").astype(np.uint64)
        distances = np.bitwise_count(self.words[0] ^ probe[0]).astype(np.uint16)
        for k in (1, 2, 3):
            distances += np.bitwise_count(self.words[k] ^ probe[k])
        best = int(distances.min())
        if best > self.threshold:
            return None
        hits = np.flatnonzero(distances == best)
        allowed = hits[self.allow[hits]]
        index = int(allowed[0] if allowed.size else hits[0])
        return LibraryMatch(ALLOW if self.allow[index] else BLOCK,
                            self.labels[self.label_index[index]], best, int(self.ids[index]))

    # -- crossing to worker processes ----------------------------------------------------

    def __reduce__(self):
        """Pickled as the path of a memory-mapped copy (written once per snapshot): each
        worker process maps it once, and a frame task carries ~150 bytes, not the arrays."""
        return (_load_shared, (self.share(), self.threshold))

    def share(self) -> str:
        """Write the snapshot to a file named by its content, once; returns its path."""
        import numpy as np

        if self._shared is not None:
            return self._shared
        n = len(self)
        meta = (self.allow.astype(np.uint64) << np.uint64(32)) | \
            self.label_index.astype(np.uint64)
        flat = np.concatenate([self.words.reshape(-1), self.ids.astype(np.uint64), meta])
        labels = json.dumps(self.labels).encode()
        digest = hashlib.blake2b(flat.tobytes() + labels, digest_size=16).hexdigest()
        directory = _share_dir()
        path = directory / f"{digest}-{n}.npy"
        if not path.exists():
            tmp = directory / f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "wb") as fh:
                np.save(fh, flat, allow_pickle=False)
            path.with_suffix(".json").write_bytes(labels)
            os.replace(tmp, path)
            _prune(directory, keep=path)
        else:  # written earlier (maybe by another process): in use again, keep it
            for used in (path, path.with_suffix(".json")):
                os.utime(used)
        self._shared = str(path)
        return self._shared


def _share_dir() -> Path:
    directory = Path(tempfile.gettempdir()) / f"moderation-hashlib-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _prune(directory: Path, keep: Path, max_age: float = 3600.0) -> None:
    """Forget snapshots nobody has written for an hour (a worker maps a new one within
    seconds of its job; an open mapping survives the unlink)."""
    limit = time.time() - max_age
    for old in directory.iterdir():
        try:
            if old != keep and old.with_suffix(".npy") != keep and old.stat().st_mtime < limit:
                old.unlink()
        except OSError:
            pass


_loaded: dict[str, HashLibrary] = {}


def _load_shared(path: str, threshold: int) -> HashLibrary:
    """In a worker process: the snapshot at ``path``, mapped on first use, then cached."""
    import numpy as np

    key = f"{path}:{threshold}"
    library = _loaded.get(key)
    if library is None:
        flat = np.load(path, mmap_mode="r", allow_pickle=False)
        labels = json.loads(Path(path).with_suffix(".json").read_bytes())
        n = int(path.rsplit("-", 1)[1].split(".")[0])
        meta = flat[5 * n:]
        library = HashLibrary._from_arrays(
            threshold,
            words=flat[:4 * n].reshape(4, n), ids=flat[4 * n:5 * n].astype(np.int64),
            allow=(meta >> np.uint64(32)).astype(bool),
            label_index=(meta & np.uint64(0xFFFFFFFF)).astype(np.int32), labels=labels,
        )
        library._shared = path
        if len(_loaded) >= 4:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = library
    return library


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
    from .models import HashEntry

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


def image_pdq(data: bytes) -> tuple[str, int, Any]:
    """PDQ hex and quality of an image file, hashed as the local engine hashes it (at its
    working size, EXIF orientation applied), and the decoded BGR array. MediaError when
    the bytes are no usable image."""
    from .providers.local.decode import decode_image
    from .providers.local.engine import pdq_hash

    bgr = decode_image(data, max_bytes=int(moderation_settings.MAX_IMAGE_BYTES),
                       max_pixels=int(moderation_settings.MAX_IMAGE_PIXELS),
                       working_size=int(moderation_settings.IMAGE_WORKING_SIZE))
    pdq, quality = pdq_hash(bgr)
    return pdq, int(quality), bgr


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
    from .providers.errors import ModerationError

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
    from .media import adhoc_media, is_url, media_for, stored_name

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
    the pre-check is off, does not apply (not an image, no bytes, the local provider,
    which consults the libraries itself), or nothing matches."""
    from .providers.local import LocalProvider

    if not moderation_settings.LIBRARY_PRECHECK or media.kind != "image" \
            or not media.has_bytes or isinstance(provider, LocalProvider):
        return None
    library = hash_library()
    if library is None:
        return None
    from .providers.errors import ModerationError

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
    if match.list_type == ALLOW and _is_animated(data):
        return None  # an allowed first frame says nothing of the frames after it
    return _library_result(match, pdq, quality, bgr, time.perf_counter() - started)


def _is_animated(data: bytes) -> bool:
    from .providers.local.decode import frame_count, open_image

    try:
        image = open_image(data, max_bytes=len(data), max_pixels=1 << 62)
        return frame_count(image) > 1
    except Exception:  # unreadable now: let the provider judge the whole file
        return True


def _library_result(match: LibraryMatch, pdq: str, quality: int, bgr, seconds: float):
    from .labels import make_label
    from .policy import suggestion_for
    from .providers.local.decode import make_thumbnail
    from .providers.result import Frame, Result, worst_risk

    if match.list_type == ALLOW:
        note = f"allow-list match at distance {match.distance}"
        labels = [make_label("nonLabel_lib", 100, "library", "lib", note)]
    else:
        name = match.label or "blocked"
        name = name if name.endswith("_lib") else f"{name}_lib"
        note = f"block-list match at distance {match.distance}"
        labels = [make_label(name, 100, "library", "lib", note)]
    risk = worst_risk(label.risk_level for label in labels)
    thumbnail = make_thumbnail(bgr, int(moderation_settings.THUMBNAIL_SIZE))
    return Result(
        status="done", suggestion=suggestion_for(risk), risk_level=risk, labels=labels,
        frames=[Frame(offset=0.0, risk_level=risk, labels=list(labels), image=thumbnail)],
        raw={"provider": "library", "media": "image", "pdq": {"hash": pdq, "quality": quality},
             "library_match": {"list_type": match.list_type, "label": match.label,
                               "distance": match.distance, "entry": match.entry_id},
             "timings_ms": {"precheck": round(seconds * 1000, 2)}},
    )
