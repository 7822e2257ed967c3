"""Moderator feedback: a verdict on a job, sent to its provider by a queued task.

The console calls :func:`request_feedback` (a row, an audit event, a task on commit); the
task calls :func:`send`, which does the work once per request, whatever the delivery count.

Where the feedback goes depends on the job's provider (docs/libraries.md):

* a provider with the ``feedback`` capability (Alibaba 1.0): its feedback API, counted
  against the account's feedback rate (``Throttled`` is retried without spending an
  attempt, other errors back off up to ``MAX_ATTEMPTS``, then the request is ``failed``
  and can be retried by :func:`retry`);
* the ``local`` provider: the chosen frames' PDQ hashes become :class:`HashEntry` rows,
  on the allow list (approved) or on the block list under the worst label (rejected);
* a remote provider without a feedback API (2.0, IMM): the same local entries, which the
  library pre-check (``LIBRARY_PRECHECK``) consults before such a provider is called for an
  image; with the pre-check off the request is ``unsupported``.

No evidence URL is ever handed out: frame thumbnails stay in private storage. An image
feedback names the original upload by the signed, expiring URL the provider already
fetched it from for moderation (``media_url.public_url_for``, site media only); a video
feedback names frames only by the provider's own capture URLs from its result.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import leases, libraries, taskqueue
from .claims import ClaimedByOther, held_by_other
from .conf import moderation_settings
from .media import is_url, stored_name
from .media_url import public_url_for
from .models import Decision, FeedbackRequest, Frame, FrameLabel, HashEntry, Job, ReviewEvent
from .providers import (
    AuthError,
    Feedback,
    MediaError,
    ModerationError,
    NotSupported,
    UnknownProvider,
    get_provider,
)
from .providers.base import FEEDBACK
from .retrying import next_try, resend

logger = logging.getLogger(__name__)

Action = ReviewEvent.Action
State = FeedbackRequest.State

#: the decisions feedback can carry, and what each is called at a provider
DECISIONS: dict[str, str] = {Decision.APPROVED: "pass", Decision.REJECTED: "block"}
#: hashes below this quality match almost anything (ENGINE-NOTES §7): never added
MIN_QUALITY = 50
#: a pending request never picked up by a worker is enqueued again after this long
LOST_AFTER = timedelta(minutes=5)
TERMINAL = (MediaError, AuthError, UnknownProvider)
RISK_ORDER = {"high": 3, "medium": 2, "low": 1, "none": 0}


# --- asking -------------------------------------------------------------------------------


def request_feedback(job: Job, decision: str, *, frame_ids=None, scenes=None, note: str = "",
                     actor=None) -> FeedbackRequest:
    """Record a moderator's feedback on ``job`` and queue its delivery (on commit).

    ``decision`` is ``Decision.APPROVED`` (similar media should pass) or
    ``Decision.REJECTED`` (should be blocked); ``frame_ids`` are Frame ids of this job
    that the verdict is about (none: the whole job). Raises ``ValueError`` for anything else,
    and ``claims.ClaimedByOther`` while another moderator holds the item (as a decision
    would): feedback would otherwise pre-empt the review they are doing.
    """
    if decision not in DECISIONS:
        raise ValueError(f"feedback decision must be approved or rejected, not {decision!r}")
    if actor is not None:
        job.refresh_from_db(fields=["claimed_by", "claimed_until"])
        if held_by_other(job, actor):
            raise ClaimedByOther(job)
    ids = sorted({int(pk) for pk in frame_ids or ()})
    if ids:
        found = set(Frame.objects.filter(job=job, pk__in=ids).values_list("pk", flat=True))
        if missing := [pk for pk in ids if pk not in found]:
            raise ValueError(f"frames {missing} do not belong to job {job.pk}")
    with transaction.atomic():
        feedback = FeedbackRequest.objects.create(
            job=job, provider=job.provider, decision=decision, frame_ids=ids,
            scenes=list(scenes or []), note=(note or "")[:500], created_by=actor,
        )
        _log(feedback, Action.FEEDBACK, note, actor=actor, decision=decision, frames=ids)
        transaction.on_commit(lambda: enqueue(feedback.pk))
    return feedback


def retry(feedback: FeedbackRequest, actor=None) -> FeedbackRequest:
    """Send a failed request again (by hand: an admin action)."""
    updated = FeedbackRequest.objects.filter(pk=feedback.pk, status=State.FAILED).update(
        status=State.PENDING, attempts=0, next_attempt_at=None, error_code="",
        error_message="")
    if updated:
        _log(feedback, Action.FEEDBACK, "retry", actor=actor, retry=True)
        transaction.on_commit(lambda: enqueue(feedback.pk))
    feedback.refresh_from_db()
    return feedback


def enqueue(feedback_id: int) -> None:
    """Queue the delivery (``moderation.tasks.send_feedback``, named by path: the tasks
    module imports this one, not the other way round)."""
    taskqueue.enqueue("moderation.tasks.send_feedback", feedback_id,
                      name=f"moderation-feedback-{feedback_id}")


def sweep(now=None) -> int:
    """Re-enqueue pending requests whose retry time has come, whose worker died (its
    lease ran out) or that no worker picked up; returns how many. Run by the sweeper."""
    now = now or timezone.now()
    due = FeedbackRequest.objects.filter(status=State.PENDING).filter(
        Q(next_attempt_at__lte=now)
        | Q(next_attempt_at__isnull=True, created_at__lte=now - LOST_AFTER))
    return resend(due, enqueue)


# --- sending ------------------------------------------------------------------------------


def _take(feedback_id: int) -> bool:
    """Hold a due pending request for one worker (one conditional UPDATE); the hold lasts
    LOST_AFTER (LEASE_SECONDS if longer), after which the sweeper hands it on (a worker
    that died). Not renewed, so longer than any one send (a provider call and its
    timeouts): a job's lease is short because a heartbeat renews it."""
    now = timezone.now()
    seconds = max(LOST_AFTER.total_seconds(), moderation_settings.LEASE_SECONDS)
    due = FeedbackRequest.objects.filter(leases.free("next_attempt_at", now), pk=feedback_id,
                                         status=State.PENDING)
    return leases.take(due, "next_attempt_at", leases.until(seconds, now))


def send(feedback_id: int) -> str:
    """Deliver one request, once. Returns what happened: ``sent``, ``library`` (added to
    the local hash library), ``retry``, ``failed``, ``unsupported`` or ``skipped``."""
    if not _take(feedback_id):
        return "skipped"
    feedback = FeedbackRequest.objects.select_related("job").get(pk=feedback_id)
    feedback.attempts += 1
    feedback.save(update_fields=["attempts"])
    try:
        provider = get_provider(feedback.provider)
        if provider.supports(FEEDBACK):
            data = send_to_provider(feedback, provider)
            via = "provider"
        elif _library_answers(provider):
            data = add_to_library(feedback)
            via = "library"
        else:
            raise NotSupported(f"provider {feedback.provider!r} takes no feedback and the "
                               "library pre-check is off", code="not_supported")
    except NotSupported as exc:
        return _finish(feedback, State.NOT_SUPPORTED, exc)
    except TERMINAL as exc:
        return _finish(feedback, State.FAILED, exc)
    except ModerationError as exc:
        return _retry_later(feedback, exc)
    except Exception as exc:  # a bug or a crash: visible, retried like an outage
        logger.exception("feedback %s crashed", feedback_id)
        return _retry_later(feedback, ModerationError(f"{type(exc).__name__}: {exc}",
                                                      code="internal_error"))
    feedback.status, feedback.sent_at = State.SENT, timezone.now()
    feedback.next_attempt_at = None
    feedback.error_code = feedback.error_message = ""
    feedback.save(update_fields=["status", "sent_at", "next_attempt_at", "error_code",
                                 "error_message"])
    reason = {"provider": f"sent to {feedback.provider}",
              "library": "added to the local hash library"}[via]
    _log(feedback, Action.FEEDBACK_SENT, reason, via=via, **data)
    return "sent" if via == "provider" else "library"


def _library_answers(provider) -> bool:
    """Whether local hash entries change this provider's answers: the local engine
    consults them itself; other providers through the pre-check."""
    return provider.consults_libraries or bool(moderation_settings.LIBRARY_PRECHECK)


def _retry_later(feedback: FeedbackRequest, error: ModerationError) -> str:
    feedback.error_code, feedback.error_message = error.code, error.message[:2000]
    # Throttled (the account's feedback rate) is waited out and gives the attempt back.
    delay, feedback.attempts = next_try(feedback.attempts, error)
    if delay is None:
        return _finish(feedback, State.FAILED, error)
    feedback.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    feedback.save(update_fields=["attempts", "next_attempt_at", "error_code", "error_message"])
    return "retry"


def _finish(feedback: FeedbackRequest, status: str, error: ModerationError) -> str:
    feedback.status, feedback.next_attempt_at = status, None
    feedback.error_code, feedback.error_message = error.code, error.message[:2000]
    feedback.save(update_fields=["status", "next_attempt_at", "error_code", "error_message"])
    _log(feedback, Action.FEEDBACK_FAILED, error.message, code=error.code, status=status)
    return "unsupported" if status == State.NOT_SUPPORTED else "failed"


def _log(feedback: FeedbackRequest, action: str, reason: str = "", actor=None,
         **data: Any) -> ReviewEvent:
    return ReviewEvent.objects.create(job_id=feedback.job_id, action=action, reason=reason,
                                      actor=actor, data={"feedback": feedback.pk, **data})


# --- what the feedback is about -------------------------------------------------------------


def chosen_frames(feedback: FeedbackRequest) -> list[Frame]:
    """The frames named by the request; none named: the flagged frames of the job, or
    all of them when none is flagged (an image job has one frame)."""
    frames = Frame.objects.filter(job_id=feedback.job_id).order_by("offset", "pk")
    if feedback.frame_ids:
        return list(frames.filter(pk__in=feedback.frame_ids))
    flagged = list(frames.exclude(risk_level="none"))
    return flagged or list(frames)


def worst_label(feedback: FeedbackRequest, frames: list[Frame]) -> str:
    """The label a rejection is filed under: the riskiest (then most confident) label of
    the chosen frames, else of the job; without any ``_lib`` suffix (the engine adds it)."""
    labels = FrameLabel.objects.filter(frame__in=frames).exclude(risk_level="none")
    ranked = sorted(labels, key=lambda lbl: (RISK_ORDER.get(lbl.risk_level, 0),
                                             lbl.confidence), reverse=True)
    names = [lbl.label for lbl in ranked] or list(feedback.job.labels or [])
    name = next((n for n in names if not n.startswith("nonLabel")), "")
    return name.removesuffix("_lib")


def _labels_of(feedback: FeedbackRequest, frames: list[Frame]) -> list[str]:
    names = FrameLabel.objects.filter(frame__in=frames).exclude(risk_level="none") \
        .values_list("label", flat=True)
    return list(dict.fromkeys([*names, *(feedback.job.labels or [])]))


# --- the local hash library -----------------------------------------------------------------


def add_to_library(feedback: FeedbackRequest) -> dict[str, Any]:
    """Add the chosen frames' PDQ hashes to the allow or the block list; idempotent (an
    entry already on that list is kept as it is). Returns what was done, for the log."""
    job = feedback.job
    frames = chosen_frames(feedback)
    approved = feedback.decision == Decision.APPROVED
    list_type = HashEntry.ListType.ALLOW if approved else HashEntry.ListType.BLOCK
    label = "" if approved else worst_label(feedback, frames)
    hashes: dict[str, tuple[int, Frame]] = {}
    skipped = []
    for frame in frames:
        found = libraries.frame_pdq(frame, job)
        if found is None or found[1] < MIN_QUALITY:
            skipped.append(frame.pk)
            continue
        hashes.setdefault(found[0], (found[1], frame))
    if not hashes:
        raise MediaError("no frame of this job could be hashed (no image, or too plain)",
                         code="nothing_to_hash")
    existing = set(HashEntry.objects.filter(list_type=list_type, pdq__in=list(hashes))
                   .values_list("pdq", flat=True))
    entries = [HashEntry(list_type=list_type, label=label, pdq=pdq, quality=quality,
                         note=(feedback.note or f"feedback {feedback.pk}")[:500],
                         source_job=job, source_frame=frame, created_by=feedback.created_by)
               for pdq, (quality, frame) in hashes.items() if pdq not in existing]
    HashEntry.objects.bulk_create(entries, ignore_conflicts=True)
    libraries.invalidate()
    return {"list_type": list_type, "label": label, "added": len(entries),
            "already": len(existing), "skipped_frames": skipped}


# --- a provider's feedback API --------------------------------------------------------------


def send_to_provider(feedback: FeedbackRequest, provider) -> dict[str, Any]:
    """Build the provider-neutral :class:`Feedback` and hand it to the provider."""
    job = feedback.job
    frames = chosen_frames(feedback)
    item = Feedback(
        decision=DECISIONS[feedback.decision],
        kind=job.media_kind,
        task_id=job.provider_task_id or "",
        data_id=job.data_id,
        url=media_url(job) or "",
        scenes=list(feedback.scenes or job.scenes or []),
        labels=_labels_of(feedback, frames),
        frames=provider_frame_urls(job, frames) if job.media_kind != "image" else [],
        note=feedback.note,
    )
    provider.feedback(item)
    return {"kind": item.kind, "decision": item.decision, "url": bool(item.url),
            "frames": [offset for offset, _ in item.frames]}


def media_url(job: Job) -> str | None:
    """The URL the provider fetched the media from: a fresh signed URL of the site's
    upload (never an evidence file), the job's own URL for ad-hoc URL jobs, else None."""
    if job.is_adhoc:
        return job.file_name if is_url(job.file_name) else None
    instance = job.content_object
    value = getattr(instance, job.field_name, None) if instance is not None else None
    if value is None or stored_name(value) != job.file_name:
        return None  # the object or its file changed since: nothing to point at
    if is_url(job.file_name):
        return job.file_name
    return public_url_for(value.storage, job.file_name)


def provider_frame_urls(job: Job, frames: list[Frame]) -> list[tuple[float, str]]:
    """(offset, URL) of the chosen frames, where the provider's own result named a
    capture URL for that offset. Our thumbnails are never exposed: a frame the provider
    gave no URL for is left out (the task id and the video URL still identify it)."""
    urls: dict[float, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            url, offset = node.get("url"), node.get("offset")
            if isinstance(url, str) and url.startswith(("http://", "https://")) and \
                    isinstance(offset, int | float) and not isinstance(offset, bool):
                urls.setdefault(round(float(offset), 2), url)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(job.raw_result)
    out = []
    for frame in frames:
        url = urls.get(round(frame.offset, 2))
        if url:
            out.append((frame.offset, url))
    return out


__all__ = ["DECISIONS", "add_to_library", "enqueue", "request_feedback", "retry", "send",
           "sweep"]
