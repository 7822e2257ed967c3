"""Backfill: create jobs for the existing objects of a registered model (see
moderation.operations.scan; docs/commands.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ...operations import Progress, parse_when, registered_model, scan
from ...operations.common import exit_2_on_bad_input, to_json
from ...registry import registry


class Command(BaseCommand):
    help = ("Create moderation jobs for existing objects of a registered model whose files "
            "have none (resumable). Block verdicts do not hide anything unless --apply.")

    def add_arguments(self, parser):
        parser.add_argument("model", nargs="?", metavar="app_label.Model",
                            help="a registered model (or --all)")
        parser.add_argument("--all", action="store_true", dest="all_models",
                            help="every registered model")
        parser.add_argument("--field", action="append", dest="fields", metavar="FIELD",
                            help="only this moderated field (repeatable; default: all)")
        parser.add_argument("--since", metavar="DATE",
                            help="only objects created since DATE (YYYY-MM-DD, ISO date-time "
                                 "or an age: 7d, 12h), by the model's date field")
        parser.add_argument("--date-field", metavar="NAME",
                            help="the date field --since filters on (default: guessed)")
        parser.add_argument("--resubmit", action="store_true",
                            help="a new job for every file, even one a current job covers "
                                 "(bytes replaced under the same name)")
        parser.add_argument("--apply", action="store_true",
                            help="run the block action (e.g. hide) on block verdicts")
        parser.add_argument("--dry-run", action="store_true", help="count only")
        parser.add_argument("--rate", type=float, metavar="N",
                            help="at most N jobs per second (default: no limit)")
        parser.add_argument("--batch", type=int, default=500, metavar="N",
                            help="objects read per query (default 500)")
        parser.add_argument("--limit", type=int, metavar="N", help="stop after N jobs")
        parser.add_argument("--start-after", metavar="PK",
                            help="resume after this primary key (printed by an earlier run)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, model, all_models, fields, since, date_field, json, **options):
        with exit_2_on_bad_input():
            registrations = self._registrations(model, all_models, fields, date_field,
                                                options["start_after"])
            when = parse_when(since) if since else None
            reports = []
            for registration in registrations:
                reports.append(self._scan(registration, fields, when, date_field, options))
        if json:
            data = [r.as_dict() for r in reports]
            self.stdout.write(to_json(data if all_models else data[0]))
            return
        for report in reports:
            self.stdout.write(summary(report))

    def _registrations(self, model, all_models, fields, date_field, start_after):
        if bool(model) == bool(all_models):
            raise CommandError("name one registered model (app_label.Model) or give --all",
                               returncode=2)
        if all_models:
            if fields or date_field or start_after:
                raise CommandError("--field, --date-field and --start-after need one model",
                                   returncode=2)
            return sorted(registry, key=lambda reg: reg.model._meta.label)
        return [registered_model(model)[1]]

    def _scan(self, registration, fields, since, date_field, options):
        label = registration.model._meta.label
        bar = Progress(self.stderr, label=f"scan {label}")
        verbose = options["verbosity"] >= 2

        def progress(report):
            bar.total = report.total
            bar.update(report.objects, f"{report.created} jobs, at pk {report.last_pk}")
            if verbose and not bar.enabled:
                self.stderr.write(f"{label}: {report.objects}/{report.total} objects, "
                                  f"{report.created} jobs, at pk {report.last_pk}")

        try:
            return scan(registration, fields=fields, since=since, date_field=date_field,
                        resubmit=options["resubmit"], dry_run=options["dry_run"],
                        apply_block=options["apply"], rate=options["rate"],
                        batch=options["batch"], limit=options["limit"],
                        start_after=options["start_after"], progress=progress)
        finally:
            bar.close()


def summary(report) -> str:
    verb = "would create" if report.dry_run else "created"
    lines = [f"{report.model}: {verb} {report.created} jobs for {report.objects} of "
             f"{report.total} objects ({report.existing} files already covered, "
             f"{report.empty} empty) in {report.seconds:.1f} s"]
    if report.date_field:
        lines.append(f"  since: filtered on {report.model}.{report.date_field}")
    if not report.apply_block and report.created:
        lines.append("  block verdicts will not run the block action (no --apply)")
    if report.finished:
        lines.append("  done")
    elif report.last_pk is not None:
        lines.append(f"  stopped at pk {report.last_pk}; resume with --start-after "
                     f"{report.last_pk}")
    return "\n".join(lines)
