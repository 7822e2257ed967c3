"""Settings: one ``MODERATION`` dict, defaults in one place, re-read on change.

Read through ``moderation_settings.NAME``; the object listens to ``setting_changed`` so
``override_settings(MODERATION=...)`` works in tests. Nothing reads settings at import time.
The reference for every key is docs/settings.md.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.translation import gettext_lazy as _

DEFAULTS: dict[str, Any] = {
    # Alias of the provider used when a registration names none.
    "DEFAULT_PROVIDER": "local",
    # alias -> {"BACKEND": dotted path, "OPTIONS": {...}}; merged over BUILTIN_PROVIDERS.
    "PROVIDERS": {},
    # risk level -> suggestion; a registration may override any key.
    "POLICY": {"high": "block", "medium": "review", "low": "pass", "none": "pass"},
    # label -> {"risk_level": ..., "min_confidence": ...}; merged over the table in labels.py.
    "LABELS": {},
    # category -> keywords; a match in text becomes the label "<category>_tii", in speech
    # the category's family (vocabulary.py: contraband_drug -> contraband).
    "KEYWORDS": {},
    # Storage alias (a key of settings.STORAGES) for thumbnails and clips. When the alias
    # is not configured, a private FileSystemStorage at EVIDENCE_ROOT is used.
    "EVIDENCE_STORAGE": "moderation_evidence",
    "EVIDENCE_ROOT": None,  # default: <BASE_DIR>/moderation_evidence
    "THUMBNAIL_SIZE": 320,  # longest side, pixels
    "THUMBNAIL_ALL_FRAMES": False,  # False: only frames with risk above none keep one
    # Retries of transient failures (throttling, outages): exponential backoff with jitter.
    "MAX_ATTEMPTS": 5,
    "RETRY_BACKOFF": 30,  # seconds before the first retry
    "RETRY_BACKOFF_MAX": 3600,
    "POLL_INTERVAL": 30,  # seconds before the first poll of an asynchronous provider
    "POLL_INTERVAL_MAX": 300,  # polls back off to a quarter of the time waited, up to this
    # A worker's hold on a job, renewed every third of it while the step runs; a dead
    # worker's job is handed on by the sweeper once this much time has passed unrenewed.
    "LEASE_SECONDS": 30,
    # A moderator who opens a review item holds it this long (nobody else gets it).
    "REVIEW_CLAIM_SECONDS": 600,
    # Reason codes a moderator picks when deciding (the policy categories; stored on the
    # ReviewEvent, the free-text reason stays as a note): code -> label. A rejection needs
    # one when REQUIRE_REJECT_REASON is on. A decision can be undone by its moderator for
    # UNDO_SECONDS (0: never). moderation/reasons.py; check E023.
    "REASONS": {
        "nudity": _("nudity"),
        "sexual": _("sexual content"),
        "violence": _("violence or gore"),
        "hate": _("hate or harassment"),
        "spam": _("spam or advertising"),
        "contact": _("contact details (phone, QR code, link)"),
        "drugs": _("drugs or contraband"),
        "other": _("other (see the note)"),
    },
    "REQUIRE_REJECT_REASON": False,
    "UNDO_SECONDS": 300,
    # django-q2 schedule that re-enqueues due, stuck or lost jobs (created on migrate).
    "SWEEPER_SCHEDULE": True,
    "SWEEPER_MINUTES": 1,
    # django-q2 cluster (Q_CLUSTER name) the tasks go to; None: the default cluster.
    "QUEUE": None,
    # The queue adapter (a module or object with enqueue, ensure_schedule and
    # remove_schedules; check E015): django-q2, or "moderation.taskqueue.inline" (tasks
    # run in-process on commit). docs/architecture.md, "Queue adapters".
    "TASK_QUEUE": "moderation.taskqueue.django_q2",
    # Input limits.
    "MAX_IMAGE_BYTES": 20 * 1024 * 1024,
    "MAX_IMAGE_PIXELS": 40_000_000,
    # Longest side at which images are analysed (decoded reduced: bounded memory).
    "IMAGE_WORKING_SIZE": 4096,
    # Animated images: most pixels decoded over all frames (more fails "image_too_large").
    "MAX_ANIMATION_PIXELS": 1_000_000_000,
    # Video: defaults of the frame capture (per registration: interval=, max_frames=).
    "VIDEO_INTERVAL": 1,  # seconds between captured frames, 1..600
    "VIDEO_MAX_FRAMES": 200,  # 5..3600
    "MAX_VIDEO_BYTES": 500 * 1024 * 1024,
    # Longest video or audio file analysed, seconds (declared or decoded): longer fails
    # with the MediaError code "too_long". Bounds a job's time; memory does not grow with it.
    "MAX_DURATION": 4 * 3600,
    # Live streams: chunk length and the longest a stream is followed.
    "LIVE_CHUNK_SECONDS": 10,
    "LIVE_MAX_DURATION": 3600,
    # Fetching remote media ourselves (live streams): refuse private addresses (SSRF).
    "ALLOW_PRIVATE_ADDRESSES": False,
    # CIDRs admitted although private (an intranet stream server, a test harness).
    "ALLOWED_NETWORKS": [],
    # Public https base URL of the site, for callbacks and signed media URLs.
    "PUBLIC_BASE_URL": "",
    "CALLBACK_BASE_URL": "",
    # Largest provider callback body accepted, bytes: refused (400) before it is read,
    # hashed or parsed. A 2-hour video's 2.0 callback is a few MB.
    "CALLBACK_MAX_BYTES": 16 * 1024 * 1024,
    # How evidence and originals reach the browser once the permission check passed
    # (docs/operations.md, "Serving files"): "proxy" (through Django, any storage),
    # "redirect" (a presigned URL of an S3-like storage, EXPIRES seconds long),
    # "x-accel-redirect" (nginx; LOCATIONS maps directories to internal URL prefixes) or
    # "x-sendfile" (Apache). A storage that cannot do the mode is served by "proxy".
    "FILE_DELIVERY": "proxy",
    "FILE_DELIVERY_EXPIRES": 60,
    "FILE_DELIVERY_LOCATIONS": {},
    # Hash libraries (docs/libraries.md): answer an image from the allow/block lists before
    # a remote provider is called, and the PDQ Hamming distance that counts as a match.
    "LIBRARY_PRECHECK": True,
    "LIBRARY_MATCH_THRESHOLD": 31,
    # The local engine's extra detectors, run after the built-ins: dotted paths or
    # {"class": path, "options": {...}} (docs/providers.md, "Detectors"). The local
    # provider's OPTIONS["detectors"] replaces this list for that provider.
    "DETECTORS": [],
    # Operator alerts (moderation/alerts.py, checked by the sweeper): when the review queue
    # holds QUEUE_SIZE items or more, or its oldest item is OLDEST_MINUTES old or more
    # (None: not watched), e-mail EMAILS and/or POST JSON to WEBHOOK_URL (through the
    # network guard, WEBHOOK_TIMEOUT seconds), once per episode. Check E016.
    "ALERTS": {"QUEUE_SIZE": None, "OLDEST_MINUTES": None, "EMAILS": [], "WEBHOOK_URL": "",
               "WEBHOOK_TIMEOUT": 5},
    # E-mail the uploader when a moderator approves or rejects their content (templates
    # moderation/email/decision_subject.txt, decision_body.txt); UPLOADER_EMAIL: dotted path
    # of a function (instance, job) -> address or None, the site's business. Check E016.
    "NOTIFY_UPLOADER": False,
    "UPLOADER_EMAIL": "",
    # Dotted path of the rate limiter providers wait on, acquire(key, rate): a turn under
    # ``rate`` calls/s shared by every worker, or Throttled (moderation/ratelimit.py).
    "RATE_LIMITER": "moderation.ratelimit.acquire",
}

BUILTIN_PROVIDERS: dict[str, dict[str, Any]] = {
    "local": {"BACKEND": "moderation.providers.local.LocalProvider", "OPTIONS": {}},
}


class ModerationSettings:
    """Lazy view of ``settings.MODERATION`` over :data:`DEFAULTS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, "MODERATION", None) or {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Invalid moderation setting: {name!r}")
        if name not in self._cache:
            self._cache[name] = self.user_settings.get(name, DEFAULTS[name])
        return self._cache[name]

    @property
    def providers(self) -> dict[str, dict[str, Any]]:
        merged = {alias: dict(conf) for alias, conf in BUILTIN_PROVIDERS.items()}
        for alias, conf in (self.PROVIDERS or {}).items():
            merged[alias] = {**merged.get(alias, {}), **conf}
        return merged

    @property
    def evidence_root(self) -> str:
        root = self.EVIDENCE_ROOT
        if root:
            return str(root)
        base = getattr(settings, "BASE_DIR", None) or os.getcwd()
        return os.path.join(str(base), "moderation_evidence")

    def snapshot(self) -> dict[str, Any]:
        """Every setting resolved, for a provider's context (providers read no globals)."""
        return {name: getattr(self, name) for name in DEFAULTS}

    def reload(self) -> None:
        self._cache.clear()


moderation_settings = ModerationSettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting in ("MODERATION", "STORAGES", "BASE_DIR", "MEDIA_ROOT"):
        moderation_settings.reload()
        # What caches objects built from these settings (providers, the evidence storage)
        # connects its own receiver, called after this one: conf imports nothing of the app.
