"""Put failed or expired moderation jobs back in line (pipeline.retry; see
moderation.operations.jobs.retry_jobs and docs/commands.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...operations import retry_jobs
from ...operations.common import exit_2_on_bad_input, to_json


class Command(BaseCommand):
    help = "Retry failed and/or expired moderation jobs; prints counts."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="failed jobs")
        parser.add_argument("--expired", action="store_true", help="expired jobs")
        parser.add_argument("--job", type=int, nargs="+", action="extend", dest="job_ids",
                            metavar="ID", help="these jobs (failed or expired)")
        parser.add_argument("--provider", metavar="ALIAS", help="only this provider's jobs")
        parser.add_argument("--dry-run", action="store_true", help="count only")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, failed, expired, job_ids, provider, dry_run, json, **options):
        with exit_2_on_bad_input():
            result = retry_jobs(failed=failed, expired=expired, job_ids=job_ids,
                                provider=provider, dry_run=dry_run)
        if json:
            self.stdout.write(to_json(result))
            return
        verb = "would retry" if dry_run else "retried"
        detail = ", ".join(f"{status} {n}" for status, n in sorted(result["by_status"].items()))
        self.stdout.write(f"{verb} {result['retried']} jobs" + (f" ({detail})" if detail else ""))
        if result["superseded"]:
            self.stdout.write(f"skipped {result['superseded']} superseded jobs (a newer job "
                              "or a deleted object); name them with --job to retry anyway")
        if result["not_retryable"]:
            self.stdout.write(f"skipped {result['not_retryable']} named jobs that are not "
                              "failed or expired")
