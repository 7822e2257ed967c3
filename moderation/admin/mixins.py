"""What a host project adds to its own ModelAdmin: the status column, the current jobs
inline and the review actions, all on the host's objects rather than on jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Case, F, Subquery, Value, When
from django.db.models.functions import Concat
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from .. import pipeline
from ..models import Decision, Job, ReviewState, Status
from ..registry import registry
from ..visibility import _object_id_expression
from .bulk import bulk_decide
from .evidence import label_chips
from .jobs import risk_badge

if TYPE_CHECKING:  # the mixin is used on a ModelAdmin: type-check it as one
    from django.contrib.admin.options import InlineModelAdmin
    from django_stubs_ext import StrOrPromise

    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object

#: Prefix of the per-field annotations that feed the status column.
STATE_PREFIX = "_moderation_state_"


def _job_state() -> Case:
    """What the status column shows for a job, computed in SQL: its status while
    unfinished, then its decision, else its review state, each tagged with the field it
    came from (``status:pending`` and ``review:pending`` read differently)."""
    return Case(
        When(~models.Q(status=Status.DONE), then=Concat(Value("status:"), F("status"))),
        When(~models.Q(decision=""), then=Concat(Value("decision:"), F("decision"))),
        default=Concat(Value("review:"), F("review_state")),
        output_field=models.CharField(),
    )


def _state_label(state: str) -> str:
    """The translated words for a tagged state of :func:`_job_state` ("" for none)."""
    kind, _sep, code = state.partition(":")
    if kind == "review":
        return {"pending": str(_("waiting for review")),
                "resolved": str(ReviewState.RESOLVED.label)}.get(code, "")
    choices = {"status": Status, "decision": Decision}.get(kind)
    if choices is None or code not in choices.values:
        return code
    return str(choices(code).label)


def annotate_job_states(queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
    """``queryset`` with the state of each registered field's current job, one subquery
    per field: the changelist costs the same number of queries for 1 or 100 rows."""
    registration = registry.get(queryset.model)
    if registration is None:
        return queryset
    ct = ContentType.objects.db_manager(queryset.db).get_for_model(
        queryset.model, for_concrete_model=False)
    pk_text, job_id_expr = _object_id_expression(queryset.model, queryset.db)
    states = {}
    for name in registration.fields:
        jobs = Job.objects.filter(content_type=ct, field_name=name, is_current=True)
        if job_id_expr is not None:
            jobs = jobs.alias(_oid=job_id_expr).filter(_oid=pk_text)
        else:
            jobs = jobs.filter(object_id=pk_text)
        # not `_state`: that is the name of every model instance's ModelState
        jobs = jobs.order_by("-created_at", "-id").annotate(_job_state=_job_state())
        states[STATE_PREFIX + name] = Subquery(jobs.values("_job_state")[:1])
    annotated: models.QuerySet[Any] = queryset.annotate(**states)
    return annotated


class CurrentJobsInline(GenericTabularInline):
    """The object's current jobs, read-only, each linking to its page in the console.
    Shown to users who may view jobs (``moderation.view_job``)."""

    model = Job
    ct_field, ct_fk_field = "content_type", "object_id"
    for_concrete_model = False  # jobs are stored against proxy models as registered
    extra = 0
    max_num = 0
    can_delete = False
    fields = ("field_name", "status", "outcome", "risk", "labels_text", "console_link")
    readonly_fields = fields
    verbose_name = _("moderation job")
    verbose_name_plural = _("moderation jobs (current)")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Job]:
        return super().get_queryset(request).filter(is_current=True)

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest,
                              obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest,
                              obj: models.Model | None = None) -> bool:
        return False

    @admin.display(description=_("outcome"))
    def outcome(self, obj: Job) -> StrOrPromise:
        if obj.status != Status.DONE:
            return obj.error_code or "-"
        if obj.review_state == "pending":
            return _("needs review")
        return obj.get_decision_display() or obj.suggestion or "-"

    @admin.display(description=_("risk"))
    def risk(self, obj: Job) -> str:
        badge: str = risk_badge(obj.risk_level)
        return badge

    @admin.display(description=_("labels"))
    def labels_text(self, obj: Job) -> str:
        return label_chips(obj.labels)  # names, codes on hover, as the job list shows them

    @admin.display(description=_("job"))
    def console_link(self, obj: Job) -> str:
        try:
            url = reverse(f"{self.admin_site.name}:moderation_job_change", args=[obj.pk])
        except NoReverseMatch:  # the console is not on this admin site
            return f"#{obj.pk}"
        return format_html('<a href="{}">#{}</a>', url, obj.pk)


class ModeratedAdminMixin(_AdminBase):
    """For a host ModelAdmin of a registered model.

    - ``"moderation_status"`` in ``list_display``: each field's current job state, from
      annotations on the changelist queryset (no query per row);
    - ``inlines = [CurrentJobsInline]`` (or ``moderation_inlines`` below): the jobs;
    - actions approve / reject (``moderation.review_job``, through ``review.decide``) and
      retry (``moderation.change_job``, through ``pipeline.retry``) on the current jobs of
      the selected objects, added to whatever actions the ModelAdmin declares.
    """

    #: Inlines added to the host's own ``inlines``.
    moderation_inlines: tuple[type[InlineModelAdmin[Any, Any]], ...] = (CurrentJobsInline,)
    moderation_actions: tuple[str, ...] = ("moderation_approve", "moderation_reject",
                                           "moderation_retry")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        return annotate_job_states(super().get_queryset(request))

    def get_inlines(self, request: HttpRequest,
                    obj: models.Model | None) -> list[type[InlineModelAdmin[Any, Any]]]:
        inlines = list(super().get_inlines(request, obj))
        if obj is None:
            return inlines
        return inlines + [i for i in self.moderation_inlines if i not in inlines]

    @admin.display(description=_("moderation"))
    def moderation_status(self, obj: models.Model) -> str:
        registration = registry.get(type(obj))
        names = registration.fields if registration else []
        if names and all(hasattr(obj, STATE_PREFIX + n) for n in names):
            pairs = [(n, getattr(obj, STATE_PREFIX + n)) for n in names]
        else:  # an object that did not come through get_queryset
            pairs = [(job.field_name, f"status:{job.status}" if job.status != Status.DONE
                      else f"decision:{job.decision}" if job.decision
                      else f"review:{job.review_state}")
                     for job in Job.objects.for_object(obj).filter(is_current=True)]
        shown = [(n, state.partition(":")[2], _state_label(state))
                 for n, state in pairs if state]
        return format_html_join(", ", '{}: <span title="{}">{}</span>',
                                ((n, code, label) for n, code, label in shown if label)) or "-"

    # --- actions ------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 passes action_location (change list or change form) and warns about an
        # override without it; 5.2 and 6.0 never pass it. Ours act on the change list only.
        if action_location is None:
            actions = super().get_actions(request)
        else:
            actions = super().get_actions(request, action_location=action_location)  # type: ignore[call-arg]
            if getattr(action_location, "name", "CHANGE_LIST") != "CHANGE_LIST":
                return actions
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        for name in self.moderation_actions:
            func = getattr(type(self), name)
            if all(getattr(self, f"has_{p}_permission")(request)
                   for p in func.allowed_permissions):
                actions[name] = (func, name, func.short_description)
        return actions

    def has_moderation_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("moderation.review_job")

    def has_moderation_retry_permission(self, request: HttpRequest) -> bool:
        """Retrying spends provider calls and changes the job: ``moderation.change_job``."""
        return request.user.has_perm("moderation.change_job")

    def current_jobs(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Job]:
        """The current jobs of the objects in ``queryset``."""
        ct = ContentType.objects.get_for_model(queryset.model, for_concrete_model=False)
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        return Job.objects.filter(content_type=ct, object_id__in=ids, is_current=True)

    @admin.action(description=_("Approve their moderation (show)"),
                  permissions=["moderation_review"])
    def moderation_approve(self, request: HttpRequest,
                           queryset: models.QuerySet[Any]) -> HttpResponse | None:
        return self._decide(request, queryset, Decision.APPROVED)

    @admin.action(description=_("Reject their moderation (block)"),
                  permissions=["moderation_review"])
    def moderation_reject(self, request: HttpRequest,
                          queryset: models.QuerySet[Any]) -> HttpResponse | None:
        return self._decide(request, queryset, Decision.REJECTED)

    @admin.action(description=_("Retry their failed or expired moderation"),
                  permissions=["moderation_retry"])
    def moderation_retry(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        jobs = self.current_jobs(queryset).filter(status__in=(Status.FAILED, Status.EXPIRED))
        count = len([job for job in jobs if pipeline.retry(job, actor=request.user)])
        self.message_user(request, _("%(n)d job(s) queued again.") % {"n": count},
                          messages.SUCCESS)

    def _decide(self, request: HttpRequest, queryset: models.QuerySet[Any],
                decision: str) -> HttpResponse | None:
        """Returns the page asking for a reason code when a rejection needs one."""
        return bulk_decide(self, request, self.current_jobs(queryset), decision)



__all__ = ["CurrentJobsInline", "ModeratedAdminMixin", "annotate_job_states"]
