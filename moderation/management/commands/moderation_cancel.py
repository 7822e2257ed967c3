"""Cancel unfinished moderation jobs (see moderation.operations.jobs.cancel_jobs and
docs/commands.md). A task already at the provider is cancelled there by a queued task."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...operations import cancel_jobs
from ...operations.common import exit_2_on_bad_input, to_json
from ...operations.jobs import CANCEL_REASON


class Command(BaseCommand):
    help = "Cancel unfinished moderation jobs; prints counts."

    def add_arguments(self, parser):
        parser.add_argument("--job", type=int, nargs="+", action="extend", dest="job_ids",
                            metavar="ID", help="these jobs")
        parser.add_argument("--pending", action="store_true",
                            help="jobs not yet submitted to their provider")
        parser.add_argument("--all-unfinished", action="store_true",
                            help="pending, submitted and in-progress jobs")
        parser.add_argument("--provider", metavar="ALIAS", help="only this provider's jobs")
        parser.add_argument("--reason", default=CANCEL_REASON,
                            help="kept on the jobs and in their history")
        parser.add_argument("--dry-run", action="store_true", help="count only")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, job_ids, pending, all_unfinished, provider, reason, dry_run, json,
               **options):
        with exit_2_on_bad_input():
            result = cancel_jobs(job_ids=job_ids, pending=pending,
                                 all_unfinished=all_unfinished, provider=provider,
                                 dry_run=dry_run, reason=reason)
        if json:
            self.stdout.write(to_json(result))
            return
        verb = "would cancel" if dry_run else "cancelled"
        detail = ", ".join(f"{status} {n}" for status, n in sorted(result["by_status"].items()))
        self.stdout.write(f"{verb} {result['cancelled']} jobs"
                          + (f" ({detail})" if detail else ""))
        if result["finished"]:
            self.stdout.write(f"skipped {result['finished']} named jobs that had finished")
