"""What a bulk approve/reject tells the moderator (the job list, the queue and a host's own
objects alike)."""

from __future__ import annotations

from django.contrib import messages
from django.utils.translation import gettext as _

from .. import review
from ..models import ReviewEvent


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
