"""The domain steps of moderation, as plain functions: create, submit, poll, ingest, decide.

Tasks and views only call these. Jobs are the source of truth and every step is
idempotent: a worker first takes a *lease* on the job with one conditional UPDATE (works
on SQLite and PostgreSQL alike), so a task delivered twice, or re-enqueued by the sweeper,
does the work once.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils import timezone

from . import signals
from .conf import moderation_settings
from .libraries import hash_library
from .media import adhoc_media, file_sha256, guess_kind, media_for, save_adhoc_input, stored_name
from .models import (
    UNFINISHED,
    AudioSlice,
    Decision,
    Frame,
    FrameLabel,
    Job,
    MediaKind,
    ReviewEvent,
    ReviewState,
    Status,
)
from .policy import apply_block, apply_unblock, suggestion_for
from .providers import (
    AuthError,
    Expired,
    Media,
    MediaError,
    ModerationError,
    ModerationRequest,
    NotSupported,
    Result,
    Throttled,
    UnknownProvider,
    get_provider,
)
from .providers.result import worst_risk
from .registry import Registration, registry

logger = logging.getLogger(__name__)

Action = ReviewEvent.Action


# --- creating and cancelling ------------------------------------------------------------


def last_job(instance, field_name: str) -> Job | None:
    return Job.objects.for_object(instance).filter(field_name=field_name).first()


def create_job(instance, registration: Registration, field_name: str, *, sha256: str = "",
               created: bool = False) -> Job:
    """A pending job for the current file of ``instance.<field_name>``.

    Older jobs of the same field are superseded (unfinished ones cancelled). A just
    created object has none: deleting an object retires its jobs, even if its pk returns.
    """
    value = getattr(instance, field_name)
    name = value.name if hasattr(value, "name") else str(value)
    field = instance._meta.get_field(field_name)
    kind = registration.kinds.get(field_name) or guess_kind(field, name)
    if not created:
        cancel_field_jobs(instance, field_name, reason="superseded by a newer file")
        Job.objects.for_object(instance).filter(field_name=field_name, is_current=True).update(
            is_current=False
        )
    job = Job.objects.create(
        content_type=ContentType.objects.get_for_model(instance, for_concrete_model=False),
        object_id=str(instance.pk),
        field_name=field_name,
        file_name=name,
        media_kind=kind,
        sha256=sha256,
        provider=registration.provider_alias(),
        scenes=list(registration.scenes),
        biz_type=registration.biz_type,
        options=registration.job_options(),
    )
    log(job, Action.CREATED)
    return job


def create_adhoc_job(*, kind: str | None = None, name: str = "", content: bytes | None = None,
                     url: str = "", frames: list[tuple[float, bytes]] | None = None,
                     provider: str | None = None, scenes: list[str] | None = None,
                     biz_type: str = "", options: dict | None = None) -> Job:
    """A job for media that belongs to no model field: one file (``name`` + ``content``),
    a URL (video file or live stream), or a frame sequence of (offset, image bytes).

    The input is kept in evidence storage (private) so that a worker can read it; the job
    is enqueued when the transaction commits.
    """
    from .conf import moderation_settings as conf
    from .models import _new_data_id

    given = [x for x in (content is not None, bool(url), frames is not None) if x]
    if len(given) != 1:
        raise ValueError("give exactly one of content, url or frames")
    data_id = _new_data_id()
    job_options = dict(options or {})
    if frames is not None:
        kind = "frames"
        stored = [[float(offset), save_adhoc_input(data_id, f"{i:05d}.img", data)]
                  for i, (offset, data) in enumerate(frames)]
        job_options["frames"] = stored
        file_name = f"{len(stored)} frames"
    elif url:
        kind = kind or guess_kind(models.URLField(), url)
        file_name = url
    else:
        kind = kind or guess_kind(models.FileField(), name)
        file_name = save_adhoc_input(data_id, name, content)
    job = Job.objects.create(
        data_id=data_id, field_name="", file_name=file_name, media_kind=kind,
        provider=provider or conf.DEFAULT_PROVIDER, scenes=list(scenes or []),
        biz_type=biz_type, options=job_options,
    )
    log(job, Action.CREATED)
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def cancel_field_jobs(instance, field_name: str, reason: str) -> int:
    jobs = Job.objects.for_object(instance).filter(field_name=field_name).unfinished()
    return _cancel(jobs, reason)


def cancel_object_jobs(instance, reason: str) -> int:
    """The object is gone: cancel its unfinished jobs and retire all of them."""
    count = _cancel(Job.objects.for_object(instance).unfinished(), reason)
    Job.objects.for_object(instance).filter(is_current=True).update(is_current=False)
    return count


def _cancel(jobs, reason: str) -> int:
    count = 0
    for job in jobs.only("pk"):
        count += Job.objects.filter(pk=job.pk, status__in=UNFINISHED).update(
            status=Status.CANCELLED, error_message=reason, lease_until=None,
            completed_at=timezone.now(),
        )
        log(job, Action.CANCELLED, reason)
    return count


def log(job: Job, action: str, reason: str = "", actor=None, **data: Any) -> ReviewEvent:
    return ReviewEvent.objects.create(job=job, action=action, reason=reason, actor=actor,
                                      data=data)


# --- queueing -----------------------------------------------------------------------------


def enqueue(job_id: int) -> None:
    """Put the job on the django-q2 queue (called on transaction commit)."""
    from . import tasks

    Job.objects.filter(pk=job_id).update(enqueued_at=timezone.now())
    tasks.enqueue_job(job_id)


def sweep(now=None) -> int:
    """Re-enqueue due, stuck or lost jobs; returns how many. Run by a schedule."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=moderation_settings.LEASE_SECONDS)
    ids = list(Job.objects.needing_enqueue(now, overdue).values_list("pk", flat=True)[:1000])
    for job_id in ids:
        enqueue(job_id)
    return len(ids)


def retry(job: Job, actor=None) -> Job:
    """Put a failed or expired job back in line (by hand: admin action, command)."""
    updated = Job.objects.filter(
        pk=job.pk, status__in=(Status.FAILED, Status.EXPIRED)
    ).update(
        status=Status.PENDING, attempts=0, next_attempt_at=None, lease_until=None,
        error_code="", error_message="", provider_task_id=None,
    )
    if updated:
        log(job, Action.REQUEUED, actor=actor)
        transaction.on_commit(lambda: enqueue(job.pk))
    job.refresh_from_db()
    return job


# --- the worker's step --------------------------------------------------------------------


class Lease:
    """A worker's hold on a job: taken with one conditional UPDATE, renewed by long
    steps (live streams), released at the end."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.until = None

    def _new_until(self):
        return timezone.now() + timedelta(seconds=moderation_settings.LEASE_SECONDS)

    def take(self) -> bool:
        until = self._new_until()
        if Job.objects.due().filter(pk=self.job_id).update(lease_until=until):
            self.until = until
            return True
        return False

    def renew(self) -> None:
        until = self._new_until()
        if Job.objects.filter(pk=self.job_id, lease_until=self.until).update(lease_until=until):
            self.until = until

    def release(self) -> None:
        Job.objects.filter(pk=self.job_id, lease_until=self.until).update(lease_until=None)


def process(job_id: int) -> str:
    """Advance one job by one step. Returns what happened (for logs and tests)."""
    lease = Lease(job_id)
    if not lease.take():
        return "skipped"
    job = Job.objects.get(pk=job_id)
    try:
        if job.status == Status.PENDING:
            return submit(job, lease)
        return poll(job)
    except ModerationError as exc:
        return handle_error(job, exc)
    except Exception as exc:  # a bug or a crash in an engine: visible, retryable
        logger.exception("moderation job %s crashed", job.pk)
        error = ModerationError(f"{type(exc).__name__}: {exc}", code="internal_error")
        return handle_error(job, error)
    finally:
        lease.release()


def media_of(job: Job) -> Media | None:
    """What the job moderates, or None when it no longer exists (the job is cancelled)."""
    if job.is_adhoc:
        return adhoc_media(job)
    instance = job.content_object
    if instance is None:
        _cancel(Job.objects.filter(pk=job.pk), "the object no longer exists")
        return None
    value = getattr(instance, job.field_name)
    if stored_name(value) != job.file_name:
        _cancel(Job.objects.filter(pk=job.pk), "superseded by a newer file")
        return None
    return media_for(value, job.file_name, job.media_kind)


def submit(job: Job, lease: Lease | None = None) -> str:
    media = media_of(job)
    if media is None:
        return "cancelled"
    if media.has_bytes:
        try:
            job.sha256 = job.sha256 or media.sha256()
        except FileNotFoundError as exc:
            raise MediaError(f"file {job.file_name!r} is missing from storage",
                             code="file_missing") from exc
        job.file_size = media.size
    job.attempts += 1
    job.submitted_at = timezone.now()
    job.save(update_fields=["sha256", "file_size", "attempts", "submitted_at", "updated_at"])

    earlier = reusable_result(job)
    if earlier is not None:
        job.reused_from = earlier
        job.save(update_fields=["reused_from", "updated_at"])
        log(job, Action.REUSED, data_job=earlier.pk)
        copy_evidence_and_ingest(job, earlier)
        return "reused"

    provider = get_provider(job.provider)
    provider.check_media(media)
    request = build_request(job, provider)
    if job.media_kind == MediaKind.LIVE:
        return follow_stream(job, provider.stream(media, request), lease)
    result = provider.submit(media, request)
    _after_commit(signals.job_submitted, job)
    log(job, Action.SUBMITTED)
    if result.finished:
        ingest(job, result)
        return "done"
    _await(job, result)
    return "submitted"


def follow_stream(job: Job, partials, lease: Lease | None) -> str:
    """Ingest a live stream's partial results as they come.

    Rows appear while the job is ``in_progress``; a block fires at once (block action and
    ``content_blocked``); the job ends when the stream does, at the provider's maximum
    duration, or when it is cancelled (checked between chunks).
    """
    _after_commit(signals.job_submitted, job)
    log(job, Action.SUBMITTED)
    Job.objects.filter(pk=job.pk).update(status=Status.IN_PROGRESS)
    progress = Result(status="in_progress")
    blocked = False
    try:
        for partial in partials:
            if Job.objects.filter(pk=job.pk, status=Status.CANCELLED).exists():
                return "cancelled"
            blocked = ingest_partial(job, partial, progress, already_blocked=blocked)
            if lease is not None:
                lease.renew()
            if partial.status == "done":
                break
    finally:
        if hasattr(partials, "close"):
            partials.close()  # stops the provider's reader (closes the stream)
    finish_stream(job, progress, already_blocked=blocked)
    return "done"


def ingest_partial(job: Job, partial: Result, progress: Result, already_blocked: bool) -> bool:
    """Append one chunk's rows; returns whether the content is blocked by now."""
    evidence = _store_evidence(job, partial)
    progress.frames += partial.frames
    progress.slices += partial.slices
    progress.risk_level = worst_risk([progress.risk_level, partial.risk_level])
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in UNFINISHED:
            return already_blocked
        _write_frames(locked, partial, evidence)
        _write_slices(locked, partial, evidence)
        locked.risk_level = progress.risk_level
        locked.labels = sorted({lbl.label for lbl in progress.all_labels()
                                if lbl.risk_level != "none"})
        locked.frame_summary = _summary(progress.frames)
        locked.audio_summary = _summary(progress.slices)
        locked.status = Status.IN_PROGRESS
        locked.save(update_fields=["risk_level", "labels", "frame_summary", "audio_summary",
                                   "status", "updated_at"])
        _after_commit(signals.job_progress, locked, result=partial)
        registration = registration_for(locked)
        if already_blocked or suggestion_for(partial.risk_level, registration) != "block":
            return already_blocked
        log(locked, Action.AUTO_BLOCK, "blocked mid-stream", offset=_first_offset(partial))
        instance = locked.content_object
        if instance is not None and registration is not None:
            apply_block(instance, registration, locked)
        _after_commit(signals.content_blocked, locked, instance=instance)
    return True


def _first_offset(result: Result) -> float:
    offsets = [f.offset for f in result.frames if f.risk_level != "none"]
    offsets += [s.start for s in result.slices if s.risk_level != "none"]
    return min(offsets, default=0.0)


def finish_stream(job: Job, progress: Result, already_blocked: bool) -> None:
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in UNFINISHED:
            return
        progress.status = "done"
        progress.frame_summary = locked.frame_summary
        progress.audio_summary = locked.audio_summary
        locked.status = Status.DONE
        locked.result = progress.to_dict()
        locked.completed_at = timezone.now()
        locked.next_attempt_at = None
        locked.save()
        log(locked, Action.COMPLETED, risk_level=locked.risk_level)
        decide(locked, already_blocked=already_blocked)


def poll(job: Job) -> str:
    provider = get_provider(job.provider)
    result = provider.fetch(job.provider_task_id or "", build_request(job, provider))
    if result.finished:
        ingest(job, result)
        return "done"
    _await(job, result)
    return "in_progress"


def _await(job: Job, result: Result) -> None:
    job.provider_task_id = result.task_id or job.provider_task_id
    job.status = Status.IN_PROGRESS if result.status == "in_progress" else Status.SUBMITTED
    job.next_attempt_at = timezone.now() + timedelta(seconds=moderation_settings.POLL_INTERVAL)
    job.save(update_fields=["provider_task_id", "status", "next_attempt_at", "updated_at"])


def build_request(job: Job, provider) -> ModerationRequest:
    return ModerationRequest(
        scenes=list(job.scenes or provider.default_scenes),
        biz_type=job.biz_type,
        data_id=job.data_id,
        seed=job.seed,
        libraries=hash_library(),
        options={k: v for k, v in (job.options or {}).items() if k != "frames"},
    )


def reusable_result(job: Job) -> Job | None:
    """A finished job on the same bytes, provider and scenes, whose result we can reuse."""
    if not job.sha256:
        return None
    candidates = Job.objects.filter(
        sha256=job.sha256, provider=job.provider, biz_type=job.biz_type,
        media_kind=job.media_kind, status=Status.DONE, result__isnull=False,
    ).exclude(pk=job.pk).order_by("-completed_at")
    wanted = (sorted(job.scenes or []), _reuse_options(job))
    return next((c for c in candidates[:20]
                 if (sorted(c.scenes or []), _reuse_options(c)) == wanted), None)


def _reuse_options(job: Job) -> dict:
    """The options that change a result (not where an ad-hoc input is stored)."""
    return {k: v for k, v in (job.options or {}).items() if k != "frames"}


def copy_evidence_and_ingest(job: Job, earlier: Job) -> None:
    result = Result.from_dict(earlier.result)
    by_offset = {f.offset: f for f in earlier.frames.exclude(thumbnail="")}
    for frame in result.frames:
        source = by_offset.get(frame.offset)
        if source is not None:
            with source.thumbnail.open("rb") as fh:
                frame.image = fh.read()
    ingest(job, result, raw=earlier.raw_result)


# --- errors -------------------------------------------------------------------------------


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    base = moderation_settings.RETRY_BACKOFF * (2 ** max(attempt - 1, 0))
    cap = min(base, moderation_settings.RETRY_BACKOFF_MAX)
    return cap / 2 + random.uniform(0, cap / 2)


TERMINAL_ERRORS = (MediaError, NotSupported, AuthError, UnknownProvider)


def handle_error(job: Job, error: ModerationError) -> str:
    """Map a provider error onto the job: expire, fail, or retry later (see errors.py)."""
    job.refresh_from_db()
    if job.status not in UNFINISHED:
        return "skipped"
    job.error_code, job.error_message = error.code, error.message[:2000]
    if isinstance(error, Expired):
        return _finish_unsuccessfully(job, Status.EXPIRED, Action.EXPIRED, error)
    if isinstance(error, TERMINAL_ERRORS):
        return _finish_unsuccessfully(job, Status.FAILED, Action.FAILED, error)
    attempts = max(job.attempts, 1)
    if isinstance(error, Throttled):
        # The provider's limit, not our failure: wait, and give the attempt back.
        job.attempts = max(job.attempts - 1, 0)
    elif attempts >= moderation_settings.MAX_ATTEMPTS:
        return _finish_unsuccessfully(job, Status.FAILED, Action.FAILED, error)
    job.next_attempt_at = timezone.now() + timedelta(seconds=backoff_seconds(attempts))
    job.save(update_fields=["error_code", "error_message", "next_attempt_at", "attempts",
                            "updated_at"])
    log(job, Action.RETRY_SCHEDULED, error.message, code=error.code)
    return "retry"


def _finish_unsuccessfully(job: Job, status: str, action: str, error: ModerationError) -> str:
    job.status = status
    job.completed_at = timezone.now()
    job.save(update_fields=["status", "error_code", "error_message", "completed_at",
                            "updated_at"])
    log(job, action, error.message, code=error.code)
    return "expired" if status == Status.EXPIRED else "failed"


# --- ingest and decide --------------------------------------------------------------------


def ingest(job: Job, result: Result, raw: Any = None) -> Job:
    """Store a finished result as rows (replacing earlier rows) and apply the policy."""
    if result.status == "failed":
        raise MediaError(_failure_message(result), code="provider_failed")
    evidence = _store_evidence(job, result)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.status not in UNFINISHED:
            return locked  # cancelled meanwhile, or a late duplicate
        locked.frames.all().delete()
        locked.slices.all().delete()
        _write_frames(locked, result, evidence)
        _write_slices(locked, result, evidence)
        locked.status = Status.DONE
        locked.risk_level = result.risk_level
        locked.labels = sorted({lbl.label for lbl in result.all_labels()
                                if lbl.risk_level != "none"})
        locked.frame_summary = result.frame_summary or _summary(result.frames)
        locked.audio_summary = result.audio_summary or _summary(result.slices)
        locked.result = result.to_dict() | {"raw": None}
        locked.raw_result = raw if raw is not None else result.raw
        locked.error_code = locked.error_message = ""
        locked.next_attempt_at = None
        locked.completed_at = timezone.now()
        locked.save()
        log(locked, Action.COMPLETED, risk_level=locked.risk_level)
        decide(locked)
    job.refresh_from_db()
    return job


def _failure_message(result: Result) -> str:
    raw = result.raw if isinstance(result.raw, dict) else {}
    return str(raw.get("msg") or raw.get("Message") or "the provider could not moderate it")


def _summary(parts) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in parts:
        for name in {lbl.label for lbl in part.labels if lbl.risk_level != "none"}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _store_evidence(job: Job, result: Result) -> dict[tuple[str, int], str]:
    """Save thumbnails and clips to evidence storage before the transaction (file I/O)."""
    from .storage import evidence_storage

    storage = evidence_storage()
    keep_all = moderation_settings.THUMBNAIL_ALL_FRAMES
    stored: dict[tuple[str, int], str] = {}
    day = timezone.now().strftime("%Y/%m/%d")
    for i, frame in enumerate(result.frames):
        if isinstance(frame.image, bytes) and (keep_all or frame.risk_level != "none"
                                               or len(result.frames) == 1):
            name = f"frames/{day}/job{job.pk}-{i}-{int(frame.offset * 1000)}.jpg"
            stored[("frame", i)] = storage.save(name, ContentFile(frame.image))
    for i, part in enumerate(result.slices):
        if isinstance(part.audio, bytes) and part.risk_level != "none":
            name = f"clips/{day}/job{job.pk}-{i}-{int(part.start * 1000)}.wav"
            stored[("slice", i)] = storage.save(name, ContentFile(part.audio))
    return stored


def _write_frames(job: Job, result: Result, evidence) -> None:
    frames = Frame.objects.bulk_create([
        Frame(job=job, offset=f.offset, risk_level=f.risk_level,
              thumbnail=evidence.get(("frame", i), ""))
        for i, f in enumerate(result.frames)
    ])
    FrameLabel.objects.bulk_create([
        FrameLabel(frame=row, label=lbl.label, confidence=lbl.confidence,
                   risk_level=lbl.risk_level, service=lbl.service, scene=lbl.scene,
                   description=lbl.description[:500])
        for row, frame in zip(frames, result.frames, strict=True)
        for lbl in frame.labels
    ])


def _write_slices(job: Job, result: Result, evidence) -> None:
    AudioSlice.objects.bulk_create([
        AudioSlice(job=job, start=s.start, end=s.end, text=s.text,
                   labels=[{"label": lbl.label, "confidence": lbl.confidence,
                            "risk_level": lbl.risk_level, "service": lbl.service,
                            "description": lbl.description} for lbl in s.labels],
                   risk_words=s.risk_words,
                   risk_level=s.risk_level, clip=evidence.get(("slice", i), ""))
        for i, s in enumerate(result.slices)
    ])


def registration_for(job: Job) -> Registration | None:
    if job.content_type_id is None:  # ad-hoc: default policy, no block action
        return None
    model = job.content_type.model_class()
    return registry.get(model) if model else None


def decide(job: Job, already_blocked: bool = False) -> str:
    """Apply the policy to a finished job (inside the ingest transaction)."""
    registration = registration_for(job)
    suggestion = suggestion_for(job.risk_level, registration)
    job.suggestion = suggestion
    if suggestion == "pass":
        job.decision, job.review_state = Decision.AUTO_PASS, ReviewState.NONE
        log(job, Action.AUTO_PASS)
    elif suggestion == "review":
        job.decision, job.review_state = "", ReviewState.PENDING
        log(job, Action.REVIEW_REQUIRED)
        _after_commit(signals.review_required, job)
    else:
        job.decision, job.review_state = Decision.AUTO_BLOCK, ReviewState.NONE
        if not already_blocked:  # a live stream may have blocked mid-way
            log(job, Action.AUTO_BLOCK)
            instance = job.content_object
            if instance is not None and registration is not None:
                apply_block(instance, registration, job)
            _after_commit(signals.content_blocked, job, instance=instance)
    job.save(update_fields=["suggestion", "decision", "review_state", "updated_at"])
    _after_commit(signals.job_completed, job)
    return suggestion


def resolve(job: Job, decision: str, actor=None, reason: str = "") -> Job:
    """A moderator's decision: ``approved`` shows the content (undoing a hide),
    ``rejected`` blocks it (running the block action)."""
    if decision not in (Decision.APPROVED, Decision.REJECTED):
        raise ValueError(f"decision must be approved or rejected, not {decision!r}")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status != Status.DONE:
            raise ValueError(f"job {job.pk} is {job.status}; only finished jobs are reviewed")
        job.decision, job.review_state = decision, ReviewState.RESOLVED
        job.save(update_fields=["decision", "review_state", "updated_at"])
        log(job, Action.APPROVED if decision == Decision.APPROVED else Action.REJECTED,
            reason, actor=actor)
        registration, instance = registration_for(job), job.content_object
        if instance is not None and registration is not None:
            if decision == Decision.APPROVED:
                apply_unblock(instance, registration, job)
            else:
                apply_block(instance, registration, job)
                _after_commit(signals.content_blocked, job, instance=instance)
    return job


def _after_commit(signal, job: Job, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=Job, job=job, **kwargs))


__all__ = [
    "cancel_field_jobs", "cancel_object_jobs", "create_job", "decide", "enqueue",
    "file_sha256", "ingest", "last_job", "poll", "process", "resolve", "retry", "submit",
    "sweep",
]
