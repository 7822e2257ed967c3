"""The worker's step: lease a job, submit or poll it, map errors onto it (tasks call
``process``). Finished results go to ``ingest.py``, live streams to ``live.py``."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db.models import Case, F, PositiveIntegerField, Q, When
from django.urls import reverse
from django.utils import timezone

from .. import leases, ratelimit, signals
from ..conf import moderation_settings
from ..libraries import hash_library
from ..libraries import precheck as library_precheck
from ..media import adhoc_media, media_for, stored_name
from ..media_url import public_url_for
from ..models import UNFINISHED, Job, MediaKind, ReviewEvent, Status
from ..providers import (
    AuthError,
    Expired,
    Media,
    MediaError,
    ModerationError,
    ModerationRequest,
    NotSupported,
    Result,
    UnknownProvider,
    get_provider,
)
from ..providers.base import CALLBACK, IMAGE, SYNC
from ..retrying import backoff_seconds, next_try
from .ingest import ingest, result_version
from .jobs import _cancel, log
from .live import follow_stream
from .progress import ProgressWriter
from .verdict import send_on_commit

logger = logging.getLogger(__package__)  # "moderation.pipeline", as before the split

Action = ReviewEvent.Action


# --- the worker's step --------------------------------------------------------------------


class LeaseLost(Exception):
    """Another holder has the job now (our lease ran out, or the job was cancelled)."""


class Lease:
    """A worker's hold on a job: taken with one conditional UPDATE, renewed by a heartbeat
    while the step runs, released at the end.

    A lease that is not renewed ends after ``LEASE_SECONDS``: that is how long a job stays
    with a worker that died. Taking it for a step that submits counts the attempt in the
    same UPDATE, so a job whose work kills its worker every time still reaches
    ``MAX_ATTEMPTS`` (the worker never gets to count it afterwards).
    """

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.until = None
        self.lost = False
        self._lock = threading.Lock()

    def _rows(self):
        return Job.objects.filter(pk=self.job_id)

    def _new_until(self):
        return leases.until(moderation_settings.LEASE_SECONDS)

    def take(self) -> bool:
        until = self._new_until()
        submitting = (Q(status=Status.PENDING) | Q(provider_task_id__isnull=True)
                      | Q(provider_task_id=""))
        counted = Case(When(submitting, then=F("attempts") + 1), default=F("attempts"),
                       output_field=PositiveIntegerField())
        if leases.take(Job.objects.due().filter(pk=self.job_id), "lease_until", until,
                       attempts=counted):
            self.until = until
            return True
        return False

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost``) when someone else holds the job now."""
        with self._lock:
            if self.lost:
                return False
            until = self._new_until()
            if leases.renew(self._rows(), "lease_until", self.until, until):
                self.until = until
            else:
                self.lost = True
            return not self.lost

    def check(self) -> None:
        """A safe point of a long step: give up if the job has another holder by now."""
        if self.lost:
            raise LeaseLost(f"job {self.job_id} is held by another worker now")

    def release(self) -> None:
        with self._lock:
            if self.until is not None:
                leases.release(self._rows(), "lease_until", self.until)

    def heartbeat(self):
        """Renew the lease every third of ``LEASE_SECONDS`` while the block runs (not
        inside a transaction: see ``leases.heartbeat``)."""
        return leases.heartbeat(self.renew, moderation_settings.LEASE_SECONDS / 3,
                                f"job {self.job_id}")


def process(job_id: int) -> str:
    """Advance one job by one step. Returns what happened (for logs and tests)."""
    lease = Lease(job_id)
    if not lease.take():
        return "skipped"
    job = Job.objects.get(pk=job_id)
    try:
        if job.attempts > moderation_settings.MAX_ATTEMPTS:
            return worker_lost(job)
        with lease.heartbeat():
            # SUBMITTED without a task id: a task slot was claimed but the submission did
            # not get through (a crash between the two), so it is submitted again.
            if job.status == Status.PENDING or not job.provider_task_id:
                return submit(job, lease)
            return poll(job)
    except LeaseLost:
        job.refresh_from_db(fields=["status"])
        if job.status == Status.CANCELLED:
            return "cancelled"
        logger.warning("job %s: gave up its step, another worker holds it", job.pk)
        return "lost"
    except ModerationError as exc:
        return handle_error(job, exc)
    except Exception as exc:  # a bug or a crash in an engine: visible, retryable
        logger.exception("moderation job %s crashed", job.pk)
        error = ModerationError(f"{type(exc).__name__}: {exc}", code="internal_error")
        return handle_error(job, error)
    finally:
        lease.release()


def worker_lost(job: Job) -> str:
    """Every attempt so far was taken and never finished: the worker died each time
    (killed, out of memory). Fail the job instead of handing it on forever."""
    job.attempts = moderation_settings.MAX_ATTEMPTS  # the one just counted was not tried
    job.save(update_fields=["attempts", "updated_at"])
    error = ModerationError(
        f"the worker stopped during each of {job.attempts} attempts (killed or out of "
        "memory?)", code="worker_lost")
    job.error_code, job.error_message = error.code, error.message
    return _finish_unsuccessfully(job, Status.FAILED, Action.FAILED, error)


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
    job.submitted_at = timezone.now()  # the attempt was counted when the lease was taken
    job.save(update_fields=["sha256", "file_size", "submitted_at", "updated_at"])
    if job.media_kind not in SLOTTED_KINDS:  # videos: once they have a task slot (below)
        mark_started(job)

    earlier = reusable_result(job)
    if earlier is not None:
        job.reused_from = earlier
        job.save(update_fields=["reused_from", "updated_at"])
        log(job, Action.REUSED, data_job=earlier.pk)
        copy_evidence_and_ingest(job, earlier)
        return "reused"

    provider = get_provider(job.provider)
    provider.check_media(media)
    # An image on the allow or block list is answered here, without the provider's call.
    known = library_precheck(media, provider)
    if known is not None:
        log(job, Action.SUBMITTED, "answered by the hash library", provider="library")
        ingest(job, known)
        return "library"
    if provider.needs_url and not media.url:
        media.url = fetchable_url(job) or ""
    request = build_request(job, provider, progress=ProgressWriter(job.pk))
    if not claim_task_slot(job, provider):
        return "waiting"
    mark_started(job)
    if job.media_kind == MediaKind.LIVE:
        return follow_stream(job, provider.stream(media, request), lease)
    # Logged when the provider gets the media, not when it answers: a local engine's
    # answer about a long video comes minutes later.
    log(job, Action.SUBMITTED)
    result = provider.submit(media, request)
    if lease is not None:
        lease.check()  # taken over while the provider worked: the new holder finishes
    check_sync(provider, media, result)
    send_on_commit(signals.job_submitted, job)
    if result.finished:
        ingest(job, result)
        return "done"
    _await(job, result)
    return "submitted"


SLOTTED_KINDS = (MediaKind.VIDEO, MediaKind.LIVE)


def check_sync(provider, media: Media, result: Result) -> None:
    """A provider declaring ``sync`` answers an image with a finished result: an unfinished
    one breaks its contract (a provider bug, like a kind it does not declare). The job fails
    at once with ``sync_violation`` (NotSupported, not retried: the same code would answer
    the same way) instead of being polled; a task it may have started is left to it."""
    if media.kind == IMAGE and provider.supports(SYNC) and not result.finished:
        task = f" (task {result.task_id!r})" if result.task_id else ""
        raise NotSupported(
            f"provider {provider.alias!r} declares `sync` but answered an image with status "
            f"{result.status!r}{task}: a sync provider's submit returns a finished result",
            code="sync_violation")


def mark_started(job: Job) -> None:
    """A worker is on it: ``in_progress`` from now on (not "pending" for the minutes a
    long video takes), with no progress yet (an earlier attempt's is stale). Conditional,
    so a job cancelled meanwhile stays cancelled; a claimed task slot stays counted
    (``claim_task_slot`` counts in-progress jobs too)."""
    started = (Job.objects.filter(pk=job.pk, status__in=(Status.PENDING, Status.SUBMITTED))
               .update(status=Status.IN_PROGRESS, progress={}))
    if started:
        job.status, job.progress = Status.IN_PROGRESS, {}


def claim_task_slot(job: Job, provider) -> bool:
    """Take one of the provider account's unfinished-video-task slots for ``job``, or put
    the job back to wait (status pending, next try in POLL_INTERVAL; the attempt is given
    back). True when the job may be submitted (also for kinds and providers without slots).

    The claim marks the job SUBMITTED before the provider hears of it, inside the slot lock,
    so concurrent workers count it; a submission that fails goes back to PENDING.
    """
    limit = provider.max_unfinished_tasks
    if not limit or job.media_kind not in SLOTTED_KINDS:
        return True
    aliases = [alias for alias in moderation_settings.providers
               if _account_of(alias) == provider.account]
    with ratelimit.task_slot(f"{provider.account}:video_tasks"):
        busy = (Job.objects.filter(provider__in=aliases, media_kind__in=SLOTTED_KINDS,
                                   status__in=(Status.SUBMITTED, Status.IN_PROGRESS))
                .exclude(pk=job.pk).count())
        if busy < limit:
            Job.objects.filter(pk=job.pk).update(status=Status.SUBMITTED)
            job.status = Status.SUBMITTED
            return True
        job.attempts = max(job.attempts - 1, 0)
        job.next_attempt_at = timezone.now() + timedelta(
            seconds=moderation_settings.POLL_INTERVAL)
        job.save(update_fields=["attempts", "next_attempt_at", "updated_at"])
    logger.info("job %s waits: %s unfinished video tasks of %s (limit %s)",
                job.pk, busy, provider.account, limit)
    return False


def _account_of(alias: str) -> str | None:
    try:
        return get_provider(alias).account
    except Exception:  # a misconfigured alias shares nothing (checks report it)
        return None


def cancel_at_provider(alias: str, task_id: str) -> str:
    """Stop a cancelled job's task at the provider (it frees a video task slot there and
    stops the billing of a live stream). Best effort: the job is cancelled either way."""
    try:
        get_provider(alias).cancel(task_id)
    except NotSupported:
        return "not_supported"
    except ModerationError as exc:  # e.g. the task finished or expired meanwhile
        logger.info("cancelling task %s at %s: %s", task_id, alias, exc)
        return exc.code
    return "cancelled"


def fetchable_url(job: Job) -> str | None:
    """A URL a remote provider can fetch the job's file from (see media_url.py)."""
    if job.is_adhoc:
        return None  # inputs live in private evidence storage, never handed out
    return public_url_for(getattr(job.content_object, job.field_name).storage, job.file_name)


def poll(job: Job) -> str:
    provider = get_provider(job.provider)
    result = provider.fetch(job.provider_task_id or "",
                            build_request(job, provider, progress=ProgressWriter(job.pk)))
    if result.finished:
        ingest(job, result)
        return "done"
    _await(job, result)
    return "in_progress"


def _await(job: Job, result: Result) -> None:
    job.provider_task_id = result.task_id or job.provider_task_id
    job.status = Status.IN_PROGRESS if result.status == "in_progress" else Status.SUBMITTED
    job.next_attempt_at = timezone.now() + timedelta(seconds=poll_delay(job))
    job.save(update_fields=["provider_task_id", "status", "next_attempt_at", "updated_at"])


def poll_delay(job: Job) -> float:
    """Seconds until the next poll: POLL_INTERVAL at first, then a quarter of the time the
    provider has had so far (a 2-hour video is not asked about every 30 s), capped."""
    waited = (timezone.now() - job.submitted_at).total_seconds() if job.submitted_at else 0
    return min(max(moderation_settings.POLL_INTERVAL, waited / 4),
               max(moderation_settings.POLL_INTERVAL_MAX, moderation_settings.POLL_INTERVAL))


def build_request(job: Job, provider, progress=None) -> ModerationRequest:
    """The job's request; ``progress`` hears how far the provider has got (a
    :class:`~.progress.ProgressWriter` in the worker's steps)."""
    return ModerationRequest(
        scenes=list(job.scenes or provider.default_scenes),
        biz_type=job.biz_type,
        data_id=job.data_id,
        seed=job.seed,
        # Only a provider declaring ``callback`` is told where to push (capabilities are
        # enforced; the callback view refuses the others).
        callback_url=_callback_url(job.provider) if provider.supports(CALLBACK) else "",
        libraries=hash_library(),
        options={k: v for k, v in (job.options or {}).items() if k != "frames"},
        progress=progress,
    )


def _callback_url(alias: str) -> str:
    """Where the provider pushes results: CALLBACK_BASE_URL + our callback view, or ""."""
    base = moderation_settings.CALLBACK_BASE_URL
    return f"{base.rstrip('/')}{reverse('moderation:callback', args=[alias])}" if base else ""


def reusable_result(job: Job) -> Job | None:
    """A finished job on the same bytes, provider and scenes, whose result we can reuse
    (made by the provider's current ``result_version``: not by an engine that looked less)."""
    if not job.sha256:
        return None
    candidates = Job.objects.filter(
        sha256=job.sha256, provider=job.provider, biz_type=job.biz_type,
        media_kind=job.media_kind, status=Status.DONE, result__isnull=False,
    ).exclude(pk=job.pk).order_by("-completed_at")
    wanted = (sorted(job.scenes or []), _reuse_options(job), result_version(job.provider))
    return next((c for c in candidates[:20]
                 if (sorted(c.scenes or []), _reuse_options(c),
                     c.result.get("result_version", "1")) == wanted), None)


#: Job options that do not change what a provider answers: where an ad-hoc input is stored,
#: and whether a backfill may apply the block action.
NOT_RESULT_OPTIONS = frozenset({"frames", "apply_block"})


def _reuse_options(job: Job) -> dict:
    """The options that change a result (not where an ad-hoc input is stored)."""
    return {k: v for k, v in (job.options or {}).items() if k not in NOT_RESULT_OPTIONS}


def copy_evidence_and_ingest(job: Job, earlier: Job) -> None:
    result = Result.from_dict(earlier.result)
    by_offset = {f.offset: f for f in earlier.frames.all()}
    for frame in result.frames:
        source = by_offset.get(frame.offset)
        if source is None:
            continue
        frame.pdq, frame.pdq_quality = source.pdq, source.pdq_quality
        if source.thumbnail:
            with source.thumbnail.open("rb") as fh:
                frame.image = fh.read()
    ingest(job, result, raw=earlier.raw_result)


# --- errors -------------------------------------------------------------------------------


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
    delay, attempts = next_try(job.attempts, error)  # Throttled gives the attempt back
    if delay is None:
        return _finish_unsuccessfully(job, Status.FAILED, Action.FAILED, error)
    job.attempts = attempts
    if job.status in (Status.SUBMITTED, Status.IN_PROGRESS) and not job.provider_task_id:
        job.status = Status.PENDING  # not at the provider (a claimed task slot: given back)
    job.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    job.save(update_fields=["status", "error_code", "error_message", "next_attempt_at",
                            "attempts", "updated_at"])
    log(job, Action.RETRY_SCHEDULED, error.message, code=error.code)
    return "retry"


def _finish_unsuccessfully(job: Job, status: str, action: str, error: ModerationError) -> str:
    job.status = status
    job.completed_at = timezone.now()
    job.save(update_fields=["status", "error_code", "error_message", "completed_at",
                            "updated_at"])
    extra = {"kind": "auth"} if isinstance(error, AuthError) else {}
    log(job, action, error.message, code=error.code, **extra)
    return "expired" if status == Status.EXPIRED else "failed"


__all__ = [
    "TERMINAL_ERRORS", "Lease", "LeaseLost", "backoff_seconds", "build_request",
    "cancel_at_provider", "check_sync", "claim_task_slot", "copy_evidence_and_ingest",
    "handle_error", "media_of", "poll", "process", "reusable_result", "submit", "worker_lost",
]
