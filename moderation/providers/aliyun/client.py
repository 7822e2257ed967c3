"""What every Alibaba Cloud provider shares: options, endpoint, credentials, one keep-alive
session, the media URL check, and sending a signed request and reading its answer.

Each product (green.py for 1.0, guardrails.py for 2.0, later IMM) only builds and signs its
own requests and parses its own answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from django.core.checks import CheckMessage, Error
from django.utils.translation import gettext as _

from ..base import Media, Provider, ProviderContext
from ..errors import AuthError, NotSupported
from ..result import Frame, Label, Result
from .callbacks import AliyunCallbacks
from .credentials import Credentials, StaticProvider, check_spec, provider_for
from .errors import ErrorRule, error_from_response, transport_error

DEFAULT_REGION = "ap-southeast-1"
#: Documented account limits (aliyun-api-reference.md §2.1, §3.2, §3.3); OPTIONS override
#: them, 0 turns one off.
DEFAULT_LIMITS = {"RATE_LIMIT": 100, "FEEDBACK_RATE_LIMIT": 20, "VIDEO_TASK_LIMIT": 50}
#: Requests are paced at this share of a rate limit: the gateway counts *arrivals* per
#: second, and network jitter squeezes evenly paced calls, so pacing at exactly the limit
#: meets an occasional throttle (measured: bench/aliyun_client.py).
RATE_HEADROOM = 0.98


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """(scheme, ``host[:port]``) of an endpoint given with or without a scheme (https default).

    The ``host[:port]`` is signed as sent (§5.1 step 8), so it is kept exactly.
    """
    endpoint = endpoint.strip().rstrip("/")
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise AuthError(f"ENDPOINT {endpoint!r} is not a http(s) host", code="invalid_endpoint")
    return parts.scheme, parts.netloc


def image_result(labels: list[Label], risk: str, body: Mapping[str, Any]) -> Result:
    """A finished image answer: one frame at offset 0, the service's JSON kept verbatim."""
    return Result(
        status="done",
        risk_level=risk,
        labels=list(labels),
        frames=[Frame(offset=0.0, risk_level=risk, labels=list(labels))],
        raw=dict(body),
    )


class AliyunProvider(AliyunCallbacks, Provider):
    """Base of the Alibaba providers. Subclasses set ``default_timeout`` and implement
    :meth:`default_endpoint` (each product resolves regions its own way, §1); the callback
    hooks (form, UID, crypt type) are shared, used by those declaring ``callback``."""

    required_options = ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET")
    #: what ``CREDENTIALS`` (the credential chain, credentials.py) stands in for
    key_options = ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET")
    needs_url = True
    default_timeout: tuple[float, float] = (5.0, 20.0)
    #: the product whose limits apply (an account has separate quotas per product)
    product: str = "aliyun"

    def __init__(self, alias: str, options: dict[str, Any] | None = None,
                 context: ProviderContext | None = None):
        super().__init__(alias, options, context)
        self._session: requests.Session | None = None

    @staticmethod
    def default_endpoint(region: str) -> str:
        raise NotImplementedError

    def _opt(self, name: str, default: Any = "") -> Any:
        value = self.options.get(name)
        return default if value in (None, "") else value

    @property
    def region(self) -> str:
        return str(self._opt("REGION", DEFAULT_REGION))

    @property
    def endpoint(self) -> tuple[str, str]:
        return split_endpoint(str(self._opt("ENDPOINT", self.default_endpoint(self.region))))

    @property
    def timeout(self) -> tuple[float, float]:
        value = self._opt("TIMEOUT", self.default_timeout)
        if isinstance(value, int | float):
            return (float(value), float(value))
        connect, read = value
        return (float(connect), float(read))

    @property
    def account(self) -> str:
        """``product:AccessKeyId``: every alias (and worker) using the key shares its limits.
        Role credentials from the chain use the role instead, as their temporary
        AccessKeyId changes with every refresh."""
        if self._opt("ACCESS_KEY_ID") or not self._opt("CREDENTIALS", None):
            return f"{self.product}:{self._opt('ACCESS_KEY_ID') or self.alias}"
        return f"{self.product}:{self.resolve_credentials().identity}"

    def limit(self, name: str) -> float:
        """An account limit from OPTIONS or :data:`DEFAULT_LIMITS` (0: none)."""
        value = self.options.get(name)
        return float(DEFAULT_LIMITS[name] if value is None else value or 0)

    def take_turn(self, rate: str = "request") -> None:
        """Wait for this call's turn under the account's ``request`` or ``feedback`` rate
        (shared by every worker: the context's limiter, by default moderation/ratelimit.py);
        every request goes through here."""
        budget = "FEEDBACK_RATE_LIMIT" if rate == "feedback" else "RATE_LIMIT"
        self.context.acquire(f"{self.account}:{rate}", self.limit(budget) * RATE_HEADROOM)

    @property
    def max_unfinished_tasks(self) -> int | None:
        return int(self.limit("VIDEO_TASK_LIMIT")) or None

    @property
    def session(self) -> requests.Session:
        """One keep-alive session per provider instance (providers are cached per process)."""
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def resolve_credentials(self) -> Credentials:
        """The credentials to sign the next request with: ``ACCESS_KEY_ID``/``SECRET``
        (+ ``SECURITY_TOKEN``) when set, else what ``CREDENTIALS`` names (``"default"``: the
        Alibaba credential chain; temporary ones are cached and refreshed before expiry)."""
        key_id = str(self._opt("ACCESS_KEY_ID"))
        secret = str(self._opt("ACCESS_KEY_SECRET"))
        spec = self._opt("CREDENTIALS", None)
        if key_id or spec is None:
            if not key_id or not secret:
                raise AuthError(f"provider {self.alias!r} has no ACCESS_KEY_ID/SECRET",
                                code="no_credentials")
            return StaticProvider(key_id, secret, str(self._opt("SECURITY_TOKEN")) or None
                                  ).get_credentials()
        return provider_for(spec).get_credentials()

    def credentials(self) -> tuple[str, str, str | None]:
        """(access key id, secret, STS security token or None)."""
        found = self.resolve_credentials()
        return found.access_key_id, found.access_key_secret, found.security_token

    @classmethod
    def missing_options(cls, options: dict[str, Any]) -> list[str]:
        """moderation.E003: the ``required_options`` not set, where a ``CREDENTIALS`` chain
        stands in for the AccessKey pair."""
        chain = options.get("CREDENTIALS") not in (None, "")
        return [key for key in cls.required_options
                if not options.get(key) and not (chain and key in cls.key_options)]

    @classmethod
    def check(cls, alias: str, options: dict[str, Any],
              context: ProviderContext | None = None) -> list[CheckMessage]:
        """E003 also for a ``CREDENTIALS`` value that names no credential source."""
        errors = list(super().check(alias, options, context))
        problem = check_spec(options.get("CREDENTIALS"))
        if problem and not options.get("ACCESS_KEY_ID"):
            errors.append(Error(_("Provider %(alias)s: %(problem)s.")
                                % {"alias": repr(alias), "problem": problem},
                                hint=_("Use \"default\" (the Alibaba credential chain), a "
                                       "source name, or ACCESS_KEY_ID/ACCESS_KEY_SECRET."),
                                id="moderation.E003"))
        return errors

    @staticmethod
    def public_url(media: Media) -> str:
        """The http(s) URL Alibaba downloads the media from (the pipeline provides it)."""
        url = media.url
        if not url or urlsplit(url).scheme not in ("http", "https"):
            raise NotSupported(
                f"{media.name!r} has no http(s) URL Alibaba Cloud can download; set "
                "MODERATION['PUBLIC_BASE_URL'] or use a storage with absolute URLs",
                code="no_public_url",
            )
        return url

    def send(self, url: str, body: bytes, headers: Mapping[str, str],
             rate: str = "request") -> tuple[requests.Response, Any]:
        """Take the call's turn under the account's rate, POST, and read the answer:
        (response, its JSON or None). No answer raises ``ProviderError``
        (``timeout``/``connection``); reading the answer is the caller's."""
        self.take_turn(rate)
        try:
            response = self.session.post(
                url, data=body, headers=dict(headers), timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise transport_error(exc) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return response, payload

    def post(self, url: str, body: bytes, headers: Mapping[str, str], *,
             accept: tuple[int, ...] = (),
             overrides: Mapping[int | str, ErrorRule] | None = None,
             rate: str = "request") -> dict[str, Any]:
        """Send one signed request; the JSON answer on success (code 200, or one of
        ``accept`` such as 280 "processing"). ``rate`` names the account budget the call
        counts against (``request``, or ``feedback`` for feedback operations).

        Raises the error ``errors.ERRORS`` maps the answer to, or ``ProviderError``
        (``timeout``/``connection``) when there is no answer.
        """
        response, payload = self.send(url, body, headers, rate)
        if response.status_code == 200 and isinstance(payload, dict):
            code = payload.get("Code", payload.get("code"))
            if str(code) in {str(c) for c in accept}:
                return payload
        text = response.text if payload is None else ""
        error = error_from_response(response.status_code, payload, response.headers, text,
                                    overrides=overrides)
        if error is not None:
            raise error
        return payload
