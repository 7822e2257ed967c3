"""Hash libraries at 1 000, 10 000 and 100 000 entries: a lookup, the per-process snapshot
(full rebuild, rows added, nothing changed), and what a video frame task pays to carry the
library to a worker process. "before" is the list-based snapshot this app used until the
library was made compact and shared by file (kept below as ``ListLibrary``).

    .venv/bin/python bench/libraries.py [--sizes 1000,10000,100000] [--tasks 60]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
from _setup import machine, ms, setup_django, timed


class ListLibrary:
    """The snapshot before: Python lists beside the packed hashes (pickled whole)."""

    def __init__(self, entries, threshold):
        self.threshold = threshold
        self.ids = [e[0] for e in entries]
        self.list_types = [e[1] for e in entries]
        self.labels = [e[2] for e in entries]
        packed = b"".join(bytes.fromhex(e[3]) for e in entries)
        self.hashes = np.frombuffer(packed, dtype=">u8").astype(np.uint64).reshape(-1, 4)

    def match(self, pdq_hex, quality=100):
        probe = np.frombuffer(bytes.fromhex(pdq_hex), dtype=">u8").astype(np.uint64)
        distances = np.bitwise_count(self.hashes ^ probe).sum(axis=1)
        best = int(distances.min())
        if best > self.threshold:
            return None
        hits = np.flatnonzero(distances == best)
        index = next((int(i) for i in hits if self.list_types[i] == "allow"), int(hits[0]))
        return self.list_types[index], self.labels[index], best, self.ids[index]


def entries_for(n: int, seed: int = 7) -> list[tuple[int, str, str, str]]:
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    labels = ["pornographic_adultContent", "violent_explosion", "pt_qrCode", "ad", ""]
    return [(i + 1, "allow" if i % 4 == 0 else "block", labels[i % 5], rows[i].tobytes().hex())
            for i in range(n)]


def probes(entries, k: int = 50) -> list[str]:
    """Half near an entry (a few bits flipped), half random (misses)."""
    rng = np.random.default_rng(3)
    out = []
    for i in range(k):
        if i % 2:
            out.append(rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex())
        else:
            value = int(entries[(i * 7919) % len(entries)][3], 16) ^ 0b1011
            out.append(f"{value:064x}")
    return out


def lookups(library, asked) -> None:
    for pdq in asked:
        library.match(pdq)


_added = itertools.count()


def size_of(library) -> int:
    """The frame task's stand-in: it only touches the library."""
    return len(library.ids) if hasattr(library, "ids") else 0


def carry(pool, library, tasks: int) -> float:
    """Seconds for ``tasks`` frame-task submissions that each carry the library."""
    start = time.perf_counter()
    for future in [pool.submit(size_of, library) for _ in range(tasks)]:
        future.result()
    return time.perf_counter() - start


def main(sizes: list[int], tasks: int) -> None:
    setup_django()
    from django.db import connection

    from moderation import libraries
    from moderation.libraries import HashLibrary, hash_library
    from moderation.models import HashEntry

    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=2, mp_context=context)
    carry(pool, [], 4)  # start the workers

    print(f"# hash libraries ({machine()}, {connection.vendor}, median of repeats)")
    print(f"{'entries':>8} | {'match ms':>17} | {'snapshot ms':>28} | "
          f"{'pickled KB':>17} | {f'{tasks} frame tasks ms':>21}")
    print(f"{'':>8} | {'before':>8} {'after':>8} | {'full':>8} {'+1 row':>9} {'same':>9} | "
          f"{'before':>8} {'after':>8} | {'before':>10} {'after':>10}")
    for n in sizes:
        entries = entries_for(n)
        before, after = ListLibrary(entries, 31), HashLibrary(entries, 31)
        asked = probes(entries)
        for p in asked:  # both answer alike
            old, new = before.match(p), after.match(p)
            assert (old is None) == (new is None)
            assert old is None or (old[2], old[3]) == (new.distance, new.entry_id)
        match_before = timed(partial(lookups, before, asked), 5)[0]
        match_after = timed(partial(lookups, after, asked), 5)[0]

        HashEntry.objects.all().delete()
        HashEntry.objects.bulk_create(
            [HashEntry(list_type=t, label=lbl, pdq=h) for _, t, lbl, h in entries],
            batch_size=2000)
        libraries.invalidate()

        def full():
            libraries.invalidate()
            hash_library()

        def plus_one():
            i = next(_added)
            HashEntry.objects.bulk_create([HashEntry(list_type="block",
                                                     pdq=f"{(i + 1) * 7919:064x}")])
            hash_library()

        full_walls = timed(full, 3)[0]
        hash_library()
        plus_walls = timed(plus_one, 5)[0]
        same_walls = timed(hash_library, 20)[0]

        pickled_before = len(pickle.dumps(before))
        snapshot = hash_library()
        pickled_after = len(pickle.dumps(snapshot))
        carry_before = [carry(pool, before, tasks) for _ in range(3)]
        carry_after = [carry(pool, snapshot, tasks) for _ in range(3)]
        per = len(asked)
        print(f"{n:>8} | {ms([w / per for w in match_before])} "
              f"{ms([w / per for w in match_after])} | {ms(full_walls)} {ms(plus_walls)} "
              f" {ms(same_walls)} | {pickled_before / 1024:8.0f} {pickled_after / 1024:8.2f} | "
              f"{ms(carry_before):>10} {ms(carry_after):>10}")
    pool.shutdown()
    print("match: one lookup; snapshot full: a rebuild from the table; +1 row: one entry "
          "added, then a look (appended); same: the version query when nothing changed.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--tasks", type=int, default=60)
    args = parser.parse_args()
    main([int(s) for s in args.sizes.split(",")], args.tasks)
