from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

from .. import pipeline, review
from ..health import auth_failures
from ..models import (
    UNFINISHED,
    AudioSlice,
    Decision,
    Frame,
    Job,
    ReviewEvent,
    RiskLevel,
    Status,
)
from .console import ReviewConsoleMixin
from .evidence import flagged_segments, frame_counts, label_chip, label_chips
from .overview import OverviewMixin
from .progress import JobProgressMixin, is_id, progress_html

RISK_COLOURS = {"high": "#ba2121", "medium": "#c77c00", "low": "#447e9b", "none": "#2e7d32"}


def risk_badge(level: str):
    """A risk level by its name in the active language (``RiskLevel``'s labels, as
    ``get_risk_level_display``), coloured by its value; a value that is no level as stored."""
    name = RiskLevel(level).label if level in RiskLevel.values else level
    return format_html('<b style="color:{}">{}</b>', RISK_COLOURS.get(level, "#666"), name)


def thumbnail_tag(frame_id, size: int = 80, blurred: bool = False):
    """A frame's thumbnail linking to the full image; ``blurred``: the wellness blur
    (``mod-blurred``, console.css), which the first click lifts (evidence.js)."""
    if not frame_id:
        return "-"
    url = reverse("moderation:frame-thumbnail", args=[frame_id])
    return format_html(
        '<a href="{}" target="_blank" class="mod-thumb{}"><img src="{}" loading="lazy" alt="" '
        'style="max-width:{}px;max-height:{}px"></a>', url, " mod-blurred" if blurred else "",
        url, size, size,
    )


def reveals_flagged(request) -> bool:
    """The user's wellness preference (``ModeratorPreference``), read once per request."""
    if not hasattr(request, "_moderation_reveal"):
        request._moderation_reveal = review.reveals_flagged(request.user)
    return request._moderation_reveal


#: Segments listed on the job page (the timeline shows them all); the rest: the review page.
SEGMENTS_SHOWN = 100


class FrameInline(admin.TabularInline):
    """Flagged frames only: a 2-hour video has 7,200 frames, which the review page pages
    through; an unpaginated inline of all of them would be a multi-megabyte page."""

    model = Frame
    extra = 0
    can_delete = False
    show_change_link = False
    fields = ("offset", "risk", "thumb", "label_list")
    readonly_fields = fields
    max_num = 0
    verbose_name_plural = _("flagged frames (every frame: the review page)")
    classes = ("collapse",)  # the segments above the form show the same frames, grouped
    reveal_flagged = False  # set per request by JobAdmin.get_inline_instances

    def get_queryset(self, request):
        return (super().get_queryset(request).exclude(risk_level=RiskLevel.NONE)
                .prefetch_related("labels"))

    @admin.display(description=_("risk"))
    def risk(self, obj):
        return risk_badge(obj.risk_level)

    @admin.display(description=_("thumbnail"))
    def thumb(self, obj):
        return thumbnail_tag(obj.pk if obj.thumbnail else None, 160,
                             blurred=not self.reveal_flagged)

    @admin.display(description=_("labels"))
    def label_list(self, obj):
        return format_html_join(
            " ", "{}{}",
            ((label_chip(lbl.label, lbl.confidence, lbl.risk_level),
              f" {lbl.description}" if lbl.description else "") for lbl in obj.labels.all()),
        ) or "-"


class AudioSliceInline(admin.TabularInline):
    """Flagged slices only, for the same reason as :class:`FrameInline`."""

    model = AudioSlice
    extra = 0
    can_delete = False
    max_num = 0
    fields = ("start", "end", "risk", "language_shown", "text", "label_list", "risk_word_text",
              "clip_player")
    readonly_fields = fields
    verbose_name_plural = _("flagged audio slices (the whole transcript: the review page)")

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(risk_level=RiskLevel.NONE)

    @admin.display(description=_("risk"))
    def risk(self, obj):
        return risk_badge(obj.risk_level)

    @admin.display(description=_("language"))
    def language_shown(self, obj):
        if obj.language_uncertain:
            return format_html('{} <strong title="{}">{}</strong>', obj.language_text,
                               obj.language_doubt, _("uncertain"))
        return obj.language_text or "-"

    @admin.display(description=_("labels (found by)"))
    def label_list(self, obj):
        return format_html_join(
            " ", "{} ({})",
            ((label_chip(lbl["label"], float(lbl.get("confidence", 0)),
                         lbl.get("risk_level", "")), lbl.get("service", ""))
             for lbl in obj.labels),
        ) or "-"

    @admin.display(description=_("risk words"))
    def risk_word_text(self, obj):
        return ", ".join(obj.risk_words) or "-"

    @admin.display(description=_("clip"))
    def clip_player(self, obj):
        if not obj.clip:
            return "-"
        url = reverse("moderation:slice-clip", args=[obj.pk])
        # muted under the wellness preference (evidence.js; the attribute alone is not
        # reflected by every browser for <audio>)
        return format_html('<audio controls preload="none" src="{}"{}></audio>', url,
                           "" if self.reveal_flagged else mark_safe(" muted data-mod-mute"))

    reveal_flagged = False  # set per request by JobAdmin.get_inline_instances


class ReviewEventInline(admin.TabularInline):
    model = ReviewEvent
    extra = 0
    can_delete = False
    max_num = 0
    fields = ("created_at", "action", "actor", "reason_code", "reason")
    readonly_fields = fields


def evidence_context(job_id) -> dict:
    """The job page's evidence: frame counts, flagged frames grouped into segments on a
    timeline (each frame decorated with its label names and OCR boxes), or the summary
    of a clean job. Three queries, whatever the number of frames."""
    counts = frame_counts(job_id)
    frames, segments = flagged_segments(job_id, counts)
    return {"frame_counts": counts, "segments": segments, "flagged_read": len(frames),
            "segments_shown": segments[:SEGMENTS_SHOWN],
            "segments_more": max(0, len(segments) - SEGMENTS_SHOWN),
            "flagged_more": counts["flagged"] > len(frames), "timeline_end": counts["end"]}


@admin.register(Job)
class JobAdmin(JobProgressMixin, OverviewMixin, ReviewConsoleMixin, admin.ModelAdmin):
    # Fits a 1366 px screen beside the navigation and the filters (tests/browser/
    # test_evidence_display.py): the media kind under the object, the console link on the
    # outcome, a short creation time.
    list_display = (
        "id", "thumb", "object_column", "status_progress", "risk", "label_text", "outcome",
        "created",
    )
    list_filter = (
        "status", "suggestion", "risk_level", "review_state", "media_kind", "provider",
        ("content_type", admin.RelatedOnlyFieldListFilter),
    )
    search_fields = ("=id", "data_id", "provider_task_id", "object_id", "file_name",
                     "error_message")
    date_hierarchy = "created_at"
    list_select_related = ("content_type",)
    actions = ["retry_jobs", "approve_jobs", "reject_jobs"]
    # No FrameInline: the segments above the form show the flagged frames grouped, in a
    # bounded page (an inline row per flagged frame took 4 s to render for 600 of them).
    inlines = [AudioSliceInline, ReviewEventInline]
    change_form_template = "moderation/admin/job_change_form.html"
    change_list_template = "moderation/admin/job_change_list.html"
    fieldsets = (
        (None, {"fields": ("content_link", "field_name", "file_name", "media_kind",
                           "file_size", "sha256")}),
        (_("Outcome"), {"fields": ("status", "suggestion", "risk", "label_text",
                                   "frame_summary", "audio_summary", "review_state",
                                   "decision", "error_code", "error_message")}),
        (_("Provider"), {"fields": ("provider", "provider_task_id", "data_id", "scenes",
                                    "biz_type", "attempts", "next_attempt_at",
                                    "reused_from")}),
        (_("Times"), {"fields": ("created_at", "submitted_at", "completed_at",
                                 "updated_at")}),
        (_("Raw"), {"classes": ("collapse",), "fields": ("result", "raw_result")}),
    )

    def get_queryset(self, request):
        first_thumb = Frame.objects.filter(job=OuterRef("pk")).exclude(thumbnail="")
        return (
            super().get_queryset(request)
            .annotate(thumb_id=Subquery(first_thumb.order_by("offset")
                                        .values("pk")[:1]))
            .prefetch_related("content_object")
        )

    def get_list_display(self, request):
        """``thumb`` bound to the user's wellness preference: flagged thumbnails blurred."""
        reveal = reveals_flagged(request)

        @admin.display(description=_("thumbnail"))
        def thumb(obj):
            return thumbnail_tag(getattr(obj, "thumb_id", None),
                                 blurred=not reveal and obj.risk_level != RiskLevel.NONE)

        return [thumb if name == "thumb" else name for name in self.list_display]

    def get_inline_instances(self, request, obj=None):
        instances = super().get_inline_instances(request, obj)
        reveal = reveals_flagged(request) if request else False
        for inline in instances:  # new instances per request: safe to set
            inline.reveal_flagged = reveal
        return instances

    def changelist_view(self, request, extra_context=None):
        """A provider refusing our credentials fails every job: say so above the list."""
        for failure in auth_failures():
            messages.error(request, _(
                "Provider %(provider)s refused our credentials (%(code)s): %(message)s — "
                "%(jobs)d job(s) failed. Fix its settings, then retry them."
            ) % {"provider": failure.provider, "code": failure.code,
                 "message": failure.message, "jobs": failure.jobs})
        extra = {"reveal_flagged": reveals_flagged(request)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"reveal_flagged": reveals_flagged(request)}
        if is_id(str(object_id)):  # anything else: the admin's own "does not exist" answer
            extra.update(evidence_context(object_id))
            running = Job.objects.filter(pk=object_id, status__in=UNFINISHED).only(
                "id", "status", "progress").first()
            if running is not None:  # the bar, kept current by progress.js
                extra["job_progress"] = progress_html(running, reload_when_done=True)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def get_readonly_fields(self, request, obj=None):
        names = [f.name for f in Job._meta.fields]
        return [*names, "content_link", "risk", "label_text"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # results are facts; decisions go through review actions

    @admin.display(description=_("thumbnail"))
    def thumb(self, obj):
        return thumbnail_tag(getattr(obj, "thumb_id", None))

    @admin.display(description=_("object"))
    def content_link(self, obj):
        if obj.content_type_id is None:  # submitted through the API, no model instance
            return format_html('<span title="{}">{}</span>', obj.file_name, _("ad-hoc upload"))
        target = obj.content_object
        if target is None:
            return format_html("<i>{} {} (deleted)</i>", obj.content_type, obj.object_id)
        try:
            url = reverse(
                f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change",
                args=[obj.object_id],
            )
        except NoReverseMatch:  # not in this admin site
            return format_html("{} · {}", target, obj.field_name)
        return format_html('<a href="{}">{}</a> · {}', url, target, obj.field_name)

    @admin.display(description=_("console"))
    def review_link(self, obj):
        if obj.status != Status.DONE:
            return "-"
        return format_html('<a href="{}">{}</a>', reverse("admin:moderation_job_review",
                                                         args=[obj.pk]), _("review"))

    @admin.display(description=_("outcome"), ordering="suggestion")
    def outcome(self, obj):
        """The decision, linked to the review console once the job is done."""
        if obj.status != Status.DONE:
            return obj.error_code or "-"
        url = reverse("admin:moderation_job_review", args=[obj.pk])
        if obj.review_state == "pending":
            return format_html('<a href="{}"><b>{}</b></a>', url, _("needs review"))
        return format_html('<a href="{}">{}</a>', url,
                           obj.get_decision_display() or obj.suggestion)

    @admin.display(description=_("object"))
    def object_column(self, obj):
        return format_html("{}<br><small>{}</small>", self.content_link(obj),
                           obj.get_media_kind_display())

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, obj):
        when = localtime(obj.created_at)
        return format_html('<span title="{}">{}<br>{}</span>',
                           date_format(when, "DATETIME_FORMAT"), when.strftime("%Y-%m-%d"),
                           when.strftime("%H:%M"))

    @admin.display(description=_("risk"))
    def risk(self, obj):
        if obj.status in UNFINISHED:  # not "none" in green before anything was looked at
            return format_html('<span class="mod-risk-pending">{}</span>', _("pending"))
        return risk_badge(obj.risk_level)

    @admin.display(description=_("labels"))
    def label_text(self, obj):
        return label_chips(obj.labels)

    def has_retry_permission(self, request) -> bool:
        """Retrying changes a job and spends provider calls: ``moderation.change_job`` (the
        job form stays read-only whatever the permission, see has_change_permission)."""
        return request.user.has_perm("moderation.change_job")

    @admin.action(description=_("Retry selected failed or expired jobs"),
                  permissions=["retry"])
    def retry_jobs(self, request, queryset):
        jobs = queryset.filter(status__in=(Status.FAILED, Status.EXPIRED))
        count = sum(1 for job in jobs if pipeline.retry(job, actor=request.user))
        self.message_user(request, f"{count} job(s) queued again.", messages.SUCCESS)

    @admin.action(description=_("Approve selected jobs (pass)"), permissions=["review"])
    def approve_jobs(self, request, queryset):
        return self._bulk_decide(request, queryset, Decision.APPROVED)

    @admin.action(description=_("Reject selected jobs (block)"), permissions=["review"])
    def reject_jobs(self, request, queryset):
        return self._bulk_decide(request, queryset, Decision.REJECTED)


@admin.register(ReviewEvent)
class ReviewEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "job", "action", "actor", "reason_code", "reason")
    # By moderator: only users who appear in the trail are listed (one DISTINCT query).
    list_filter = ("action", ("actor", admin.RelatedOnlyFieldListFilter), "reason_code")
    list_select_related = ("job", "actor")
    search_fields = ("=job__id", "reason", "=reason_code", "actor__username")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
