"""Operator alerts on the review queue, and the uploader's e-mail after a review.

**Queue alerts.** :func:`check` (run by the sweeper, ``tasks.sweep``) reads the review
queue as the console shows it (``overview.queue_now``: its size and the age of its oldest
item) and compares it with ``MODERATION["ALERTS"]``: ``QUEUE_SIZE`` items or more, or an
oldest item ``OLDEST_MINUTES`` old or more, starts an *episode*. The alert is sent once,
when the episode starts: an e-mail to ``EMAILS`` and/or a JSON POST to ``WEBHOOK_URL``.
The episode ends at the first check that finds the figure back under the threshold; the
next crossing is a new episode and a new alert. The state is an ``AlertState`` row per
alert, switched by a conditional UPDATE, so that of several sweepers running at once
(every worker, the half-past schedule) exactly one sends it.

The webhook goes through the network guard (``guarded_http``: every address vetted at
connect time, no private address unless ``ALLOWED_NETWORKS`` admits it, no redirects
followed) with a timeout. A failed e-mail or POST is logged, never raised: the sweep goes
on, and the episode still counts as alerted (no storm of retries every 30 s).

**The console.** :func:`active_alerts` (one query) gives the episodes in progress; the
console's queue page and the overview show each as a warning message until the check
that ends it.

**The uploader.** When ``NOTIFY_UPLOADER`` is on, a receiver of ``review_resolved`` (sent
after commit when a moderator approves or rejects, also a reversal) e-mails the address
``UPLOADER_EMAIL(instance, job)`` returns, rendered from ``moderation/email/
decision_subject.txt`` and ``decision_body.txt`` (override them in a site template
directory). Who uploaded what is the site's business, hence the function. The e-mail is
sent in the process that decided, after commit; a site that wants it queued, or another
channel (a notification inbox, push), connects its own receiver to ``review_resolved``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.mail import send_mail
from django.dispatch import receiver
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.module_loading import import_string
from django.utils.translation import ngettext

from .conf import DEFAULTS, moderation_settings
from .guarded_http import guarded_session
from .models import AlertState, Decision, Job
from .overview import queue_now
from .providers.errors import MediaError
from .remote import check_remote_url
from .signals import review_resolved

logger = logging.getLogger(__name__)

#: alert key -> (ALERTS key of its threshold, what it watches)
WATCHED = {
    "queue_size": ("QUEUE_SIZE", "items waiting for review"),
    "oldest_minutes": ("OLDEST_MINUTES", "minutes the oldest item has waited"),
}
WEBHOOK_EVENT = "moderation.queue_alert"


def alert_settings() -> dict[str, Any]:
    """``MODERATION["ALERTS"]`` over its defaults (a site names only the keys it sets)."""
    user = moderation_settings.ALERTS
    return {**DEFAULTS["ALERTS"], **(user if isinstance(user, dict) else {})}


@dataclass
class Alert:
    key: str
    value: float
    threshold: float
    since: datetime
    queue_size: int
    oldest_minutes: float | None

    @property
    def description(self) -> str:
        return WATCHED[self.key][1]

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body (``text`` reads well in Slack/Mattermost hooks)."""
        return {
            "event": WEBHOOK_EVENT, "alert": self.key, "value": self.value,
            "threshold": self.threshold, "since": self.since.isoformat(),
            "queue": {"size": self.queue_size, "oldest_minutes": self.oldest_minutes},
            "url": overview_url(),
            "text": f"Moderation review queue: {self.value:g} {self.description} "
                    f"(threshold {self.threshold:g}).",
        }


def overview_url() -> str:
    """The overview page's absolute URL when ``PUBLIC_BASE_URL`` is set, else ''."""
    base = str(moderation_settings.PUBLIC_BASE_URL or "").rstrip("/")
    try:
        return f"{base}{reverse('admin:moderation_job_overview')}" if base else ""
    except NoReverseMatch:  # the admin is not mounted
        return ""


def check(now: datetime | None = None) -> list[Alert]:
    """Compare the review queue with the thresholds; start or end episodes; send the
    alerts of the episodes that started now (returned). No query when nothing is watched."""
    conf = alert_settings()
    thresholds = _thresholds(conf)
    if not thresholds:
        return []
    now = now or timezone.now()
    queue = queue_now(now)
    oldest = round(queue.oldest_seconds / 60, 1) if queue.oldest_seconds is not None else None
    values = {"queue_size": float(queue.size), "oldest_minutes": oldest or 0.0}
    started = []
    for key, threshold in thresholds.items():
        if values[key] >= threshold:
            if _start_episode(key, values[key], now):
                started.append(Alert(key, values[key], threshold, now, queue.size, oldest))
        else:
            _end_episode(key, values[key], now)
    for alert in started:
        notify(alert, conf)
    return started


def _thresholds(conf: dict[str, Any]) -> dict[str, Any]:
    """alert key -> its threshold, for the alerts ``conf`` watches."""
    return {key: conf[setting] for key, (setting, _d) in WATCHED.items()
            if conf.get(setting) is not None}


@dataclass
class ActiveAlert:
    """An episode in progress, as the console's banner shows it: ``value`` is the figure
    when the episode started."""

    key: str
    value: float
    threshold: Any
    since: datetime | None

    @property
    def message(self) -> str:
        n = round(self.value)
        values = {"since": _when(self.since), "value": n, "threshold": _figure(self.threshold)}
        if self.key == "queue_size":
            return ngettext(
                "Queue alert since %(since)s: %(value)d item waiting (threshold %(threshold)s).",
                "Queue alert since %(since)s: %(value)d items waiting (threshold %(threshold)s).",
                n) % values
        return ngettext(
            "Queue alert since %(since)s: the oldest item has waited %(value)d minute "
            "(threshold %(threshold)s).",
            "Queue alert since %(since)s: the oldest item has waited %(value)d minutes "
            "(threshold %(threshold)s).", n) % values


def _when(moment: datetime | None) -> str:
    """A local time of day, with the date when it is not today."""
    if moment is None:
        return "-"
    local = timezone.localtime(moment)
    clock = date_format(local, "H:i")
    if local.date() == timezone.localdate():
        return clock
    return f"{date_format(local, 'SHORT_DATE_FORMAT')} {clock}"


def _figure(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def active_alerts() -> list[ActiveAlert]:
    """The episodes in progress of the alerts ``ALERTS`` watches, for the banner of the
    console's queue page and the overview. One query; none when nothing is watched."""
    thresholds = _thresholds(alert_settings())
    if not thresholds:
        return []
    rows = {row.key: row for row in AlertState.objects.filter(key__in=thresholds, active=True)}
    return [ActiveAlert(key, rows[key].value or 0.0, threshold, rows[key].since)
            for key, threshold in thresholds.items() if key in rows]


def _start_episode(key: str, value: float, now: datetime) -> bool:
    """True for the one caller that switched the alert on (a conditional UPDATE)."""
    _row, created = AlertState.objects.get_or_create(
        key=key, defaults={"active": True, "value": value, "since": now})
    if created:
        return True
    return bool(AlertState.objects.filter(key=key, active=False)
                .update(active=True, value=value, since=now, cleared_at=None))


def _end_episode(key: str, value: float, now: datetime) -> None:
    if AlertState.objects.filter(key=key, active=True).update(active=False, value=value,
                                                               cleared_at=now):
        logger.info("moderation alert %s cleared (%s)", key, value)


def notify(alert: Alert, conf: dict[str, Any] | None = None) -> None:
    """E-mail and/or POST ``alert``; failures are logged."""
    conf = conf or alert_settings()
    logger.warning("moderation alert %s: %s %s (threshold %s)", alert.key, alert.value,
                   alert.description, alert.threshold)
    if conf.get("EMAILS"):
        context = {"alert": alert, "overview_url": overview_url()}
        _mail("moderation/email/queue_alert_subject.txt",
              "moderation/email/queue_alert_body.txt", context, list(conf["EMAILS"]))
    if conf.get("WEBHOOK_URL"):
        post_webhook(conf["WEBHOOK_URL"], alert.payload(),
                     timeout=float(conf.get("WEBHOOK_TIMEOUT") or 5))


def post_webhook(url: str, payload: dict[str, Any], timeout: float) -> bool:
    """POST ``payload`` as JSON to ``url`` through the network guard; True on a 2xx.
    Redirects are not followed (a webhook that moved is a configuration error)."""
    try:
        check_remote_url(url, schemes=("http", "https"))
        with guarded_session() as session:
            answer = session.post(url, json=payload, timeout=(timeout, timeout),
                                  allow_redirects=False)
    except (MediaError, requests.RequestException, ValueError) as exc:
        logger.warning("moderation alert webhook to %s failed: %s", _host(url), exc)
        return False
    if not 200 <= answer.status_code < 300:
        logger.warning("moderation alert webhook to %s answered %s", _host(url),
                       answer.status_code)
        return False
    return True


def _host(url: str) -> str:
    """What a log line may say of a webhook URL (its path often holds a secret token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}"


def _mail(subject_template: str, body_template: str, context: dict[str, Any],
          to: list[str]) -> bool:
    subject = " ".join(render_to_string(subject_template, context).split())
    body = render_to_string(body_template, context)
    try:
        send_mail(subject, body, None, to)
    except Exception as exc:  # SMTP, DNS, a backend's own errors: logged, never raised
        logger.warning("moderation e-mail %r to %d recipient(s) failed: %s", subject,
                       len(to), exc)
        return False
    return True


# --- the uploader ---------------------------------------------------------------------------


def uploader_address_function() -> Callable[[Any, Job], str | None] | None:
    """The ``UPLOADER_EMAIL`` function (a dotted path, or a callable in settings)."""
    path = moderation_settings.UPLOADER_EMAIL
    if not path:
        return None
    return path if callable(path) else import_string(path)


def notify_uploader(job: Job, decision: str) -> bool:
    """E-mail the uploader of ``job``'s object that a moderator ``decision``-ed it
    (``approved``: shown, ``rejected``: blocked); True when an e-mail went out. Nothing for
    ad-hoc jobs, a deleted object or no address."""
    find = uploader_address_function()
    instance = job.content_object if job.content_type_id else None
    if find is None or instance is None:
        return False
    address = find(instance, job)
    if not address:
        return False
    context = {"job": job, "instance": instance, "decision": decision,
               "blocked": decision == Decision.REJECTED,
               "approved": decision == Decision.APPROVED}
    return _mail("moderation/email/decision_subject.txt",
                 "moderation/email/decision_body.txt", context, [address])


@receiver(review_resolved, dispatch_uid="moderation.alerts.notify_uploader")
def _on_review_resolved(sender, job: Job, decision: str, **kwargs: Any) -> None:
    # Only the two human verdicts: another value (a future "undone") is not a decision.
    if moderation_settings.NOTIFY_UPLOADER and decision in (Decision.APPROVED,
                                                           Decision.REJECTED):
        try:
            notify_uploader(job, decision)
        except Exception:  # runs after the decision's commit: a site's UPLOADER_EMAIL or
            # template error is logged, never a 500 for a decision already taken
            logger.exception("moderation e-mail to the uploader of job %s failed", job.pk)


# --- settings (system check E016) -----------------------------------------------------------


def settings_problems() -> list[str]:
    """What is wrong with ``ALERTS``, ``NOTIFY_UPLOADER`` and ``UPLOADER_EMAIL``."""
    problems = []
    user = moderation_settings.ALERTS
    if not isinstance(user, dict):
        return [f"ALERTS = {user!r} is not a dict."]
    unknown = sorted(set(user) - set(DEFAULTS["ALERTS"]))
    if unknown:
        problems.append(f"ALERTS has unknown keys {', '.join(map(repr, unknown))} (valid: "
                        f"{', '.join(DEFAULTS['ALERTS'])}).")
    conf = alert_settings()
    for setting in ("QUEUE_SIZE", "OLDEST_MINUTES", "WEBHOOK_TIMEOUT"):
        value = conf[setting]
        if value is None and setting != "WEBHOOK_TIMEOUT":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            problems.append(f"ALERTS[{setting!r}] = {value!r} is not a positive number"
                            + (" (or None: not watched)." if setting != "WEBHOOK_TIMEOUT"
                               else " of seconds."))
    emails = conf["EMAILS"]
    if not isinstance(emails, list | tuple) or not all(
            isinstance(e, str) and "@" in e for e in emails):
        problems.append(f"ALERTS['EMAILS'] = {emails!r} is not a list of e-mail addresses.")
    url = conf["WEBHOOK_URL"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if url and (parts is None or parts.scheme not in ("http", "https") or not parts.hostname):
        problems.append(f"ALERTS['WEBHOOK_URL'] = {url!r} is not an http(s) URL.")
    watched = any(conf[s] is not None for s, _d in WATCHED.values())
    if watched and not problems and not emails and not url:
        problems.append("ALERTS watches the queue but names no EMAILS nor WEBHOOK_URL.")
    if moderation_settings.NOTIFY_UPLOADER:
        try:
            find = uploader_address_function()
        except ImportError as exc:
            problems.append(f"UPLOADER_EMAIL cannot be imported ({exc}).")
        else:
            if find is None or not callable(find):
                problems.append("NOTIFY_UPLOADER is on but UPLOADER_EMAIL names no function "
                                "(instance, job) -> address.")
    return problems


__all__ = ["ActiveAlert", "Alert", "active_alerts", "check", "notify", "notify_uploader",
           "post_webhook", "settings_problems"]
