"""Moderation figures for operators: counts, queue age, provider error rates (see
moderation.operations.stats; docs/commands.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...operations import parse_when, stats
from ...operations.common import check_number, exit_2_on_bad_input, to_json


class Command(BaseCommand):
    help = ("Counts of moderation jobs by status, suggestion and label, the queue's age and "
            "the providers' error rates.")

    def add_arguments(self, parser):
        parser.add_argument("--since", metavar="DATE",
                            help="jobs created since DATE (YYYY-MM-DD, ISO date-time or an "
                                 "age: 7d, 12h); the queue figures are always 'now'")
        parser.add_argument("--top", type=int, default=5, metavar="N",
                            help="error codes shown per provider (default 5)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, since, top, json, **options):
        with exit_2_on_bad_input():
            check_number(top, "--top", allow_minimum=True)
            data = stats(since=parse_when(since) if since else None, top=top)
        self.stdout.write(to_json(data) if json else render(data))


def render(data: dict) -> str:
    lines = [f"jobs: {data['jobs']}" + (f" (created since {data['since']})"
                                        if data["since"] else "")]
    for title, key in (("status", "by_status"), ("suggestion", "by_suggestion"),
                       ("decision", "by_decision"), ("media kind", "by_kind"),
                       ("label", "by_label")):
        counts = data[key]
        lines.append(f"by {title}:" + ("" if counts else " -"))
        lines += [f"  {name:<34} {n:>8}" for name, n in counts.items()]
    lines.append(f"review pending: {data['review_pending']}")
    if data["blocks_not_applied"]:
        lines.append(f"block verdicts not applied (backfill): {data['blocks_not_applied']}")
    queue = data["queue"]
    lines.append("queue now:")
    lines.append(f"  unfinished {queue['unfinished']}, due {queue['due']}")
    for label, key in (("oldest due", "oldest_due_seconds"),
                       ("oldest pending", "oldest_pending_seconds"),
                       ("median wait to submission", "median_wait_seconds"),
                       ("median time to result", "median_completion_seconds")):
        lines.append(f"  {label}: {_seconds(queue[key])}")
    lines.append("providers:" + ("" if data["providers"] else " -"))
    for alias, p in data["providers"].items():
        rate = "-" if p["error_rate"] is None else f"{p['error_rate']:.1%}"
        lines.append(f"  {alias}: {p['jobs']} jobs, {p['finished']} finished, {p['failed']} "
                     f"failed, {p['expired']} expired, error rate {rate}, "
                     f"{p['retrying']} retrying")
        for code, n in p["top_errors"].items():
            lines.append(f"    {code:<32} {n:>8}")
    return "\n".join(lines)


def _seconds(value) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"
