"""The in-memory index of the hash libraries: PDQ hashes matched by Hamming distance.

A :class:`HashLibrary` is a snapshot of the HashEntry rows as a few numpy arrays (8 bytes
of id, 32 of hash, 4 of list type and label per entry). Sent to the local engine's worker
processes (video frames), it travels as the path of a memory-mapped file written once per
snapshot, not as its 4.4 MB (at 100 000 entries): see :meth:`HashLibrary.__reduce__`.

This module imports nothing of Django or the app, so that a worker process unpickles a
snapshot without the app set up; ``libraries.py`` builds, caches and consults snapshots.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: a hash with a lower quality matches almost anything (ENGINE-NOTES §7)
MIN_QUALITY = 50
ALLOW, BLOCK = "allow", "block"


@dataclass(frozen=True)
class LibraryMatch:
    list_type: str  # "allow" | "block"
    label: str
    distance: int
    entry_id: int


class HashLibrary:
    """Nearest-entry lookup over packed 256-bit PDQ hashes (numpy popcount)."""

    def __init__(self, entries: list[tuple[int, str, str, str]], threshold: int):
        import numpy as np  # noqa: PLC0415 - heavy, local extra

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
        import numpy as np  # noqa: PLC0415 - heavy, local extra

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
        import numpy as np  # noqa: PLC0415 - heavy, local extra

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
        import numpy as np  # noqa: PLC0415 - heavy, local extra

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
    import numpy as np  # noqa: PLC0415 - heavy, local extra

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


__all__ = ["ALLOW", "BLOCK", "MIN_QUALITY", "HashLibrary", "LibraryMatch"]
