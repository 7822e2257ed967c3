"""A site's own code against the public API (docs/public-api.md), fully typed.

Never imported by the test run: .ci/typecheck runs mypy over it (strict: every definition
typed, mypy.ini), which proves that moderation/py.typed gives a site's checker real types.
`assert_type` pins what a name gives back (a lost annotation becomes Any and fails it), and
each `# type: ignore[code]` line is a misuse the checker must reject: warn_unused_ignores
turns an ignore that no longer matches an error into one.
"""

from __future__ import annotations

from typing import Any, assert_type

from django.contrib import admin
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

import moderation
from moderation import (
    content_blocked,
    decide,
    job_completed,
    moderate,
    register,
    request_feedback,
    retry,
    review_resolved,
    undo_decision,
    unregister,
    visible,
)
from moderation.admin import ModeratedAdminMixin
from moderation.fields import StreamURLField
from moderation.models import FeedbackRequest, Job
from moderation.providers import (
    Frame,
    Label,
    Media,
    ModerationRequest,
    Provider,
    ProviderError,
    Result,
    Slice,
)
from moderation.providers.local.detectors.base import Detection, Detector, FrameInput
from moderation.registry import Registration
from moderation.testing import (
    ScriptedProvider,
    run_pending_jobs,
    scripted_provider,
    scripted_result,
)
from tests.testapp.models import Photo

# --- registering and showing ------------------------------------------------------------


def setup_moderation() -> Registration:
    """What a site's AppConfig.ready() does."""
    registration = register(Photo, ["image"], on_block="hide", scenes=["porn"])
    assert_type(registration.fields, list[str])
    return registration


def stop_moderating() -> None:
    unregister(Photo)
    unregister("Photo")  # type: ignore[arg-type]


def gallery() -> list[str]:
    """visible() keeps the queryset's model: the titles are str, not Any."""
    shown = visible(Photo.objects.filter(title__startswith="a"))
    assert_type(shown, QuerySet[Photo])
    return [photo.title for photo in shown]


def not_a_queryset() -> None:
    visible([Photo()])  # type: ignore[arg-type]


# --- moderating content that belongs to no field and deciding ---------------------------


def check_upload(data: bytes) -> bool:
    job = moderate(data, name="upload.png", wait=5.0)
    assert_type(job, Job)
    return job.is_finished


def check_stream(url: str) -> Job:
    return moderate(url=url, kind="live", scenes=["porn", "live"])


def bad_wait() -> None:
    moderate(b"", wait="5")  # type: ignore[arg-type]


def approve_view(request: HttpRequest, job_id: int) -> HttpResponse:
    """A site's own review view: request.user may be anonymous, decide() refuses that."""
    job = Job.objects.get(pk=job_id)
    job = decide(job, "approve", request.user, reason="fine", reason_code="")
    return HttpResponse(job.decision)


def reject_and_undo(job: Job, request: HttpRequest) -> Job:
    decide(job, "reject", request.user, reason_code="spam")
    return undo_decision(job, request.user)


def again(job: Job) -> Job:
    return retry(job, actor=AnonymousUser())


def tell_provider(job: Job) -> FeedbackRequest:
    return request_feedback(job, "rejected", frame_ids=[1, 2], note="missed this")


def decide_without_user(job: Job) -> None:
    decide(job, "approve")  # type: ignore[call-arg]


# --- signals -----------------------------------------------------------------------------


@receiver(job_completed)
def on_completed(sender: type[Job], job: Job, **kwargs: Any) -> None:
    print(job.pk, job.risk_level)


@receiver(content_blocked)
def on_blocked(sender: type[Job], job: Job, instance: Photo, **kwargs: Any) -> None:
    instance.title = f"[blocked] {instance.title}"


@receiver(review_resolved)
def on_resolved(sender: type[Job], job: Job, decision: str, actor: Any, **kwargs: Any) -> None:
    print(decision)


def signals_from_the_package() -> None:
    """moderation.<signal> is the same Signal (module __getattr__ at run time)."""
    moderation.review_required.connect(on_completed)
    moderation.no_such_signal.connect(on_completed)  # type: ignore[attr-defined]


# --- a provider of one's own -------------------------------------------------------------


class AcmeProvider(Provider):
    capabilities = frozenset({"image"})
    default_scenes = ("porn",)

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        if not media.read():
            raise ProviderError("empty upload", code="empty")
        label = Label("porn", 97.5, risk_level="high", service="acme")
        frame = Frame(offset=0.0, risk_level="high", labels=[label])
        return Result(status="done", risk_level="high", labels=[label], frames=[frame],
                      slices=[Slice(start=0.0, end=1.0, text="")])


class WrongProvider(Provider):
    def submit(self, media: Media, request: ModerationRequest) -> str:  # type: ignore[override]
        return "done"


# --- a detector for the local engine -----------------------------------------------------


class RedDetector:
    """Flags frames that are mostly red (a site's own check)."""

    name = "red"
    scenes = frozenset({"porn"})
    labels = ("red",)
    needs = frozenset({"pixels"})

    def detect(self, frame: FrameInput) -> Detection:
        red = float(frame.bgr[..., 2].mean())
        if red < 200:
            return Detection()
        return Detection(labels=[Label("red", red / 2.55, risk_level="low", service="red")],
                         details={"red": {"mean": red}})


class NotADetector:
    name = "broken"
    scenes = frozenset({"porn"})
    labels = ("x",)
    needs = frozenset({"pixels"})

    def detect(self, frame: bytes) -> Detection:
        return Detection()


DETECTORS: list[Detector] = [RedDetector()]
BROKEN: list[Detector] = [NotADetector()]  # type: ignore[list-item]


# --- the admin and the fields ------------------------------------------------------------


class PhotoAdmin(ModeratedAdminMixin, admin.ModelAdmin[Photo]):
    list_display = ("title", "moderation_status")


STREAM_URL = StreamURLField(max_length=500, blank=True)


# --- a site's own tests -------------------------------------------------------------------


def test_blocked_photo() -> None:
    with scripted_provider(DEFAULT_PROVIDER="scripted") as provider:
        assert_type(provider, type[ScriptedProvider])
        provider.script.append(scripted_result("high", "porn"))
        provider.script.append("not a result")  # type: ignore[arg-type]
        Photo.objects.create(title="hi")
        steps = run_pending_jobs()
    assert steps >= 0
    assert [call[0] for call in provider.calls] == ["submit"]
