"""System checks with stable ids. ``manage.py check`` reports bad settings, not a crash at 3 a.m.

| id              | problem                                                         |
|-----------------|-----------------------------------------------------------------|
| moderation.E001 | unknown provider alias (default provider or a registration)      |
| moderation.E002 | a provider BACKEND that cannot be imported                       |
| moderation.E003 | a provider without its credentials (required OPTIONS, or an      |
|                 | Alibaba CREDENTIALS value that names no credential source)      |
| moderation.E004 | a callback/public URL that is not https nor loopback (DEBUG off) |
| moderation.E005 | django-q2 not installed or Q_CLUSTER not configured (when the    |
|                 | TASK_QUEUE is the django-q2 adapter, the default)                |
| moderation.E006 | an invalid POLICY (risk level -> suggestion)                     |
| moderation.E007 | an invalid LABELS override                                       |
| moderation.E008 | an unknown MODERATION key (a typo would be silently ignored)     |
| moderation.E009 | the local provider's packages are missing (the ``local`` extra)  |
| moderation.E010 | VIDEO_INTERVAL / VIDEO_MAX_FRAMES out of range                   |
| moderation.E011 | CALLBACK_BASE_URL set but a callback provider has no UID         |
| moderation.E012 | a field moderated by a URL-fetching provider has no way to a URL |
| moderation.E013 | ALLOWED_NETWORKS is not a list of IP networks (CIDR)             |
| moderation.E014 | MAX_DURATION is not a positive number of seconds                 |
| moderation.E015 | TASK_QUEUE does not import or lacks enqueue / ensure_schedule /  |
|                 | remove_schedules                                                 |
| moderation.E016 | bad ALERTS (thresholds, EMAILS, WEBHOOK_URL), or NOTIFY_UPLOADER |
|                 | without a usable UPLOADER_EMAIL function                         |
| moderation.E017 | CALLBACK_MAX_BYTES is not a positive whole number of bytes       |
| moderation.W017 | SM3 callbacks verified by the slow pure-Python fallback          |
| moderation.E018 | IMAGE_WORKING_SIZE / MAX_ANIMATION_PIXELS not sensible numbers   |
| moderation.E019 | LEASE_SECONDS under 3 s, SWEEPER_MINUTES not a whole number >= 1  |
| moderation.W001 | evidence storage inside MEDIA_ROOT (evidence would be public)    |
| moderation.W002 | Q_CLUSTER timeout shorter than a video or live job may take      |
| moderation.W003 | a provider refused our credentials in the last 24 h (database)  |
| moderation.E020 | a local DETECTORS entry that does not import, build or satisfy   |
|                 | the Detector protocol                                            |
| moderation.W004 | a registration asks the local provider for scenes no configured  |
|                 | detector covers (terrorism, live, logo by default)               |
| moderation.E021 | the local provider's speech recogniser (asr_engine, asr_model)   |
|                 | is unknown or its packages are not installed                     |
| moderation.E022 | FILE_DELIVERY not a known mode, FILE_DELIVERY_EXPIRES not 1..3600 |
|                 | s, FILE_DELIVERY_LOCATIONS not a dict of absolute dirs -> prefixes |
| moderation.E023 | REASONS not a dict of codes -> labels, REQUIRE_REJECT_REASON not a |
|                 | bool (or on with no REASONS), UNDO_SECONDS not a whole number >= 0 |

E009/E020/E021/W004 (local) and E011/W017 (Alibaba, and E003 for a CREDENTIALS value) come
from the providers' own ``Provider.check``, called here for every configured alias, like a
site provider's checks.

W003 reads the job history, so it runs only when a database is named:
``manage.py check --database default`` (and during ``migrate``).
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, models
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from . import taskqueue
from .alerts import settings_problems as alert_settings_problems
from .conf import BUILTIN_PROVIDERS, DEFAULTS, moderation_settings
from .health import auth_failures
from .labels import validate_overrides
from .media_url import public_url_for
from .providers import get_provider
from .providers.base import Provider, ProviderContext
from .providers.result import RISK_LEVELS, SUGGESTIONS
from .reasons import settings_problems as reason_settings_problems
from .registry import registry, validate_frame_options
from .remote import is_loopback_host
from .serving import DELIVERY_MODES


def _provider_aliases_in_use() -> dict[str, str]:
    used = {moderation_settings.DEFAULT_PROVIDER: "MODERATION['DEFAULT_PROVIDER']"}
    for reg in registry:
        if reg.provider:
            used.setdefault(reg.provider, f"moderation.register({reg.model._meta.label})")
    return used


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs):
    errors = []
    user = moderation_settings.user_settings
    if not isinstance(user, dict):
        return [Error(_("MODERATION must be a dict."), id="moderation.E008")]
    for key in sorted(set(user) - set(DEFAULTS)):
        errors.append(Error(
            _("Unknown MODERATION setting %(key)s.") % {"key": repr(key)},
            hint=_("See docs/settings.md for the valid keys."), id="moderation.E008",
        ))

    providers = moderation_settings.providers
    in_use = _provider_aliases_in_use()
    for alias, where in in_use.items():
        if alias not in providers:
            errors.append(Error(
                _("%(where)s names provider %(alias)s, which is not configured.")
                % {"where": where, "alias": repr(alias)},
                hint=_("Configured providers: %(providers)s. Add it to "
                       "MODERATION['PROVIDERS'].") % {"providers": ", ".join(sorted(providers))},
                id="moderation.E001",
            ))
    named = user.get("PROVIDERS")
    named = named if isinstance(named, dict) else {}
    for alias, conf in providers.items():
        if alias in BUILTIN_PROVIDERS and alias not in named and alias not in in_use:
            # The built-in engine that no setting or registration uses: a site on a remote
            # provider needs no `local` extra (E009 would ask for it).
            continue
        backend = conf.get("BACKEND", "")
        try:
            provider_class = import_string(backend)
        except ImportError as exc:
            errors.append(Error(
                _("Provider %(alias)s: cannot import BACKEND %(backend)s (%(error)s).")
                % {"alias": repr(alias), "backend": repr(backend), "error": exc},
                id="moderation.E002",
            ))
            continue
        required = getattr(provider_class, "required_options", ())
        missing_options = [key for key in required if not conf.get("OPTIONS", {}).get(key)]
        if hasattr(provider_class, "missing_options"):  # e.g. a credential chain for keys
            missing_options = provider_class.missing_options(dict(conf.get("OPTIONS") or {}))
        if missing_options:
            errors.append(Error(
                _("Provider %(alias)s has no %(options)s.")
                % {"alias": repr(alias), "options": ", ".join(missing_options)},
                hint=_("Set them in OPTIONS, read from the environment, not the source."),
                id="moderation.E003",
            ))
        # The provider's own checks (E009/E020/E021/W004 local, E011/W017 Alibaba, a site's
        # own ids).
        if isinstance(provider_class, type) and issubclass(provider_class, Provider):
            context = ProviderContext(settings=moderation_settings.snapshot())
            errors += provider_class.check(alias, dict(conf.get("OPTIONS") or {}),
                                           context=context)

    if not settings.DEBUG:
        for key in ("CALLBACK_BASE_URL", "PUBLIC_BASE_URL"):
            url = getattr(moderation_settings, key)
            loopback = is_loopback_host(urlsplit(str(url)).hostname or "")
            if url and not str(url).startswith("https://") and not loopback:
                errors.append(Error(
                    _("MODERATION[%(key)s] = %(url)s is not https.")
                    % {"key": repr(key), "url": repr(url)},
                    hint=_("Providers post results and fetch media over the internet: "
                           "use https."),
                    id="moderation.E004",
                ))

    cap = moderation_settings.CALLBACK_MAX_BYTES
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1024:
        errors.append(Error(
            _("MODERATION['CALLBACK_MAX_BYTES'] = %(value)s is not a whole number of bytes "
              "(at least 1024).") % {"value": repr(cap)},
            hint=_("For example 16 * 1024 * 1024; larger callback bodies are refused with "
                   "400."),
            id="moderation.E017",
        ))

    errors.extend(_check_task_queue())
    # django-q2 is needed by its adapter only (the default TASK_QUEUE).
    uses_django_q = DEFAULTS["TASK_QUEUE"] == moderation_settings.TASK_QUEUE
    if uses_django_q and "django_q" not in settings.INSTALLED_APPS:
        errors.append(Error(_("django-q2 is not in INSTALLED_APPS."),
                            hint=_("Add 'django_q' to INSTALLED_APPS."), id="moderation.E005"))
    elif uses_django_q and not isinstance(getattr(settings, "Q_CLUSTER", None), dict):
        errors.append(Error(
            _("Q_CLUSTER is not configured, so moderation tasks have no queue."),
            hint=_("For example Q_CLUSTER = {'name': 'moderation', 'orm': 'default'}."),
            id="moderation.E005",
        ))

    policy = moderation_settings.POLICY
    if not isinstance(policy, dict) or any(
        k not in RISK_LEVELS or v not in SUGGESTIONS for k, v in policy.items()
    ):
        errors.append(Error(
            _("MODERATION['POLICY'] = %(value)s is invalid.") % {"value": repr(policy)},
            hint=_("Map risk levels %(levels)s to suggestions %(suggestions)s.")
            % {"levels": RISK_LEVELS, "suggestions": SUGGESTIONS},
            id="moderation.E006",
        ))
    for problem in validate_overrides(moderation_settings.LABELS):
        errors.append(Error(_("MODERATION['LABELS'] %(problem)s") % {"problem": problem},
                            id="moderation.E007"))

    problem = validate_frame_options(moderation_settings.VIDEO_INTERVAL,
                                     moderation_settings.VIDEO_MAX_FRAMES)
    if problem:
        errors.append(Error(_("MODERATION video defaults: %(problem)s") % {"problem": problem},
                            id="moderation.E010"))
    errors.extend(_check_evidence_location())
    errors.extend(_check_task_timeout())
    errors.extend(_check_allowed_networks())
    errors.extend(_check_max_duration())
    errors.extend(_check_image_limits())
    errors.extend(_check_file_delivery())
    errors.extend(_check_lease())
    errors.extend(_check_alerts())
    errors.extend(_check_reasons())
    return errors


def _check_task_queue():
    """E015: the queue adapter MODERATION["TASK_QUEUE"] names (moderation/taskqueue)."""
    try:
        taskqueue.load(moderation_settings.TASK_QUEUE)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint=_(
            "A dotted path to a module or object with %(functions)s, e.g. %(example)s; see "
            "docs/architecture.md, 'Queue adapters'.") % {
                "functions": ", ".join(taskqueue.ADAPTER_FUNCTIONS),
                "example": repr(DEFAULTS["TASK_QUEUE"])}, id="moderation.E015")]
    return []


def _check_alerts():
    """E016: review-queue alerts and the uploader's e-mail (moderation/alerts.py)."""
    return [Error(_("MODERATION: %(problem)s") % {"problem": problem},
                  hint=_("See docs/settings.md, 'ALERTS'."),
                  id="moderation.E016") for problem in alert_settings_problems()]


def _check_reasons():
    """E023: the decisions' reason codes and the undo window (moderation/reasons.py)."""
    return [Error(_("MODERATION: %(problem)s") % {"problem": problem},
                  hint=_("See docs/settings.md, 'REASONS'."),
                  id="moderation.E023") for problem in reason_settings_problems()]


def _check_lease():
    """E019: the job lease (renewed every third of it) and the sweeper's cadence
    (pipeline/worker.py, schedule.py)."""
    errors = []
    lease = moderation_settings.LEASE_SECONDS
    if isinstance(lease, bool) or not isinstance(lease, int | float) or lease < 3:
        errors.append(Error(
            _("MODERATION['LEASE_SECONDS'] = %(value)s is not a number of seconds >= 3.")
            % {"value": repr(lease)},
            hint=_("30 hands a dead worker's job on within about a minute."),
            id="moderation.E019"))
    minutes = moderation_settings.SWEEPER_MINUTES
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        errors.append(Error(
            _("MODERATION['SWEEPER_MINUTES'] = %(value)s is not a whole number >= 1.")
            % {"value": repr(minutes)},
            id="moderation.E019"))
    return errors


def _check_file_delivery():
    """E022: how files reach the browser after the permission check (serving.py)."""
    errors = []
    mode = moderation_settings.FILE_DELIVERY
    if mode not in DELIVERY_MODES:
        errors.append(Error(_("MODERATION['FILE_DELIVERY'] = %(value)s is not one of "
                              "%(modes)s.") % {"value": repr(mode),
                                               "modes": ", ".join(DELIVERY_MODES)},
                            id="moderation.E022"))
    expires = moderation_settings.FILE_DELIVERY_EXPIRES
    if isinstance(expires, bool) or not isinstance(expires, int) or not 1 <= expires <= 3600:
        errors.append(Error(
            _("MODERATION['FILE_DELIVERY_EXPIRES'] = %(value)s is not 1..3600 seconds.")
            % {"value": repr(expires)},
            hint=_("A presigned URL is a bearer token while it lives: keep it short (60)."),
            id="moderation.E022"))
    locations = moderation_settings.FILE_DELIVERY_LOCATIONS
    if not isinstance(locations, dict) or not all(
            os.path.isabs(str(directory)) and isinstance(prefix, str)
            and prefix.startswith("/") for directory, prefix in locations.items()):
        errors.append(Error(
            _("MODERATION['FILE_DELIVERY_LOCATIONS'] must map absolute directories to "
              "internal URL prefixes starting with '/'."),
            hint=_('For example {"/srv/app/moderation_evidence": "/_protected/evidence/"}.'),
            id="moderation.E022"))
    return errors


def _check_image_limits():
    """E018: the working size of images and the pixel budget of animations (decode.py,
    animation.py)."""
    errors = []
    limits = {"IMAGE_WORKING_SIZE": (moderation_settings.IMAGE_WORKING_SIZE, 256),
              "MAX_ANIMATION_PIXELS": (moderation_settings.MAX_ANIMATION_PIXELS, 1)}
    for name, (value, low) in limits.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            errors.append(Error(_("MODERATION['%(name)s'] = %(value)s is not a whole number "
                                  ">= %(low)s.") % {"name": name, "value": repr(value),
                                                    "low": low}, id="moderation.E018"))
    return errors


def _check_max_duration():
    """E014: the longest media file analysed (providers/local/duration.py)."""
    value = moderation_settings.MAX_DURATION
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return [Error(
            _("MODERATION['MAX_DURATION'] = %(value)s is not a positive number of seconds.")
            % {"value": repr(value)},
            hint=_("For example 4 * 3600; longer video or audio files fail with "
                   "'too_long'."),
            id="moderation.E014",
        )]
    return []


def _registered_live_fields() -> list[str]:
    """``app.Model.field`` of every registered field that may hold a live stream: one of
    kind ``live``, a StreamURLField, or a URL field whose kind is guessed per value."""
    found = []
    for reg in registry:
        for name in reg.fields:
            field = reg.model._meta.get_field(name)
            kind = reg.kinds.get(name)
            if kind == "live" or (kind is None and not isinstance(field, models.FileField)):
                found.append(f"{reg.model._meta.label}.{name}")
    return found


def _check_task_timeout():
    """django-q2 kills a task after Q_CLUSTER["timeout"]; a live stream is followed for up
    to LIVE_MAX_DURATION inside one task. Only sites with a field that may hold a stream
    are told."""
    cluster = getattr(settings, "Q_CLUSTER", None)
    if not isinstance(cluster, dict) or cluster.get("timeout") is None:
        return []
    live_fields = _registered_live_fields()
    if not live_fields:
        return []
    needed = moderation_settings.LIVE_MAX_DURATION + 60
    if cluster["timeout"] < needed:
        return [Warning(
            _("Q_CLUSTER['timeout'] = %(timeout)s s: live streams are followed for up to "
              "LIVE_MAX_DURATION = %(duration)s s in one task and would be killed (live "
              "fields: %(fields)s).") % {
                  "timeout": cluster["timeout"],
                  "duration": moderation_settings.LIVE_MAX_DURATION,
                  "fields": ", ".join(live_fields)},
            hint=_("Set Q_CLUSTER['timeout'] >= %(needed)s (and 'retry' above it), or lower "
                   "MODERATION['LIVE_MAX_DURATION'].") % {"needed": needed},
            id="moderation.W002",
        )]
    return []


def _check_allowed_networks():
    """E013: the networks the network guard admits although private (moderation/remote.py)."""
    networks = moderation_settings.ALLOWED_NETWORKS
    if isinstance(networks, str) or not isinstance(networks, list | tuple):
        return [Error(_("MODERATION['ALLOWED_NETWORKS'] must be a list of CIDR strings."),
                      id="moderation.E013")]
    errors = []
    for entry in networks:
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            errors.append(Error(
                _("MODERATION['ALLOWED_NETWORKS'] entry %(entry)s is not an IP network.")
                % {"entry": repr(entry)},
                hint=_("Write networks as CIDRs, e.g. '10.20.0.0/16' or '192.0.2.7/32'."),
                id="moderation.E013",
            ))
    return errors


def _check_evidence_location():
    alias = moderation_settings.EVIDENCE_STORAGE
    if alias and alias in getattr(settings, "STORAGES", {}):
        return []
    media_root = getattr(settings, "MEDIA_ROOT", "")
    if not media_root:
        return []
    evidence = os.path.abspath(moderation_settings.evidence_root)
    media = os.path.abspath(str(media_root))
    if evidence == media or evidence.startswith(media + os.sep):
        return [Warning(
            _("Evidence is stored in %(path)s, inside MEDIA_ROOT: it may be served "
              "publicly.") % {"path": evidence},
            hint=_("Set MODERATION['EVIDENCE_ROOT'] outside MEDIA_ROOT."),
            id="moderation.W001",
        )]
    return []


@register(Tags.compatibility)
def check_fetchable_fields(app_configs=None, **kwargs):
    """E012: a remote provider (``needs_url``) fetches media by URL; a registered field whose
    storage gives no absolute URL, while PUBLIC_BASE_URL is unset (or the storage is not the
    default one, the only one the signed view serves), can never be moderated."""

    if not isinstance(moderation_settings.user_settings, dict):
        return []  # E008
    errors = []
    for reg in registry:
        try:
            provider = get_provider(reg.provider_alias())
        except Exception:  # reported by E001/E002
            continue
        if not provider.needs_url:
            continue
        for name in reg.fields:
            field = reg.model._meta.get_field(name)
            storage = getattr(field, "storage", None)
            if storage is None or public_url_for(storage, "moderation-check-probe.jpg"):
                continue
            errors.append(Error(
                _("%(field)s is moderated by %(alias)s, which downloads media by URL, but "
                  "its storage gives no absolute URL and the app cannot sign one.")
                % {"field": f"{reg.model._meta.label}.{name}", "alias": repr(provider.alias)},
                hint=_("Set MODERATION['PUBLIC_BASE_URL'] to this site's public https URL "
                       "(files of the default storage are then served through signed, "
                       "expiring URLs), or use a storage with absolute URLs (S3/OSS)."),
                id="moderation.E012",
            ))
    return errors


@register(Tags.database)
def check_provider_auth(app_configs=None, databases=None, **kwargs):
    """W003: recent authentication failures (moderation/health.py), one warning each."""
    if not databases:
        return []
    try:
        failures = auth_failures()
    except DatabaseError:  # not migrated yet: nothing to report
        return []
    return [
        Warning(
            _("provider %(alias)s refused our credentials: %(message)s")
            % {"alias": repr(failure.provider), "message": failure.message},
            hint=_("%(jobs)s job(s) failed with %(code)s since %(when)s UTC. Fix the "
                   "provider's OPTIONS (key, secret, region/endpoint, RAM permission, server "
                   "clock), then retry the failed jobs (admin action or moderation_retry).")
            % {"jobs": failure.jobs, "code": repr(failure.code),
               "when": f"{failure.last_at:%Y-%m-%d %H:%M}"},
            id="moderation.W003",
        )
        for failure in failures
    ]
