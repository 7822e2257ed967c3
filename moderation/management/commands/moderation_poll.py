"""One pass over due moderation work, for sites that run cron instead of the sweeper
schedule (see moderation.operations.jobs.poll_once; docs/commands.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...operations import Progress, poll_once
from ...operations.common import exit_2_on_bad_input, to_json


class Command(BaseCommand):
    help = ("Advance due moderation jobs once: process them in this process (default) or "
            "put them on the task queue (--enqueue). For cron; prints counts.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=100, metavar="N",
                            help="at most N jobs (and N feedback requests); default 100")
        parser.add_argument("--enqueue", action="store_true",
                            help="only enqueue them for the qcluster workers")
        parser.add_argument("--provider", metavar="ALIAS", help="only this provider's jobs "
                            "(feedback requests are then left alone)")
        parser.add_argument("--no-feedback", action="store_true",
                            help="leave pending feedback requests alone")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, limit, enqueue, provider, no_feedback, json, **options):
        bar = Progress(self.stderr, label="poll")

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done, force=done == total)

        try:
            with exit_2_on_bad_input():
                result = poll_once(limit=limit, enqueue=enqueue, provider=provider,
                                   feedback=not no_feedback, progress=progress)
        finally:
            bar.close()
        if json:
            self.stdout.write(to_json(result))
            return
        handled = sum(result["jobs"].values())
        verb = "enqueued" if enqueue else "processed"
        self.stdout.write(f"{verb} {handled} of {result['due']} due jobs"
                          + _counts(result["jobs"]))
        if result["feedback"]:
            self.stdout.write(f"feedback: {sum(result['feedback'].values())}"
                              + _counts(result["feedback"]))


def _counts(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{key} {n}" for key, n in sorted(counts.items())) + ")"
