"""Live progress of running jobs in the admin: "analysing: 37 s of 90 s (41 %)" with a bar,
on the job page and in the jobs list, kept current by ``progress.js`` polling one small
JSON view (``admin:moderation_job_progress``, permission ``view_job``).

Polling a JSON view rather than ``<meta refresh>``: the list needs it too, a reload every
few seconds would lose the page's scroll, open details and selected rows, and one view
answers for every running job on the page in one query. The job page reloads once, when
its job finishes, to show the result.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import UNFINISHED, Job, Status
from ..pipeline.progress import describe

#: jobs one poll may ask about (a list page shows at most 100 by default)
MAX_POLLED = 200
#: a row id as a query string or a form sends it: ASCII digits that fit a 64-bit key
#: (``str.isdigit`` also takes "²", which ``int`` refuses, and any length, which the database
#: refuses: both were a 500)
_ID = re.compile(r"[0-9]{1,18}")


def is_id(value: object) -> bool:
    """Whether ``value`` (a string from a request) is a usable primary key."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def progress_text(job: Job) -> str:
    """What a running job has done so far, in words; "" for a job that is not running.
    The percent sign stays on the line of its number (a no-break space)."""
    return _progress_words(job).replace(" %", "\u00a0%")


def _progress_words(job: Job) -> str:
    if job.status not in UNFINISHED:
        return ""
    if job.status == Status.PENDING:
        return _("waiting for a worker")
    shown = describe(job.progress)
    if shown is None:
        return _("analysing…")
    values = {"done": _number(shown["done"]), "total": _number(shown["total"]),
              "percent": shown["percent"]}
    if shown["unit"] == "frames":
        if shown["percent"] is None:
            return _("analysing: %(done)s frames") % values
        return _("analysing: %(done)s of %(total)s frames (%(percent)s %%)") % values
    if shown["percent"] is None:
        return _("analysing: %(done)s s") % values
    return _("analysing: %(done)s s of %(total)s s (%(percent)s %%)") % values


def progress_percent(job: Job) -> int | None:
    """The bar's value; None: no bar value (indeterminate) or no bar."""
    shown = describe(job.progress) if job.status in UNFINISHED else None
    return shown["percent"] if shown else None


def progress_html(job: Job, *, reload_when_done: bool = False):
    """The text and a ``<progress>`` bar, marked for ``progress.js`` to keep current; ""
    for a finished job."""
    if job.status not in UNFINISHED:
        return ""
    percent = progress_percent(job)
    bar = (format_html('<progress class="mod-progress-bar" max="100" value="{}">{} %</progress>',
                       percent, percent) if percent is not None
           else mark_safe('<progress class="mod-progress-bar"></progress>'))  # indeterminate
    return format_html(
        '<span class="mod-progress" data-mod-progress data-job="{}" data-url="{}"{}>'
        '<span class="mod-progress-text">{}</span> {}</span>',
        job.pk, _progress_url(), " data-reload" if reload_when_done else "",
        progress_text(job), bar,
    )


def _progress_url() -> str:
    return reverse("admin:moderation_job_progress")


class JobProgressMixin:
    """The JSON view the bars poll, and the list's status column with its bar."""

    class Media:  # on the job list and the job page (``{{ media }}``)
        css = {"all": ("moderation/progress.css",)}
        js = ("moderation/progress.js",)

    def get_urls(self):
        urls = [path("progress/", self.admin_site.admin_view(self.progress_view),
                     name="moderation_job_progress")]
        return urls + super().get_urls()

    def progress_view(self, request):
        """``?id=1&id=2``: each job's status, whether it is finished, the text and the
        percent. One query; unknown ids are left out."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        ids = [int(value) for value in request.GET.getlist("id")[:MAX_POLLED]
               if is_id(value)]
        jobs = Job.objects.filter(pk__in=ids).only("id", "status", "progress")
        return JsonResponse({"jobs": [
            {"id": job.pk, "status": job.status, "status_display": job.get_status_display(),
             "finished": job.is_finished, "text": progress_text(job) or _("finished"),
             "percent": progress_percent(job)}
            for job in jobs
        ]})

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_progress(self, obj):
        """The status, and under it the progress of a running job."""
        running = progress_html(obj)
        if not running:
            return obj.get_status_display()
        return format_html("{}<br>{}", obj.get_status_display(), running)
