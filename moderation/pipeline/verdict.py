"""Verdicts on a finished job: the policy's (``apply_policy``, at ingest) and a moderator's
(``resolve``, from ``review.decide``).

Both write the job's decision, run or undo the registration's block action and send their
signals after commit; neither calls a provider. ``review.decide`` (the moderator-facing
call: permission and claim) is the only caller of ``resolve`` outside tests.
"""

from __future__ import annotations

from django.db import transaction

from .. import signals
from ..models import Decision, Job, ReviewEvent, ReviewState, Status
from ..policy import apply_block, apply_unblock, suggestion_for
from ..registry import Registration, registry
from .jobs import log

Action = ReviewEvent.Action


def registration_for(job: Job) -> Registration | None:
    if job.content_type_id is None or job.content_type is None:  # ad-hoc: default policy
        return None
    model = job.content_type.model_class()
    return registry.get(model) if model else None


def apply_policy(job: Job, already_blocked: bool = False) -> str:
    """The policy's verdict on a finished job (inside the ingest transaction): the job's
    suggestion, its decision and review state, the block action, and the signals. Returns
    the suggestion (``pass``, ``review`` or ``block``)."""
    registration = registration_for(job)
    suggestion = suggestion_for(job.risk_level, registration)
    job.suggestion = suggestion
    if isinstance(job.result, dict):
        # The policy is applied here only (providers return findings): the stored
        # normalized result says what the job says.
        job.result = {**job.result, "suggestion": suggestion}
    if suggestion == "pass":
        job.decision, job.review_state = Decision.AUTO_PASS, ReviewState.NONE
        log(job, Action.AUTO_PASS)
    elif suggestion == "review":
        job.decision, job.review_state = "", ReviewState.PENDING
        log(job, Action.REVIEW_REQUIRED)
        send_on_commit(signals.review_required, job)
    else:
        job.decision, job.review_state = Decision.AUTO_BLOCK, ReviewState.NONE
        if not already_blocked and (job.options or {}).get("apply_block") is False:
            # Backfilled by moderation_scan without --apply: the verdict is kept, the block
            # action (and content_blocked, which promises it ran) is not.
            log(job, Action.AUTO_BLOCK, "block action not applied (backfill without --apply)",
                block_action="skipped")
        elif not already_blocked:  # a live stream may have blocked mid-way
            log(job, Action.AUTO_BLOCK)
            instance = job.content_object
            if instance is not None and registration is not None:
                apply_block(instance, registration, job)
            send_on_commit(signals.content_blocked, job, instance=instance)
    job.save(update_fields=["suggestion", "decision", "review_state", "result", "updated_at"])
    send_on_commit(signals.job_completed, job)
    return suggestion


def resolve(job: Job, decision: str, actor=None, reason: str = "",
            reason_code: str = "") -> Job:
    """A moderator's decision: ``approved`` shows the content (undoing a hide),
    ``rejected`` blocks it (running the block action). ``reason_code`` (a policy category,
    checked by ``review.decide``) is stored on the event beside the free-text ``reason``.

    A decision may reverse an earlier one (the event's data keeps ``previous_decision``).
    It releases any moderator's claim and sends ``review_resolved`` after commit."""
    if decision not in (Decision.APPROVED, Decision.REJECTED):
        raise ValueError(f"decision must be approved or rejected, not {decision!r}")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status != Status.DONE:
            raise ValueError(f"job {job.pk} is {job.status}; only finished jobs are reviewed")
        previous = job.decision
        job.decision, job.review_state = decision, ReviewState.RESOLVED
        job.claimed_by, job.claimed_until = None, None
        job.save(update_fields=["decision", "review_state", "claimed_by", "claimed_until",
                                "updated_at"])
        ReviewEvent.objects.create(
            job=job, action=Action.APPROVED if decision == Decision.APPROVED else Action.REJECTED,
            reason=reason, reason_code=reason_code, actor=actor,
            data={"previous_decision": previous} if previous else {})
        registration, instance = registration_for(job), job.content_object
        if instance is not None and registration is not None:
            if decision == Decision.APPROVED:
                apply_unblock(instance, registration, job)
            else:
                apply_block(instance, registration, job)
                send_on_commit(signals.content_blocked, job, instance=instance)
        send_on_commit(signals.review_resolved, job, decision=decision, actor=actor)
    return job


def reopen(job: Job, undone: ReviewEvent, actor=None) -> Job:
    """Undo the moderator's decision ``undone`` (``review.undo_decision`` checks who and
    when): the job returns to review (pending, no decision) and the content is shown or
    hidden as it was before that decision: a ``hide`` the rejection made is lifted, one an
    approval lifted (the job was blocked before) is put back. A block action other than
    ``hide`` cannot be taken back, nor feedback already sent to a provider. Writes an
    ``undone`` event and sends ``review_required`` after commit: the item is pending again."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        previous = (undone.data or {}).get("previous_decision", "")
        job.decision, job.review_state = "", ReviewState.PENDING
        job.claimed_by, job.claimed_until = None, None
        job.save(update_fields=["decision", "review_state", "claimed_by", "claimed_until",
                                "updated_at"])
        log(job, Action.UNDONE, actor=actor, undone_event=undone.pk, decision=undone.action,
            reason_code=undone.reason_code, **({"previous_decision": previous}
                                              if previous else {}))
        registration, instance = registration_for(job), job.content_object
        blocked_before = previous in (Decision.REJECTED, Decision.AUTO_BLOCK)
        if instance is not None and registration is not None:
            if undone.action == Action.REJECTED and not blocked_before:
                apply_unblock(instance, registration, job)
            elif (undone.action == Action.APPROVED and blocked_before
                  and registration.block_action() == "hide"):
                apply_block(instance, registration, job)
        send_on_commit(signals.review_required, job)
    return job


def send_on_commit(signal, job: Job, **kwargs) -> None:
    transaction.on_commit(lambda: signal.send(sender=Job, job=job, **kwargs))




__all__ = ["apply_policy", "registration_for", "reopen", "resolve"]
