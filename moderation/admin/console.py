"""The review console's views, mounted under the Job admin (``JobAdmin.get_urls``).

=============================  =================  ==========================================
URL (under /admin/moderation/job/)  permission     what
=============================  =================  ==========================================
``queue/``                     review_job         pending reviews, worst risk first, filters
``queue/next/``                review_job         claim the next free item and open it
``<id>/review/``               view_job           the job page (claims it for review_job)
``<id>/decide/`` POST          review_job         approve / reject, then the next item
``<id>/undo/`` POST            review_job         undo one's last decision (UNDO_SECONDS)
``<id>/skip/`` POST            review_job         release the claim, open the next item
``<id>/claim/`` POST           review_job         renew the claim (the open page's heartbeat)
``<id>/release/`` POST         review_job         release the claim, back to the queue
``<id>/feedback/`` POST        view_job and       ``feedback.request_feedback`` (refused on an
                               send_feedback      item another moderator holds, like a decision)
``<id>/raw/``                  view_job           the raw provider result as JSON
``console/preferences/`` POST  view_job           blur / reveal flagged imagery (one's own)
=============================  =================  ==========================================

Every view goes through ``admin_site.admin_view`` (staff login, CSRF on POST) and answers
403 to a staff user without the permission.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import alerts, claims, feedback, reasons, review
from ..models import Decision, Frame, Job
from . import queue_page
from .bulk import bulk_decide
from .progress import is_id
from .review_page import page_context

if TYPE_CHECKING:  # the mixin is used on a ModelAdmin: type-check it as one
    from django.contrib import admin

    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object

VIEW, REVIEW, FEEDBACK = "moderation.view_job", "moderation.review_job", "moderation.send_feedback"


#: session key of the queue filters a moderator last used ("next" stays within them)
FILTERS_KEY = "moderation_queue_filters"
#: session key of the moderator's last decision in the console: {"job", "decision", "at"},
#: so that the next page offers to undo it without a query
LAST_DECISION_KEY = "moderation_last_decision"


def require(request, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied


class ReviewConsoleMixin(_AdminBase):
    """Adds the queue, the job page and the decision endpoints to a Job ModelAdmin."""

    def get_urls(self):
        def wrap(view, post=False):
            view = require_POST(view) if post else view
            return self.admin_site.admin_view(view)

        name = "moderation_job_%s"
        console = [
            path("queue/", wrap(self.queue_view), name=name % "queue"),
            path("queue/next/", wrap(self.queue_next_view), name=name % "queue_next"),
            path("console/preferences/", wrap(self.preferences_view, post=True),
                 name=name % "preferences"),
            path("<int:object_id>/review/", wrap(self.review_view), name=name % "review"),
            path("<int:object_id>/decide/", wrap(self.decide_view, post=True),
                 name=name % "decide"),
            path("<int:object_id>/undo/", wrap(self.undo_view, post=True), name=name % "undo"),
            path("<int:object_id>/skip/", wrap(self.skip_view, post=True), name=name % "skip"),
            path("<int:object_id>/claim/", wrap(self.claim_view, post=True),
                 name=name % "claim"),
            path("<int:object_id>/release/", wrap(self.release_view, post=True),
                 name=name % "release"),
            path("<int:object_id>/feedback/", wrap(self.feedback_view, post=True),
                 name=name % "feedback"),
            path("<int:object_id>/raw/", wrap(self.raw_view), name=name % "raw"),
        ]
        return console + super().get_urls()

    # --- helpers ---------------------------------------------------------------------------

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm(REVIEW)

    def has_feedback_permission(self, request) -> bool:
        return request.user.has_perm(FEEDBACK)

    def _context(self, request, title: str, **extra):
        return {**self.admin_site.each_context(request), "opts": self.opts, "title": title,
                "reveal_flagged": review.reveals_flagged(request.user),
                "undo": self._undo_offer(request), **extra}

    def _undo_offer(self, request) -> dict | None:
        """The moderator's last console decision while it may still be undone (from the
        session: no query; the undo itself checks again)."""
        last = request.session.get(LAST_DECISION_KEY)
        if not isinstance(last, dict) or not request.user.has_perm(REVIEW):
            return None
        left = int(last.get("at", 0) + review.undo_seconds() - time.time())
        if left <= 0:
            return None
        try:
            decision = Decision(str(last.get("decision"))).label
        except ValueError:
            return None
        return {"job": last.get("job"), "decision": decision, "seconds": left}

    def _open(self, request, job: Job | None):
        if job is None:
            messages.info(request, _("The review queue is empty."))
            return HttpResponseRedirect(reverse("admin:moderation_job_queue"))
        return HttpResponseRedirect(reverse("admin:moderation_job_review", args=[job.pk]))

    def _next(self, request, after: Job | None = None) -> Job | None:
        """The next item within the filters the moderator last used on the queue (kept in
        the session), so that "next" stays in the slice of work they chose."""
        filters = queue_page.Filters.from_query(request.session.get(FILTERS_KEY) or {})
        return review.next_item(request.user, after=after,
                                queryset=filters.apply(review.queue()))

    def _review_url(self, job_id) -> str:
        return reverse("admin:moderation_job_review", args=[job_id])

    # --- the queue -------------------------------------------------------------------------

    def queue_view(self, request):
        require(request, REVIEW)
        filters = queue_page.Filters.from_query(request.GET)
        request.session[FILTERS_KEY] = filters.as_dict()
        page, rows = queue_page.build_page(request, filters.apply(review.queue()),
                                           request.GET.get("page"))
        context = self._context(
            request, _("Review queue"), page=page, rows=rows, filters=filters,
            choices=queue_page.filter_choices(), query=filters.as_dict(),
            query_prefix="".join(f"{urlencode({k: v})}&" for k, v in filters.as_dict().items()),
            can_view=request.user.has_perm(VIEW), claim_minutes=claims.claim_seconds() // 60,
            actions=[("approve_jobs", _("Approve selected (pass)")),
                     ("reject_jobs", _("Reject selected (block)"))],
            reason_choices=reasons.choices(),
            queue_alerts=alerts.active_alerts(),
        )
        return TemplateResponse(request, "moderation/admin/review_queue.html", context)

    def queue_next_view(self, request):
        require(request, REVIEW)
        return self._open(request, self._next(request))

    # --- the job page ----------------------------------------------------------------------

    def review_view(self, request, object_id: int):
        require(request, VIEW)
        can_review = request.user.has_perm(REVIEW)
        claimed = can_review and claims.claim(object_id, request.user)
        job = get_object_or_404(Job.objects.select_related("content_type", "claimed_by")
                                .defer("result"), pk=object_id)
        holder = job.claimed_by if claims.claim_holder_id(job) else None
        context = self._context(
            request, _("Review job %(id)s") % {"id": job.pk}, job=job,
            can_review=can_review, can_feedback=request.user.has_perm(FEEDBACK),
            claimed=claimed, holder=holder, claim_seconds=claims.claim_seconds(),
            held_by_other=holder is not None and holder.pk != request.user.pk,
            is_pending=job.review_state == "pending",
            is_finished=job.status == "done",
            decisions=[(Decision.APPROVED, _("pass (approve)")),
                       (Decision.REJECTED, _("block (reject)"))],
            reason_choices=reasons.choices(),
            reason_required=reasons.required_for(Decision.REJECTED),
            **page_context(request, job),
        )
        return TemplateResponse(request, "moderation/admin/review_job.html", context)

    def raw_view(self, request, object_id: int):
        require(request, VIEW)
        job = get_object_or_404(Job.objects.only("pk", "raw_result"), pk=object_id)
        response = JsonResponse(job.raw_result, safe=False, json_dumps_params={"indent": 1})
        response["Cache-Control"] = "private, no-store"
        return response

    # --- decisions and claims --------------------------------------------------------------

    def decide_view(self, request, object_id: int):
        require(request, REVIEW)
        job = get_object_or_404(Job, pk=object_id)
        reason = request.POST.get("reason", "").strip()[:2000]
        try:
            job = review.decide(job, request.POST.get("decision", ""), request.user, reason,
                                request.POST.get("reason_code", ""))
        except reasons.ReasonRequired:
            messages.error(request, _("Choose a reason to reject job %(id)s.") % {"id": job.pk})
            return HttpResponseRedirect(self._review_url(job.pk))
        except reasons.UnknownReason as exc:
            messages.error(request, _("Unknown reason code %(code)s: job %(id)s not decided.")
                           % {"code": exc.code, "id": job.pk})
            return HttpResponseRedirect(self._review_url(job.pk))
        except claims.ClaimedByOther:
            messages.error(request, _("Another moderator is reviewing job %(id)s.")
                           % {"id": job.pk})
            return HttpResponseRedirect(self._review_url(job.pk))
        except ValueError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._review_url(job.pk))
        messages.success(request, _("Job %(id)s: %(decision)s.")
                         % {"id": job.pk, "decision": job.get_decision_display()})
        request.session[LAST_DECISION_KEY] = {"job": job.pk, "decision": job.decision,
                                              "at": time.time()}
        return self._open(request, self._next(request, after=job))

    def undo_view(self, request, object_id: int):
        """Undo one's last decision on the job (``review.undo_decision``), then open it
        again: it is back in review."""
        require(request, REVIEW)
        job = get_object_or_404(Job, pk=object_id)
        try:
            review.undo_decision(job, request.user)
        except PermissionDenied:
            messages.error(request, _("Only the moderator who decided job %(id)s may undo "
                                      "the decision.") % {"id": job.pk})
        except review.CannotUndo:
            messages.error(request, _("Job %(id)s: there is no decision you can still undo.")
                           % {"id": job.pk})
        else:
            messages.success(request, _("Job %(id)s: decision undone, the item is back in "
                                        "review.") % {"id": job.pk})
        last = request.session.get(LAST_DECISION_KEY)
        if isinstance(last, dict) and last.get("job") == job.pk:
            del request.session[LAST_DECISION_KEY]
        return HttpResponseRedirect(self._review_url(job.pk))

    def skip_view(self, request, object_id: int):
        require(request, REVIEW)
        job = get_object_or_404(Job, pk=object_id)
        claims.release(job, request.user)
        return self._open(request, self._next(request, after=job))

    def claim_view(self, request, object_id: int):
        """Renew the claim while the page stays open (console.js calls it every third of
        the claim time, only while the tab is visible); JSON ``{held, until}``."""
        require(request, REVIEW)
        held = claims.claim(object_id, request.user)
        until = Job.objects.filter(pk=object_id).values_list("claimed_until", flat=True).first()
        return JsonResponse({"held": held, "until": until.isoformat() if held and until
                             else None})

    def release_view(self, request, object_id: int):
        require(request, REVIEW)
        claims.release(object_id, request.user)
        return HttpResponseRedirect(reverse("admin:moderation_job_queue"))

    def preferences_view(self, request):
        if not (request.user.has_perm(VIEW) or request.user.has_perm(REVIEW)):
            raise PermissionDenied
        review.set_reveal_flagged(request.user, request.POST.get("reveal_flagged") == "1")
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()},
                                               request.is_secure()):
            target = reverse("admin:moderation_job_queue")
        return HttpResponseRedirect(target)

    # --- feedback --------------------------------------------------------------------------

    def feedback_view(self, request, object_id: int):
        require(request, VIEW)
        require(request, FEEDBACK)
        job = get_object_or_404(Job, pk=object_id)
        decision = request.POST.get("decision", "")
        if decision not in (Decision.APPROVED, Decision.REJECTED):
            messages.error(request, _("Choose pass or block for the feedback."))
            return HttpResponseRedirect(self._review_url(job.pk))
        wanted = [int(v) for v in request.POST.getlist("frame_ids") if is_id(v)]
        frame_ids = sorted(Frame.objects.filter(job=job, pk__in=wanted)
                           .values_list("pk", flat=True)) if wanted else None
        scenes = [s.strip() for s in request.POST.getlist("scenes") if s.strip()] or None
        try:
            row = feedback.request_feedback(job, decision, frame_ids=frame_ids or None,
                                            scenes=scenes,
                                            note=request.POST.get("note", "").strip()[:500],
                                            actor=request.user)
        except claims.ClaimedByOther:
            messages.error(request, _("Another moderator is reviewing job %(id)s: feedback "
                                      "not sent.") % {"id": job.pk})
        except (ValueError, LookupError) as exc:
            messages.error(request, _("Feedback not sent: %(error)s") % {"error": exc})
        else:
            messages.success(request, _("Feedback queued (%(status)s).")
                             % {"status": row.get_status_display()})
        return HttpResponseRedirect(self._review_url(job.pk) + "#feedback")

    # --- bulk admin actions (on the job list and the queue) --------------------------------

    def _bulk_decide(self, request, queryset, decision: str):
        asked = bulk_decide(self, request, queryset, decision)
        if asked is not None:  # a reason is required: the page that asks for one
            return asked
        if request.POST.get("_from_queue"):
            return HttpResponseRedirect(reverse("admin:moderation_job_queue"))
        return None
