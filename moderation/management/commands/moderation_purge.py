"""Delete old finished moderation jobs with their rows and evidence files (see
moderation.operations.purge for exactly which; docs/commands.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...operations import Progress, purge
from ...operations.common import exit_2_on_bad_input, to_json


class Command(BaseCommand):
    help = ("Delete finished, superseded moderation jobs older than DAYS with their frames, "
            "slices, events and evidence files. Never a job on legal hold or under review.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=float, required=True, metavar="DAYS",
                            help="finished more than DAYS days ago")
        parser.add_argument("--include-current", action="store_true",
                            help="also current jobs (the decision an object is shown or "
                                 "hidden by); the object then counts as never moderated")
        parser.add_argument("--keep-blocked", action="store_true",
                            help="keep jobs whose decision is auto_block or rejected")
        parser.add_argument("--batch", type=int, default=500, metavar="N",
                            help="jobs deleted per transaction (default 500)")
        parser.add_argument("--dry-run", action="store_true", help="count only")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, older_than, include_current, keep_blocked, batch, dry_run, json,
               **options):
        bar = Progress(self.stderr, label="purge")

        def progress(report, total):
            bar.total = total
            bar.update(report.jobs, f"{report.files} files, {_size(report.bytes)}")

        try:
            with exit_2_on_bad_input():
                report = purge(older_than_days=older_than, dry_run=dry_run,
                               include_current=include_current, keep_blocked=keep_blocked,
                               batch=batch, progress=progress)
        finally:
            bar.close()
        if json:
            self.stdout.write(to_json(report.as_dict()))
            return
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {report.jobs} jobs finished before "
                          f"{report.cutoff:%Y-%m-%d %H:%M}: {report.files} evidence files, "
                          f"{_size(report.bytes)}")
        for label, n in report.rows.items():
            self.stdout.write(f"  {label}: {n} rows")
        if report.missing_files:
            self.stdout.write(f"  {report.missing_files} files were already missing")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover
