"""Import and export the hash libraries (allow and block lists) as CSV: one hex PDQ hash a
line, optionally followed by ``label``, ``note`` and ``list_type`` columns (the format of
the admin's import and export, whose functions this command calls; docs/libraries.md)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from ...library_csv import csv_rows, import_entries, parse_csv
from ...models import HashEntry
from ...operations.common import to_json

LISTS = [choice.value for choice in HashEntry.ListType]
MAX_REPORTED = 20


class Command(BaseCommand):
    help = "Import or export the allow/block hash lists as CSV (hex PDQ hashes)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="import|export")
        add = actions.add_parser("import", help="add the hashes of a CSV file")
        add.add_argument("file", metavar="FILE", help="a CSV file, or - for stdin")
        add.add_argument("--list", choices=LISTS, default="block", dest="list_type",
                         help="list of lines without a list_type column (default: block)")
        add.add_argument("--label", default="", help="label of lines without one")
        add.add_argument("--note", default="", help="note of lines without one")
        add.add_argument("--strict", action="store_true",
                         help="import nothing (exit status 2) if any line is bad")
        add.add_argument("--dry-run", action="store_true", help="read and count only")
        add.add_argument("--json", action="store_true", help="print one JSON object")
        out = actions.add_parser("export", help="write the entries as CSV")
        out.add_argument("file", nargs="?", default="-", metavar="FILE",
                         help="where to write (default: - for stdout)")
        out.add_argument("--list", choices=LISTS, dest="list_type", help="only this list")
        out.add_argument("--label", help="only entries with this label")

    def handle(self, *args, action, **options):
        if action == "import":
            self.import_file(options)
        else:
            self.export_file(options)

    def import_file(self, options):
        text = _read(options["file"])
        parsed = parse_csv(text, list_type=options["list_type"], label=options["label"],
                           note=options["note"])
        for number, problem in parsed.errors[:MAX_REPORTED]:
            self.stderr.write(f"line {number}: {problem}")
        if len(parsed.errors) > MAX_REPORTED:
            self.stderr.write(f"... and {len(parsed.errors) - MAX_REPORTED} more bad lines")
        if options["strict"] and parsed.errors:
            raise CommandError(f"{len(parsed.errors)} bad lines; nothing imported",
                               returncode=2)
        if not parsed.entries and parsed.errors:
            raise CommandError("no line could be read; nothing imported", returncode=2)
        added = present = 0
        if options["dry_run"]:
            added = len(parsed.entries)
        else:
            added, present = import_entries(parsed)
        result = {"dry_run": options["dry_run"], "added": added, "present": present,
                  "duplicates": parsed.duplicates, "bad_lines": len(parsed.errors)}
        if options["json"]:
            self.stdout.write(to_json(result))
            return
        verb = "would add" if options["dry_run"] else "added"
        self.stdout.write(f"{verb} {added} entries; {present} already listed, "
                          f"{parsed.duplicates} repeated lines, {len(parsed.errors)} bad lines")

    def export_file(self, options):
        entries = HashEntry.objects.all()
        if options["list_type"]:
            entries = entries.filter(list_type=options["list_type"])
        if options["label"] is not None:
            entries = entries.filter(label=options["label"])
        path = options["file"]
        count = -1  # the header line
        if path == "-":
            for count, line in enumerate(csv_rows(entries)):  # noqa: B007
                self.stdout.write(line, ending="")
            return
        try:
            with open(path, "w", encoding="utf-8", newline="") as fh:
                for count, line in enumerate(csv_rows(entries)):  # noqa: B007
                    fh.write(line)
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}", returncode=2) from exc
        self.stderr.write(f"wrote {count} entries to {path}")


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8-sig") as fh:
            return fh.read()
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file", returncode=2) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read it as UTF-8 text ({exc})",
                           returncode=2) from None
