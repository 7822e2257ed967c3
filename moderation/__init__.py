"""Content moderation of images, videos, live streams and speech for Django.

The names in ``__all__`` are the public API (docs/public-api.md); everything else may
change between releases. Importing this package is cheap and safe from settings or an
AppConfig: each function imports what it needs when called (models need the app
registry), and the signals load on first use (module ``__getattr__``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pragma: no cover - names for type checkers only (py.typed)
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from django.db.models import Model, QuerySet

    from .models import FeedbackRequest, Job
    from .registry import Registration

    # The signals, as __getattr__ below gives them at run time.
    from .signals import content_blocked as content_blocked
    from .signals import job_completed as job_completed
    from .signals import job_progress as job_progress
    from .signals import job_submitted as job_submitted
    from .signals import review_required as review_required
    from .signals import review_resolved as review_resolved

    #: Who decides: a user (``request.user`` included; an anonymous one is refused).
    User = AbstractBaseUser | AnonymousUser

_M = TypeVar("_M", bound="Model")

__version__ = "0.1.0"

#: The signals (moderation/signals.py), importable from here: ``moderation.job_completed``.
SIGNALS = ("job_submitted", "job_progress", "job_completed", "review_required",
           "content_blocked", "review_resolved")

__all__ = [
    "__version__", "register", "unregister", "visible", "moderate", "retry", "decide",
    "undo_decision", "request_feedback", *SIGNALS,
]


def register(model: type[Model], fields: str | Iterable[str], **options: Any) -> Registration:
    """Moderate ``fields`` of ``model``; see moderation.registry.Registration for options."""
    from .registry import registry  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    return registry.register(model, fields, **options)


def unregister(model: type[Model]) -> None:
    """Stop moderating ``model`` (its jobs stay)."""
    from .registry import registry  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    registry.unregister(model)


def visible(queryset: QuerySet[_M]) -> QuerySet[_M]:
    """Only the objects whose registered fields all passed or were approved."""
    from .visibility import visible as _visible  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    return _visible(queryset)


def moderate(content: bytes | IO[bytes] | None = None, *, name: str = "", url: str = "",
             kind: str | None = None, provider: str | None = None,
             scenes: list[str] | None = None, wait: float = 0.0) -> Job:
    """Moderate a file (``content``: bytes and its ``name``, or an open file such as an
    upload, whose own name serves) or a URL (video or live stream) that belongs to no
    model field, as the API's moderate endpoint does.

    The job is queued when the current transaction commits; ``wait`` > 0 then waits up to
    that many seconds for its result (a worker must be running; never wait inside
    ``transaction.atomic``, the job would not be queued yet). Returns the Job."""
    from .pipeline import create_adhoc_job  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    if content is not None and not isinstance(content, bytes | bytearray):
        name = name or os.path.basename(getattr(content, "name", "") or "")
        content = content.read()
    job = create_adhoc_job(kind=kind, name=name, content=content, url=url,
                           provider=provider, scenes=scenes)
    deadline = time.monotonic() + max(0.0, wait)
    while not job.is_finished and time.monotonic() < deadline:
        time.sleep(0.2)
        job.refresh_from_db()
    return job


def retry(job: Job, actor: User | None = None) -> Job:
    """Put a failed or expired job back in line (no effect on others); returns it fresh."""
    from .pipeline import retry as _retry  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    return _retry(job, actor=actor)


def decide(job: Job, decision: str, user: User, reason: str = "",
           reason_code: str = "") -> Job:
    """Approve or reject a finished job as ``user`` (needs ``moderation.review_job``),
    ``reason_code`` a policy category of MODERATION["REASONS"]; see review.decide."""
    from .review import decide as _decide  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    return _decide(job, decision, user, reason, reason_code)


def undo_decision(job: Job, user: User) -> Job:
    """Undo ``user``'s last decision on ``job`` within UNDO_SECONDS (a superuser may undo
    anyone's): the job returns to review; see review.undo_decision."""
    from .review import undo_decision as _undo_decision  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    return _undo_decision(job, user)


def request_feedback(job: Job, decision: str, *, frame_ids: Iterable[int] | None = None,
                     scenes: Iterable[str] | None = None, note: str = "",
                     actor: User | None = None) -> FeedbackRequest:
    """Tell the provider (or the hash library) that similar media should pass or be
    blocked; delivered in the background. See feedback.request_feedback."""
    from .feedback import request_feedback as _request_feedback  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

    return _request_feedback(job, decision, frame_ids=frame_ids, scenes=scenes, note=note,
                             actor=actor)


if not TYPE_CHECKING:  # checkers see the signals imported above, and a misspelt name fails

    def __getattr__(name: str) -> Any:
        if name in SIGNALS:
            from . import signals  # noqa: PLC0415 - `import moderation` loads nothing (docs/public-api.md)

            return getattr(signals, name)
        raise AttributeError(f"module 'moderation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *SIGNALS})
