"""Bulk approve/reject (the job list, the queue and a host's own objects alike): the
decision with its reason code, the page that asks for one when a rejection needs it, and
what the moderator is told."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin import helpers
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from .. import reasons, review
from ..models import ReviewEvent


def bulk_decide(admin, request, jobs, decision: str) -> HttpResponse | None:
    """``review.decide_many`` with the note and reason code the form posted. A rejection
    without a code when one is required answers the page that asks for it (it posts the
    same action, selection and note back); an unknown code decides nothing."""
    note = request.POST.get("reason", "").strip()[:2000]
    try:
        outcome = review.decide_many(jobs, decision, request.user, note,
                                     request.POST.get("reason_code", ""))
    except reasons.ReasonRequired:
        return ask_reason(admin, request, note)
    except reasons.UnknownReason as exc:
        admin.message_user(request, _("Unknown reason code %(code)s: nothing decided.")
                           % {"code": exc.code}, messages.ERROR)
        return None
    report_bulk_decision(admin, request, outcome, decision)
    return None


def ask_reason(admin, request, note: str) -> TemplateResponse:
    """The intermediate page of a bulk rejection that needs a reason code (like the admin's
    delete confirmation: it posts the action back to the same change list)."""
    if request.POST.get("reason_code_asked"):
        admin.message_user(request, _("Choose a reason to reject."), messages.ERROR)
    context = {
        **admin.admin_site.each_context(request), "opts": admin.opts,
        "title": _("Why are these rejected?"),
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", ""),
        "from_queue": request.POST.get("_from_queue", ""),
        "note": note, "reason_choices": reasons.choices(),
    }
    return TemplateResponse(request, "moderation/admin/bulk_reason.html", context)


def report_bulk_decision(admin, request, outcome: review.BulkOutcome, decision: str) -> None:
    """The messages of a bulk approve/reject (host objects and the job list alike)."""
    admin.message_user(request, _("%(n)d job(s) %(decision)s.")
                       % {"n": outcome.decided,
                          # "approved"/"rejected", in the reader's language
                          "decision": ReviewEvent.Action(decision).label}, messages.SUCCESS)
    if outcome.busy:
        admin.message_user(request, _("%(n)d job(s) skipped: another moderator holds them.")
                           % {"n": outcome.busy}, messages.WARNING)
    if outcome.failed:
        admin.message_user(request, _("%(n)d job(s) could not be decided.")
                           % {"n": outcome.failed}, messages.ERROR)
