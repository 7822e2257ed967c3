"""The provider interface (one interface over many engines, like django-anymail's backends).

A provider receives a :class:`Media` and a :class:`ModerationRequest`, and answers with a
normalized :class:`~moderation.providers.result.Result`. Providers never touch models:
everything they need arrives in the request, everything they know leaves in the result.

Synchronous providers (``sync`` capability) return a finished result (``done`` or
``failed``) from :meth:`Provider.submit` for every image; asynchronous ones return
``status="in_progress"`` with a ``task_id`` and are asked again through
:meth:`Provider.fetch`. Capabilities are enforced by the worker: an undeclared media kind
fails its job ``not_supported`` before ``submit`` (:meth:`Provider.check_media`), and an
image a ``sync`` provider answers unfinished fails its job ``sync_violation`` (not retried,
not polled; ``moderation.pipeline.worker.check_sync``). A provider that some option or job
can make answer images later does not declare ``sync``.

Providers that take pushed results (``callback`` capability) implement three hooks the
callback view calls in order - :meth:`Provider.read_callback` (the body, already size-capped,
into a :class:`ReceivedCallback`), :meth:`Provider.verify_callback` (against what the job
sent) and :meth:`Provider.parse_callback` (into a Result) - and each provider checks its own
configuration in :meth:`Provider.check` (``manage.py check``).

What a provider needs from the site besides the request - the resolved ``MODERATION``
settings and the shared rate limiter - arrives in its constructor as a
:class:`ProviderContext` (:func:`moderation.providers.get_provider` builds it), so that no
provider reads global settings or writes rate-limit rows itself.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol

from ..conf import DEFAULTS
from .errors import NotSupported
from .result import Result

if TYPE_CHECKING:
    from django.core.checks import CheckMessage
    from django.http import HttpRequest

# Capability flags, declared per provider class.
IMAGE = "image"
VIDEO = "video"
FRAMES = "frames"
LIVE = "live"
AUDIO = "audio"
FEEDBACK = "feedback"
CALLBACK = "callback"
SYNC = "sync"
CAPABILITIES = (IMAGE, VIDEO, FRAMES, LIVE, AUDIO, FEEDBACK, CALLBACK, SYNC)

MEDIA_KINDS = ("image", "video", "frames", "live", "audio")


@dataclass
class Media:
    """One piece of media to moderate: bytes reachable by ``open()``, maybe a URL."""

    name: str
    kind: str
    opener: Callable[[], IO[bytes]] | None = None
    url: str = ""
    size: int | None = None
    # A local filesystem path when the storage has one (decoders seek faster on files).
    path: str = ""
    # A frame sequence (kind "frames"): (offset seconds, image bytes) in order.
    frames: list[tuple[float, bytes]] | None = None

    @property
    def has_bytes(self) -> bool:
        return self.opener is not None or self.frames is not None

    def open(self) -> IO[bytes]:
        if self.opener is None:
            raise NotSupported(f"{self.name!r} has no local bytes, only a URL")
        return self.opener()

    def chunks(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open() as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def read(self) -> bytes:
        with self.open() as fh:
            return fh.read()

    def sha256(self) -> str:
        digest = hashlib.sha256()
        if self.frames is not None:
            for offset, data in self.frames:
                digest.update(f"{offset:.3f}:{len(data)}:".encode())
                digest.update(data)
        else:
            for chunk in self.chunks():
                digest.update(chunk)
        return digest.hexdigest()

    @classmethod
    def from_path(cls, path: str, kind: str) -> Media:
        return cls(
            name=os.path.basename(path),
            kind=kind,
            opener=lambda: open(path, "rb"),
            size=os.path.getsize(path),
            path=os.path.abspath(path),
        )


#: ``(done, total, unit)``: how far a provider has got with one media, ``unit`` ``"s"``
#: (seconds of the media) or ``"frames"``, ``total`` 0 when unknown.
ProgressReporter = Callable[[float, float, str], None]


@dataclass
class ModerationRequest:
    """What to check and how: everything a provider may use besides the bytes."""

    scenes: list[str] = field(default_factory=list)
    biz_type: str = ""
    data_id: str = ""
    seed: str = ""
    callback_url: str = ""
    # Hash libraries (allow/block lists): an object with ``match(pdq_hex)``; see
    # moderation.libraries. Given by the pipeline so that providers stay model-free.
    libraries: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    # Where a long analysis says how far it has got (the pipeline writes it onto the job,
    # throttled, for the job page); providers call :meth:`report_progress`.
    progress: ProgressReporter | None = None

    def report_progress(self, done: float, total: float, unit: str = "s") -> None:
        """Tell the caller how far the work has got; a no-op when nobody listens. Cheap
        enough to call per frame: the listener throttles."""
        if self.progress is not None:
            self.progress(done, total, unit)


@dataclass
class Feedback:
    """A moderator's verdict sent back to the provider, which adds similar media to the
    account's allow (``pass``) or block lists (aliyun-api-reference.md §2.5, §2.7, §2.13)."""

    decision: str  # "pass" or "block"
    kind: str = "image"  # MEDIA_KINDS
    task_id: str = ""
    data_id: str = ""
    url: str = ""  # where the provider can fetch the media (images)
    scenes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # our label names the decision is about
    # Video: the frames the decision is about, as (offset seconds, fetchable URL).
    frames: list[tuple[float, str]] = field(default_factory=list)
    note: str = ""


class ReceivedCallback(Protocol):
    """What :meth:`Provider.read_callback` returns: enough to find the job (its task id or
    the data id sent with the submission) and the provider's own ``content``."""

    @property
    def task_id(self) -> str: ...

    @property
    def data_id(self) -> str: ...

    @property
    def content(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Callback:
    """A plain :class:`ReceivedCallback` for providers that need nothing more."""

    task_id: str = ""
    data_id: str = ""
    content: dict[str, Any] = field(default_factory=dict)
    #: whatever the provider's verify hook needs (a signature, the exact body...)
    extra: dict[str, Any] = field(default_factory=dict)


def no_limit(key: str, rate: float) -> None:
    """The default rate limiter: every call gets its turn at once."""


@dataclass(frozen=True)
class ProviderContext:
    """What a provider gets from the site besides the request, given to its constructor.

    ``settings``: the resolved ``MODERATION`` settings, every key of
    :data:`moderation.conf.DEFAULTS` (the defaults themselves when a provider is built by
    hand, as tests do). ``acquire(key, rate)``: wait for a turn under ``rate`` calls per
    second shared by every worker on ``key``, raising
    :class:`~moderation.providers.errors.Throttled` when none comes in time (the
    ``RATE_LIMITER`` setting, :func:`moderation.ratelimit.acquire`; by hand: no limit).
    """

    settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType(dict(DEFAULTS)))
    acquire: Callable[[str, float], object] = no_limit

    def setting(self, name: str) -> Any:
        """One setting; ``KeyError`` names a key that is not a ``MODERATION`` setting."""
        try:
            return self.settings[name]
        except KeyError:
            raise KeyError(f"not a moderation setting: {name!r}") from None


class Provider:
    """Base class. Subclasses set ``capabilities`` and implement the hooks they support."""

    capabilities: frozenset[str] = frozenset()
    #: scenes used when a registration names none
    default_scenes: tuple[str, ...] = ()
    #: OPTIONS keys that must be set (checked by moderation.E003)
    required_options: tuple[str, ...] = ()
    #: the provider fetches media by URL (remote services), not from local bytes
    needs_url: bool = False
    #: the provider matches images against the hash libraries itself (it reads
    #: ``ModerationRequest.libraries``): the pipeline's library pre-check skips it, and
    #: feedback adds to the libraries for it even when the pre-check is off
    consults_libraries: bool = False
    #: what the same bytes get from this provider; bump it when a change would answer them
    #: differently (results of another version are not reused for new jobs)
    result_version: str = "1"

    def __init__(self, alias: str, options: dict[str, Any] | None = None,
                 context: ProviderContext | None = None):
        self.alias = alias
        self.options = dict(options or {})
        self.context = context if context is not None else ProviderContext()

    @property
    def account(self) -> str:
        """Who the provider's limits apply to: aliases with the same account share them."""
        return f"{type(self).__name__}:{self.alias}"

    @property
    def max_unfinished_tasks(self) -> int | None:
        """At most this many video tasks of :attr:`account` may be unfinished at the
        provider; more wait in the job table (None: no limit)."""
        return None

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def check_media(self, media: Media) -> None:
        if media.kind not in self.capabilities:
            raise NotSupported(f"provider {self.alias!r} does not moderate {media.kind}")

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        """Start moderation. Returns a finished result or one with a ``task_id``."""
        raise NotSupported(f"provider {self.alias!r} cannot submit")

    def stream(self, media: Media, request: ModerationRequest) -> Iterator[Result]:
        """Moderate a live stream: partial results (``in_progress``) until one is
        ``done``. The caller stops iterating to cancel."""
        raise NotSupported(f"provider {self.alias!r} does not moderate live streams")

    def fetch(self, task_id: str, request: ModerationRequest) -> Result:
        """Ask for the result of an earlier submit."""
        raise NotSupported(f"provider {self.alias!r} has no asynchronous results")

    def cancel(self, task_id: str) -> None:
        """Stop an unfinished task at the provider (its job was cancelled)."""
        raise NotSupported(f"provider {self.alias!r} cannot cancel tasks")

    def feedback(self, feedback: Feedback) -> None:
        """Send a moderator's verdict to the provider (``feedback`` capability)."""
        raise NotSupported(f"provider {self.alias!r} takes no feedback")

    # --- callbacks (``callback`` capability): the view calls read -> verify -> parse --------

    def read_callback(self, request: HttpRequest, body: bytes) -> ReceivedCallback:
        """The callback in a POST: ``body`` is at most ``CALLBACK_MAX_BYTES`` (the view
        refuses larger ones unread), ``request`` gives the headers. Raise
        :class:`~moderation.providers.errors.MalformedCallback` for anything that is not
        one of this provider's callbacks (answered 400, nothing stored)."""
        raise NotSupported(f"provider {self.alias!r} takes no callbacks")

    def verify_callback(self, callback: ReceivedCallback, seed: str,
                        options: dict[str, Any]) -> bool:
        """Whether the callback is authentic, given what the job sent with its submission
        (its ``seed`` and ``options``). False is answered 403. Unverifiable is not
        authentic: the default refuses everything."""
        return False

    def parse_callback(self, content: dict[str, Any]) -> Result:
        """A finished result from a pushed (verified) callback's ``content``."""
        raise NotSupported(f"provider {self.alias!r} takes no callbacks")

    # --- configuration --------------------------------------------------------------------

    @classmethod
    def check(cls, alias: str, options: dict[str, Any],
              context: ProviderContext | None = None) -> list[CheckMessage]:
        """System-check messages about this provider's ``OPTIONS`` (``manage.py check``
        calls it for every configured alias, with the site's ``context``: checks read
        settings from it too). Missing ``required_options`` are reported for every
        provider already (moderation.E003)."""
        return []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.alias!r}>"
