"""Jobs and their evidence. Workflow state is data: every transition leaves a ReviewEvent.

Models never call providers; the pipeline does (see moderation/pipeline/).
"""

from __future__ import annotations

import secrets
import uuid
from functools import partial

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import F, Q
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import leases
from .language import describe as describe_language
from .language import doubt as language_doubt
from .language import is_uncertain
from .storage import get_evidence_storage


class Status(models.TextChoices):
    PENDING = "pending", _("pending")
    SUBMITTED = "submitted", _("submitted")
    IN_PROGRESS = "in_progress", _("in progress")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")


UNFINISHED = (Status.PENDING, Status.SUBMITTED, Status.IN_PROGRESS)


class Suggestion(models.TextChoices):
    PASS = "pass", _("pass")
    REVIEW = "review", _("review")
    BLOCK = "block", _("block")


class RiskLevel(models.TextChoices):
    NONE = "none", _("none")
    LOW = "low", _("low")
    MEDIUM = "medium", _("medium")
    HIGH = "high", _("high")


class MediaKind(models.TextChoices):
    IMAGE = "image", _("image")
    VIDEO = "video", _("video")
    FRAMES = "frames", _("frame sequence")
    LIVE = "live", _("live stream")
    AUDIO = "audio", _("audio")


class ReviewState(models.TextChoices):
    NONE = "none", _("none")
    PENDING = "pending", _("pending")
    RESOLVED = "resolved", _("resolved")


class Decision(models.TextChoices):
    AUTO_PASS = "auto_pass", _("passed automatically")
    AUTO_BLOCK = "auto_block", _("blocked automatically")
    APPROVED = "approved", _("approved by a moderator")
    REJECTED = "rejected", _("rejected by a moderator")


#: decisions under which content may be shown
SHOWABLE = (Decision.AUTO_PASS, Decision.APPROVED)


def _new_seed() -> str:
    return secrets.token_hex(16)


def _new_data_id() -> str:
    return uuid.uuid4().hex


class JobQuerySet(models.QuerySet["Job"]):
    def for_object(self, obj) -> JobQuerySet:
        ct = ContentType.objects.get_for_model(obj, for_concrete_model=False)
        return self.filter(content_type=ct, object_id=str(obj.pk))

    def unfinished(self) -> JobQuerySet:
        return self.filter(status__in=UNFINISHED)

    def due(self, now=None) -> JobQuerySet:
        """Unfinished jobs whose next step is due and that no worker holds."""
        now = now or timezone.now()
        return self.unfinished().filter(
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            leases.free("lease_until", now),
        )

    def needing_enqueue(self, now, overdue_before) -> JobQuerySet:
        """Due jobs with no live task on the queue: never enqueued, enqueued before
        their retry time, enqueued so long ago that the task must be lost, or whose lease
        ran out unreleased since their last enqueue (the worker running the task died: a
        live one renews its lease, and releases it at the end)."""
        return self.due(now).filter(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("next_attempt_at"))
            | Q(enqueued_at__lte=overdue_before)
            | Q(lease_until__isnull=False, enqueued_at__lt=F("lease_until"))
        )

    def review_pending(self) -> JobQuerySet:
        return self.filter(review_state=ReviewState.PENDING)

    def carrying_label(self, label: str) -> JobQuerySet:
        """Jobs whose ``labels`` list holds ``label`` as a whole name. The list's JSON text
        has each name in quotes on SQLite and PostgreSQL alike, and the quotes keep "ad"
        from matching "ad_tii"."""
        label = label.replace('"', "")
        return self.alias(labels_text=Cast("labels", models.TextField())).filter(
            labels_text__contains=f'"{label}"')


class Job(models.Model):
    """One moderation of one media field of one object by one provider."""

    # Empty for ad-hoc jobs (the moderate command, the API), whose input is kept in
    # evidence storage under inputs/.
    content_type = models.ForeignKey(ContentType, verbose_name=_("content type"), null=True,
                                     blank=True, on_delete=models.CASCADE)
    # Text, so that integer, UUID and string primary keys all fit (str(pk)).
    object_id = models.CharField(_("object id"), max_length=255, blank=True, db_index=True)
    content_object = GenericForeignKey("content_type", "object_id")
    field_name = models.CharField(_("field name"), max_length=100, blank=True)
    file_name = models.CharField(_("file name"), max_length=500, blank=True,
                                 help_text=_("stored name"))
    file_size = models.BigIntegerField(_("file size"), null=True, blank=True)
    media_kind = models.CharField(_("media kind"), max_length=10, choices=MediaKind.choices)
    sha256 = models.CharField(_("sha256"), max_length=64, blank=True, db_index=True)

    provider = models.CharField(_("provider"), max_length=50)
    provider_task_id = models.CharField(_("provider task id"), max_length=200, null=True,
                                        blank=True)
    data_id = models.CharField(_("data id"), max_length=64, unique=True, default=_new_data_id)
    seed = models.CharField(_("seed"), max_length=64, default=_new_seed, editable=False)
    scenes = models.JSONField(_("scenes"), default=list, blank=True)
    biz_type = models.CharField(_("biz type"), max_length=100, blank=True)
    # Per-job provider options: interval, max_frames, audio, chunk_seconds, ...
    options = models.JSONField(_("options"), default=dict, blank=True)

    status = models.CharField(_("status"), max_length=12, choices=Status.choices,
                              default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True,
                                           db_index=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    # When the job was last put on the queue; the sweeper re-enqueues only jobs whose
    # task is overdue (lost by a dying worker) or whose retry time has come.
    enqueued_at = models.DateTimeField(_("enqueued at"), null=True, blank=True)

    suggestion = models.CharField(_("suggestion"), max_length=6, choices=Suggestion.choices,
                                  blank=True)
    risk_level = models.CharField(
        _("risk level"), max_length=6, choices=RiskLevel.choices, default=RiskLevel.NONE
    )
    labels = models.JSONField(
        _("labels"), default=list, blank=True, help_text=_("names of the labels that carry risk")
    )
    frame_summary = models.JSONField(_("frame summary"), default=dict, blank=True)
    # How far the provider has got while the job runs: {"done", "total", "unit" ("s" of
    # the media or "frames"), "at"}, written by the worker (pipeline/progress.py) at most
    # about once a second; {} when the provider reports nothing.
    progress = models.JSONField(_("progress"), default=dict, blank=True)
    audio_summary = models.JSONField(_("audio summary"), default=dict, blank=True)
    error_code = models.CharField(_("error code"), max_length=50, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    result = models.JSONField(_("result"), null=True, blank=True, help_text=_("normalized result"))
    raw_result = models.JSONField(_("raw result"), null=True, blank=True,
                                  help_text=_("provider's answer"))
    # False once a newer job of the same object and field exists.
    is_current = models.BooleanField(_("is current"), default=True)
    reused_from = models.ForeignKey(
        "self", verbose_name=_("reused from"), null=True, blank=True, on_delete=models.SET_NULL,
        related_name="reused_by"
    )

    review_state = models.CharField(
        _("review state"), max_length=8, choices=ReviewState.choices, default=ReviewState.NONE
    )
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices, blank=True)
    # A moderator's claim on a pending review: nobody else opens it until it expires.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("claimed by"), null=True, blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    # Kept past retention (evidence in a dispute, a legal request): moderation_purge skips it.
    legal_hold = models.BooleanField(_("legal hold"), default=False)

    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        verbose_name = _("job")
        verbose_name_plural = _("jobs")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_task_id"],
                condition=Q(provider_task_id__isnull=False),
                name="moderation_job_unique_task_per_provider",
            ),
        ]
        indexes = [
            models.Index(
                fields=["content_type", "object_id", "field_name"], name="moderation_job_object"
            ),
            models.Index(fields=["status", "next_attempt_at"], name="moderation_job_due"),
            models.Index(fields=["review_state", "risk_level"], name="moderation_job_review"),
        ]
        permissions = [
            ("review_job", "Can approve or reject moderation jobs"),
            ("send_feedback", "Can send moderation feedback to providers"),
        ]

    def __str__(self) -> str:
        # In the active language (the admin's titles, breadcrumbs and checkbox labels);
        # nothing parses it. Kind and status by their choices' names.
        values = {"id": self.pk, "kind": self.get_media_kind_display(),
                  "field": self.field_name, "status": self.get_status_display()}
        if self.field_name:
            return gettext("Job %(id)s %(kind)s %(field)s [%(status)s]") % values
        return gettext("Job %(id)s %(kind)s [%(status)s]") % values

    @property
    def is_finished(self) -> bool:
        return self.status not in UNFINISHED

    @property
    def showable(self) -> bool:
        return self.decision in SHOWABLE

    @property
    def is_adhoc(self) -> bool:
        return self.content_type_id is None


class Frame(models.Model):
    """A captured frame (an image is one frame at offset 0)."""

    job = models.ForeignKey(Job, verbose_name=_("job"), on_delete=models.CASCADE,
                            related_name="frames")
    offset = models.FloatField(_("offset"), default=0.0, help_text=_("seconds from the start"))
    risk_level = models.CharField(
        _("risk level"), max_length=6, choices=RiskLevel.choices, default=RiskLevel.NONE
    )
    thumbnail = models.ImageField(
        _("thumbnail"), storage=get_evidence_storage, upload_to="frames/%Y/%m/%d", blank=True,
        max_length=300
    )
    # Full-resolution PDQ hash (64 hex digits) and quality, when the engine computed one:
    # what feedback adds to the hash libraries (a 320 px thumbnail's hash is 10-16 bits off).
    pdq = models.CharField(_("pdq"), max_length=64, blank=True)
    pdq_quality = models.PositiveSmallIntegerField(_("pdq quality"), null=True, blank=True)
    # The OCR lines as boxes in fractions of the frame, with the text labels each line's
    # words gave (providers.result.Frame.text_boxes): drawn over the thumbnail, and only
    # the flagged ones blurred when a frame's only flags are text labels.
    text_boxes = models.JSONField(_("text boxes"), default=list, blank=True)

    class Meta:
        verbose_name = _("frame")
        verbose_name_plural = _("frames")
        ordering = ["job", "offset", "id"]
        indexes = [models.Index(fields=["job", "offset"], name="moderation_frame_offset")]

    def __str__(self) -> str:
        return f"frame {self.offset:.2f}s of job {self.job_id}"


class FrameLabel(models.Model):
    frame = models.ForeignKey(Frame, verbose_name=_("frame"), on_delete=models.CASCADE,
                              related_name="labels")
    label = models.CharField(_("label"), max_length=100, db_index=True)
    confidence = models.FloatField(_("confidence"), help_text=_("0..100"))
    risk_level = models.CharField(
        _("risk level"), max_length=6, choices=RiskLevel.choices, default=RiskLevel.NONE
    )
    service = models.CharField(_("service"), max_length=50, blank=True)
    scene = models.CharField(_("scene"), max_length=50, blank=True)
    description = models.CharField(_("description"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("frame label")
        verbose_name_plural = _("frame labels")
        ordering = ["-confidence"]

    def __str__(self) -> str:
        return f"{self.label} {self.confidence:.0f}"


class AudioSlice(models.Model):
    job = models.ForeignKey(Job, verbose_name=_("job"), on_delete=models.CASCADE,
                            related_name="slices")
    start = models.FloatField(_("start"))
    end = models.FloatField(_("end"))
    text = models.TextField(_("text"), blank=True)
    # [{"label", "confidence", "risk_level", "service", "description"}]; service tells
    # which path found it: "asr" (transcript), "kws" (keyword spotting) or "asr+kws".
    labels = models.JSONField(_("labels"), default=list, blank=True)
    risk_words = models.JSONField(_("risk words"), default=list, blank=True)
    risk_level = models.CharField(
        _("risk level"), max_length=6, choices=RiskLevel.choices, default=RiskLevel.NONE
    )
    clip = models.FileField(
        _("clip"), storage=get_evidence_storage, upload_to="clips/%Y/%m/%d", blank=True,
        max_length=300
    )
    # What the recogniser said it heard: a language code ("en", "zh") and its probability
    # 0..1; empty / null when it did not say (pocketsphinx, keyword-only slices, providers).
    language = models.CharField(_("language"), max_length=16, blank=True)
    language_confidence = models.FloatField(_("language confidence"), null=True, blank=True)

    class Meta:
        verbose_name = _("audio slice")
        verbose_name_plural = _("audio slices")
        ordering = ["job", "start", "id"]

    def __str__(self) -> str:
        return gettext("slice %(start).1f-%(end).1fs of job %(job)s") % {
            "start": self.start, "end": self.end, "job": self.job_id}

    @property
    def label_names(self) -> list[str]:
        return [lbl["label"] for lbl in self.labels]

    @property
    def language_uncertain(self) -> bool:
        """The detected language is too doubtful to trust the transcript (see language.py)."""
        return is_uncertain(self.language, self.language_confidence)

    @property
    def language_text(self) -> str:
        return describe_language(self.language, self.language_confidence)

    @property
    def language_doubt(self) -> str:
        return language_doubt(self.language, self.language_confidence)


class ReviewEvent(models.Model):
    """Append-only audit trail: who did what to a job, when and why."""

    class Action(models.TextChoices):
        CREATED = "created", _("created")
        SUBMITTED = "submitted", _("submitted")
        REUSED = "reused", _("reused an earlier result")
        COMPLETED = "completed", _("completed")
        RETRY_SCHEDULED = "retry", _("retry scheduled")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")
        AUTO_PASS = "auto_pass", _("passed automatically")
        AUTO_BLOCK = "auto_block", _("blocked automatically")
        REVIEW_REQUIRED = "review_required", _("sent to review")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        REQUEUED = "requeued", _("re-queued")
        FEEDBACK = "feedback", _("feedback requested")
        FEEDBACK_SENT = "feedback_sent", _("feedback sent")
        FEEDBACK_FAILED = "feedback_failed", _("feedback failed")
        UNDONE = "undone", _("decision undone")

    job = models.ForeignKey(Job, verbose_name=_("job"), on_delete=models.CASCADE,
                            related_name="events")
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("actor"), null=True, blank=True,
        on_delete=models.SET_NULL
    )
    reason = models.TextField(_("reason"), blank=True)
    # A decision's policy category (MODERATION["REASONS"], moderation/reasons.py); the
    # free-text reason above is the moderator's note.
    reason_code = models.CharField(_("reason code"), max_length=50, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("review event")
        verbose_name_plural = _("review events")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return gettext("%(action)s on job %(job)s") % {"action": self.get_action_display(),
                                                        "job": self.job_id}

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionDenied("review events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("review events are append-only")


class HashEntry(models.Model):
    """An allow- or block-list image, known by its PDQ hash."""

    class ListType(models.TextChoices):
        ALLOW = "allow", _("allow list")
        BLOCK = "block", _("block list")

    list_type = models.CharField(_("list type"), max_length=5, choices=ListType.choices)
    label = models.CharField(
        _("label"), max_length=100, blank=True, help_text=_("block list: reported as <label>_lib")
    )
    pdq = models.CharField(_("pdq"), max_length=64, help_text=_("PDQ hash, 64 hex digits"))
    quality = models.PositiveSmallIntegerField(_("quality"), default=100)
    note = models.CharField(_("note"), max_length=500, blank=True)
    source_job = models.ForeignKey(Job, verbose_name=_("source job"), null=True, blank=True,
                                   on_delete=models.SET_NULL)
    # The frame whose image was added (its thumbnail is the entry's picture), if any.
    source_frame = models.ForeignKey(Frame, verbose_name=_("source frame"), null=True, blank=True,
                                     on_delete=models.SET_NULL,
                                     related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
        on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("hash entry")
        verbose_name_plural = _("hash entries")
        constraints = [
            models.UniqueConstraint(fields=["list_type", "pdq"], name="moderation_hash_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.list_type}:{self.label or '-'}:{self.pdq[:12]}"


class RateBudget(models.Model):
    """One shared rate budget (an account's request or feedback rate, or the lock of its
    unfinished-task slots), so that every worker process respects the same limit.

    ``next_at`` is the earliest time (Unix seconds) the next call may go: the "theoretical
    arrival time" of a GCRA limiter; see moderation/ratelimit.py.
    """

    key = models.CharField(_("key"), max_length=200, primary_key=True)
    next_at = models.FloatField(_("next at"), default=0.0)

    class Meta:
        verbose_name = _("rate budget")
        verbose_name_plural = _("rate budgets")

    def __str__(self) -> str:
        return self.key


class ModeratorPreference(models.Model):
    """Per-moderator console settings."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, verbose_name=_("user"),
                                on_delete=models.CASCADE,
                                related_name="moderation_preference")
    # Off (the default): flagged imagery is blurred until clicked.
    reveal_flagged = models.BooleanField(_("reveal flagged"), default=False)

    def __str__(self) -> str:
        return f"preferences of {self.user}"


class FeedbackRequest(models.Model):
    """A moderator's feedback on a job, sent to its provider by a queued task.

    Alibaba 1.0 takes it through its feedback operations (rate limited, retried); the local
    provider turns it into hash library entries. ``status`` shows where it is.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        NOT_SUPPORTED = "unsupported", _("not supported by the provider")

    job = models.ForeignKey(Job, verbose_name=_("job"), on_delete=models.CASCADE,
                            related_name="feedback")
    provider = models.CharField(_("provider"), max_length=50)
    decision = models.CharField(_("decision"), max_length=10, choices=Decision.choices)
    # The frames the feedback is about (Frame ids); empty: the whole job.
    frame_ids = models.JSONField(_("frame ids"), default=list, blank=True)
    scenes = models.JSONField(_("scenes"), default=list, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    status = models.CharField(_("status"), max_length=11, choices=State.choices,
                              default=State.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=50, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"),
                                   null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("feedback request")
        verbose_name_plural = _("feedback requests")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"],
                                name="moderation_feedback_due")]

    def __str__(self) -> str:
        return f"feedback {self.decision} on job {self.job_id} [{self.status}]"


class AlertState(models.Model):
    """One operator alert's episode (moderation/alerts.py): ``active`` from the check that
    found its figure at or over the threshold until one finds it back under; the alert is
    sent once per episode. In the database so that every worker's sweeper agrees."""

    key = models.CharField(_("key"), max_length=50, primary_key=True)
    active = models.BooleanField(_("active"), default=False)
    value = models.FloatField(_("value"), null=True, blank=True,
                              help_text=_("figure at the last change"))
    since = models.DateTimeField(_("since"), null=True, blank=True,
                                 help_text=_("start of the episode"))
    cleared_at = models.DateTimeField(_("cleared at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")

    def __str__(self) -> str:
        return f"{self.key} {'active' if self.active else 'clear'}"


def delete_evidence_file(sender, instance, using=None, **kwargs) -> None:
    """Evidence goes with its row (replaced results, purges, deleted jobs), once the
    deletion has committed: a rolled-back ingest keeps its files."""
    for fieldfile in (getattr(instance, "thumbnail", None), getattr(instance, "clip", None)):
        if fieldfile:
            storage, name = fieldfile.storage, fieldfile.name
            transaction.on_commit(partial(storage.delete, name), using=using)


models.signals.post_delete.connect(delete_evidence_file, sender=Frame,
                                   dispatch_uid="moderation.frame_evidence")
models.signals.post_delete.connect(delete_evidence_file, sender=AudioSlice,
                                   dispatch_uid="moderation.slice_evidence")
