"""Hash libraries: allow- and block-list images matched by PDQ Hamming distance.

The entries live in the HashEntry model; the pipeline hands providers a
:class:`HashLibrary` snapshot so that providers never query models themselves. The
snapshot is cached per process and rebuilt when the table changes (count and max id).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.db.models import Count, Max

from .conf import moderation_settings


@dataclass(frozen=True)
class LibraryMatch:
    list_type: str  # "allow" | "block"
    label: str
    distance: int
    entry_id: int


class HashLibrary:
    """Nearest-entry lookup over packed 256-bit PDQ hashes (numpy popcount)."""

    def __init__(self, entries: list[tuple[int, str, str, str]], threshold: int):
        import numpy as np

        self.threshold = threshold
        self.ids = [e[0] for e in entries]
        self.list_types = [e[1] for e in entries]
        self.labels = [e[2] for e in entries]
        packed = b"".join(bytes.fromhex(e[3]) for e in entries)
        self.hashes = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, pdq_hex: str, quality: int = 100) -> LibraryMatch | None:
        """The closest entry within the threshold (allow wins a tie), or None."""
        import numpy as np

        if not self.ids or quality < 50:  # low-quality hashes match anything
            return None
        probe = np.frombuffer(bytes.fromhex(pdq_hex), dtype=">u8").astype(np.uint64)
        distances = np.bitwise_count(self.hashes ^ probe).sum(axis=1)
        best = int(distances.min())
        if best > self.threshold:
            return None
        hits = np.flatnonzero(distances == best)
        index = next((int(i) for i in hits if self.list_types[i] == "allow"), int(hits[0]))
        return LibraryMatch(self.list_types[index], self.labels[index], best, self.ids[index])


_lock = threading.Lock()
_cached: tuple[tuple, HashLibrary | None] = ((), None)


def hash_library() -> HashLibrary | None:
    """The current library, or None when there are no entries."""
    from .models import HashEntry

    global _cached
    threshold = int(moderation_settings.PROVIDERS.get("local", {}).get("OPTIONS", {})
                    .get("pdq_threshold", 31))
    state = HashEntry.objects.aggregate(n=Count("id"), last=Max("id"))
    version = (state["n"], state["last"], threshold)
    with _lock:
        if _cached[0] != version:
            entries = list(HashEntry.objects.values_list("id", "list_type", "label", "pdq"))
            _cached = (version, HashLibrary(entries, threshold) if entries else None)
        return _cached[1]
