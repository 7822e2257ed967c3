"""Hash-list CSV: the format hash-sharing tools (ThreatExchange and its ``hma``/``tx`` tools)
read and write: one hex PDQ hash per line, optionally followed by ``label``, ``note`` and
``list_type`` columns. Used by the libraries admin and ``manage.py moderation_libraries``.

Exported cells that a spreadsheet would run as a formula (starting with ``= + - @``, a tab
or a carriage return: CSV injection) get a leading apostrophe; an import takes that
apostrophe off again, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from . import libraries
from .models import HashEntry

LIST_TYPES = {choice.value for choice in HashEntry.ListType}
#: names a first line may carry as a header (ours, and common hash-list exports)
HEADERS = {"pdq", "hash", "pdq_hash", "signal", "signal_value", "indicator"}
EXPORT_COLUMNS = ("pdq", "label", "note", "list_type")
#: first characters that make a spreadsheet evaluate a cell
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """A cell a spreadsheet shows as text: a formula-like value gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def restore(cell: str) -> str:
    """The value of a cell written by :func:`neutralise`."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS) else cell


@dataclass
class ParsedCsv:
    entries: list[HashEntry] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0  # repeated lines of the file itself


def parse_csv(text: str, *, list_type: str = "block", label: str = "",
              note: str = "") -> ParsedCsv:
    """Entries from CSV text; bad lines become ``(line number, problem)``."""
    parsed = ParsedCsv()
    seen: set[tuple[str, str]] = set()
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [restore(cell.strip()) for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        value = cells[0].lower()
        if number == 1 and value in HEADERS:
            continue
        if not libraries.is_pdq(value):
            parsed.errors.append((number, f"{cells[0][:80]!r} is not a 64-digit hex PDQ hash"))
            continue
        entry_label = cells[1] if len(cells) > 1 and cells[1] else label
        entry_note = cells[2] if len(cells) > 2 and cells[2] else note
        entry_type = cells[3].lower() if len(cells) > 3 and cells[3] else list_type
        if entry_type not in LIST_TYPES:
            parsed.errors.append((number, f"list type {cells[3][:20]!r} is not allow or block"))
            continue
        if len(entry_label) > 100:
            parsed.errors.append((number, "label longer than 100 characters"))
            continue
        if (entry_type, value) in seen:
            parsed.duplicates += 1
            continue
        seen.add((entry_type, value))
        parsed.entries.append(HashEntry(list_type=entry_type, label=entry_label, pdq=value,
                                        note=entry_note[:500]))
    return parsed


def import_entries(parsed: ParsedCsv, actor=None) -> tuple[int, int]:
    """Insert the parsed entries, ignoring those already on their list: (added, present)."""
    present = 0
    new = []
    by_type: dict[str, list[HashEntry]] = {}
    for entry in parsed.entries:
        by_type.setdefault(entry.list_type, []).append(entry)
    for list_type, entries in by_type.items():
        known: set[str] = set()
        pdqs = [e.pdq for e in entries]
        for start in range(0, len(pdqs), 500):  # stay under SQLite's variable limit
            known.update(HashEntry.objects.filter(list_type=list_type,
                                                  pdq__in=pdqs[start:start + 500])
                         .values_list("pdq", flat=True))
        present += sum(1 for e in entries if e.pdq in known)
        new += [e for e in entries if e.pdq not in known]
    for entry in new:
        entry.created_by = actor
    HashEntry.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    libraries.invalidate()
    return len(new), present


def csv_rows(queryset):
    """The export, a line at a time (streams 100 000 entries without holding them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise(cell) for cell in row])
        return buffer.getvalue()

    yield line(EXPORT_COLUMNS)
    for row in queryset.order_by("pk").values_list(*EXPORT_COLUMNS).iterator(chunk_size=2000):
        yield line(row)
