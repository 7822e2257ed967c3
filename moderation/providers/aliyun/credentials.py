"""Where an Alibaba provider's AccessKey comes from: static OPTIONS, or the credential chain
real deployments use (environment, OIDC role for ACK, CLI and SDK profile files, ECS RAM role),
with temporary STS credentials cached and refreshed before they expire.

Our own small implementation over ``requests`` rather than ``alibabacloud-credentials``: that
package reads the environment once at import, aims the metadata service at the fixed address
100.100.100.200 (no stand-in can answer in tests) and starts a scheduler thread per ECS
provider. It is still usable: ``CREDENTIALS: "sdk"`` wraps its default chain
(:class:`SdkProvider`, the ``aliyun-credentials`` extra).

A provider is anything with ``name`` and ``get_credentials() -> Credentials``. Errors:
:class:`CredentialsUnavailable` (this source is not set up here: a chain moves on),
:class:`CredentialsError` (an ``AuthError``: a configured source is broken, or none is found;
the job fails and an operator looks), :class:`CredentialsFetchError` (a ``ProviderError``:
the metadata service or STS did not answer; the job is retried).
"""

from __future__ import annotations

import configparser
import importlib
import inspect
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import requests
from django.utils.translation import gettext, gettext_noop

from ..errors import AuthError, ProviderError

logger = logging.getLogger(__name__)

#: Temporary credentials are renewed this many seconds before their ``Expiration``, so no
#: request is signed with a token that dies in flight (the SDK's "stale time" is 15 min; the
#: metadata service rotates its role credentials well before that).
REFRESH_MARGIN = 300.0
#: After a failed refresh (the cached credentials still valid), wait this long before the
#: next attempt, doubling per failure up to REFRESH_BACKOFF_MAX.
REFRESH_BACKOFF = 5.0
REFRESH_BACKOFF_MAX = 60.0
#: The ECS instance metadata service (link-local, answered by the hypervisor).
METADATA_URL = "http://100.100.100.200"
METADATA_TOKEN_PATH = "/latest/api/token"
METADATA_ROLE_PATH = "/latest/meta-data/ram/security-credentials/"
METADATA_TOKEN_TTL = 21600  # seconds asked for an IMDSv2 token (the SDK's value)
METADATA_TIMEOUT = (1.0, 1.0)  # the SDK's 1 s connect / 1 s read
STS_TIMEOUT = (5.0, 10.0)  # the SDK's 5 s connect / 10 s read
STS_VERSION = "2015-04-01"
OIDC_DURATION = 3600  # seconds; STS accepts 900 .. the role's maximum session duration
#: The most a metadata or STS answer may hold (theirs are under 4 KiB); more is refused unread.
MAX_ANSWER_BYTES = 64 * 1024

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
ENV_CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
ENV_PROFILE = "ALIBABA_CLOUD_PROFILE"
ENV_CLI_PROFILE_DISABLED = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED"
ENV_ECS_ROLE = "ALIBABA_CLOUD_ECS_METADATA"
ENV_ECS_DISABLED = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
ENV_IMDSV1_DISABLED = "ALIBABA_CLOUD_IMDSV1_DISABLED"
ENV_ROLE_ARN = "ALIBABA_CLOUD_ROLE_ARN"
ENV_OIDC_PROVIDER_ARN = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
ENV_OIDC_TOKEN_FILE = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
ENV_ROLE_SESSION_NAME = "ALIBABA_CLOUD_ROLE_SESSION_NAME"
ENV_STS_REGION = "ALIBABA_CLOUD_STS_REGION"
ENV_VPC_ENDPOINT = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"

#: ``OPTIONS["CREDENTIALS"]`` names: the whole chain, one of its links, or the SDK's chain.
KINDS = ("default", "environment", "oidc_role_arn", "cli_profile", "profile", "ecs_ram_role",
         "sdk")


class CredentialsError(AuthError):
    """A configured credential source is broken, or no source has credentials."""

    code = "no_credentials"


class CredentialsUnavailable(CredentialsError):
    """This source is not set up on this machine; a chain tries the next one."""


class CredentialsFetchError(ProviderError):
    """The metadata service or STS did not answer (or answered 5xx): worth a retry."""

    code = "credentials_unavailable"


@dataclass(frozen=True)
class Credentials:
    """One AccessKey pair, with the STS token and its expiry (epoch seconds) when temporary.

    ``identity`` keys the account's rate limits: the AccessKeyId for long-term keys, the role
    for role credentials, whose temporary AccessKeyId changes with every refresh.
    """

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    expiration: float | None = None
    provider: str = "static"
    identity: str = ""

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise CredentialsError(f"{self.provider} credentials without AccessKey id/secret")
        if not self.identity:
            object.__setattr__(self, "identity", self.access_key_id)

    def usable(self, now: float, margin: float = 0.0) -> bool:
        """Still good for ``margin`` seconds (long-term keys always are)."""
        return self.expiration is None or now < self.expiration - margin


class CredentialsProvider(Protocol):
    """What the Alibaba providers ask for credentials before signing each request."""

    name: str

    def get_credentials(self) -> Credentials: ...


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    """The environment as of now (not of import time): tests and rotations see changes."""
    return os.environ if environ is None else environ


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return str(environ.get(name, "")).strip().lower() == "true"


def parse_expiration(value: Any) -> float:
    """``2026-12-04T19:00:00Z`` (the metadata service and STS format) as epoch seconds; also
    with fractional seconds or an offset, and without a zone (UTC, as the SDK reads it)."""
    try:
        if not isinstance(value, str) or "T" not in value:
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise CredentialsFetchError(
            f"unreadable credential Expiration {str(value)[:40]!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _read_answer(response: requests.Response, what: str) -> bytes:
    """The body of a metadata or STS answer, at most :data:`MAX_ANSWER_BYTES`. Redirects are
    refused, not followed (they would carry the metadata token or the OIDC token elsewhere)."""
    try:
        if 300 <= response.status_code < 400:
            raise CredentialsFetchError(
                f"{what} answered a redirect (HTTP {response.status_code}); not followed")
        declared = response.headers.get("Content-Length", "")
        too_big = CredentialsFetchError(
            f"{what} answer is larger than {MAX_ANSWER_BYTES} bytes; refused")
        if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
            raise too_big
        data = bytearray()
        for chunk in response.iter_content(16 * 1024):
            data += chunk
            if len(data) > MAX_ANSWER_BYTES:
                raise too_big
        return bytes(data)
    except requests.RequestException as exc:
        raise CredentialsFetchError(f"{what} answer was cut off: {exc}") from exc
    finally:
        response.close()


def _json_object(data: bytes) -> dict[str, Any] | None:
    """``data`` as a JSON object, or None (not JSON, or JSON but not an object)."""
    try:
        found = json.loads(data.decode("utf-8"))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


# --- long-term sources ------------------------------------------------------------------------


class StaticProvider:
    """Fixed credentials (OPTIONS ``ACCESS_KEY_ID``/``SECRET``/``SECURITY_TOKEN``)."""

    name = "static"

    def __init__(self, access_key_id: str, access_key_secret: str,
                 security_token: str | None = None) -> None:
        self._credentials = Credentials(access_key_id, access_key_secret, security_token or None,
                                        provider=self.name)

    def get_credentials(self) -> Credentials:
        return self._credentials


class EnvironmentProvider:
    """``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` (+ ``ALIBABA_CLOUD_SECURITY_TOKEN``)."""

    name = "environment"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def get_credentials(self) -> Credentials:
        environ = _env(self._environ)
        key_id = environ.get(ENV_ACCESS_KEY_ID, "")
        secret = environ.get(ENV_ACCESS_KEY_SECRET, "")
        if not key_id:
            raise CredentialsUnavailable(f"{ENV_ACCESS_KEY_ID} is not set")
        if not secret:
            raise CredentialsError(f"{ENV_ACCESS_KEY_ID} is set but {ENV_ACCESS_KEY_SECRET} "
                                   "is not")
        return Credentials(key_id, secret, environ.get(ENV_SECURITY_TOKEN) or None,
                           provider=self.name)


# --- temporary credentials, cached ------------------------------------------------------------


class RefreshingProvider:
    """Caches what :meth:`fetch` returns and fetches again :data:`REFRESH_MARGIN` seconds
    before it expires. Thread-safe, and nobody waits while the cache is still valid: one
    thread refreshes, the others go on with the cached credentials (they wait for the
    fetch only when there is nothing valid to use). A refresh that fails (no answer, or a
    refusal) while the cached credentials are valid is logged and tried again after a
    backoff (:data:`REFRESH_BACKOFF`, doubling to :data:`REFRESH_BACKOFF_MAX`), so a
    metadata service or STS outage is not asked once per signed request."""

    name = "refreshing"

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 margin: float = REFRESH_MARGIN) -> None:
        self._clock = clock
        self._margin = margin
        self._cached: Credentials | None = None
        self._lock = threading.Lock()
        self._failures = 0  # failed refreshes in a row while the cache was still valid
        self._retry_at = 0.0  # no refresh attempt before this (clock time)

    def fetch(self) -> Credentials:
        raise NotImplementedError

    def _fresh_enough(self, cached: Credentials | None, now: float) -> bool:
        if cached is None or not cached.usable(now):
            return False
        return cached.usable(now, self._margin) or now < self._retry_at

    def get_credentials(self) -> Credentials:
        cached, now = self._cached, self._clock()
        if self._fresh_enough(cached, now):
            assert cached is not None
            return cached
        valid = cached is not None and cached.usable(now)
        # Still valid: refresh only if no other thread is at it. Expired: wait for it.
        if not self._lock.acquire(blocking=not valid):
            assert cached is not None
            return cached
        try:
            cached, now = self._cached, self._clock()  # another thread may have refreshed
            if self._fresh_enough(cached, now):
                assert cached is not None
                return cached
            try:
                fresh = self.fetch()
            except (CredentialsFetchError, CredentialsError):
                if cached is not None and cached.usable(now):
                    self._failures += 1
                    delay = min(REFRESH_BACKOFF * 2 ** (self._failures - 1),
                                REFRESH_BACKOFF_MAX)
                    self._retry_at = now + delay
                    logger.warning("refreshing %s credentials failed; using the cached ones "
                                   "until %s, next try in %.0f s", self.name,
                                   cached.expiration, delay, exc_info=True)
                    return cached
                raise
            self._cached, self._failures, self._retry_at = fresh, 0, 0.0
            return fresh
        finally:
            self._lock.release()


class EcsRamRoleProvider(RefreshingProvider):
    """The ECS instance's RAM role from the metadata service: an IMDSv2 token
    (``PUT /latest/api/token``), then ``GET /latest/meta-data/ram/security-credentials/<role>``
    with it; the role name is read there too when not given. Without a token (an old
    instance) the plain IMDSv1 GETs follow unless ``ALIBABA_CLOUD_IMDSV1_DISABLED=true``.

    ``metadata_url`` aims it elsewhere (tests: a loopback stand-in). Metadata requests never
    use a proxy: the service is link-local.
    """

    name = "ecs_ram_role"

    def __init__(self, role_name: str | None = None, *, metadata_url: str | None = None,
                 disable_imds_v1: bool | None = None,
                 timeout: tuple[float, float] = METADATA_TIMEOUT,
                 environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        environ = _env(environ)
        self.role_name = role_name or environ.get(ENV_ECS_ROLE) or None
        self._explicit = bool(self.role_name)
        self.metadata_url = (metadata_url or METADATA_URL).rstrip("/")
        self.disable_imds_v1 = (_flag(environ, ENV_IMDSV1_DISABLED) if disable_imds_v1 is None
                                else disable_imds_v1)
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False

    def _absent(self, exc: Exception) -> CredentialsError | CredentialsFetchError:
        """No metadata service: "not on ECS" unless a role was named (then a fault)."""
        if self._explicit:
            return CredentialsFetchError(
                f"ECS metadata service at {self.metadata_url} did not answer: {exc}")
        return CredentialsUnavailable(f"no ECS metadata service at {self.metadata_url}")

    def _call(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        """(status, body): bounded in time and size, redirects refused."""
        try:
            response = self._session.request(method, self.metadata_url + path, headers=headers,
                                             timeout=self.timeout, stream=True,
                                             allow_redirects=False)
        except requests.RequestException as exc:
            raise self._absent(exc) from exc
        return response.status_code, _read_answer(response, "ECS metadata")

    def _metadata_token(self) -> str | None:
        status, body = self._call(
            "PUT", METADATA_TOKEN_PATH,
            {"X-aliyun-ecs-metadata-token-ttl-seconds": str(METADATA_TOKEN_TTL)})
        token = body.decode("utf-8", "replace").strip()
        if status == 200 and token:
            return token
        if self.disable_imds_v1:
            raise CredentialsFetchError(
                f"ECS metadata token refused (HTTP {status}) and IMDSv1 is disabled")
        return None

    def _get(self, path: str, token: str | None) -> tuple[int, bytes]:
        return self._call("GET", path, {"X-aliyun-ecs-metadata-token": token} if token else {})

    def fetch(self) -> Credentials:
        token = self._metadata_token()
        role = self.role_name
        if not role:
            status, data = self._get(METADATA_ROLE_PATH, token)
            text = data.decode("utf-8", "replace").strip()
            role = text.splitlines()[0].strip() if status == 200 and text else ""
            if not role:
                raise CredentialsUnavailable(f"the ECS instance has no RAM role (HTTP {status})")
            self.role_name = role
        status, data = self._get(METADATA_ROLE_PATH + role, token)
        if status == 404:
            raise CredentialsError(f"the ECS instance has no RAM role {role!r}")
        if status != 200:
            raise CredentialsFetchError(f"ECS metadata answered HTTP {status} for role {role!r}")
        body = _json_object(data)
        if body is None:
            raise CredentialsFetchError(
                "ECS metadata sent role credentials that are not a JSON object")
        if body.get("Code") != "Success":
            raise CredentialsFetchError(f"ECS metadata answered Code {body.get('Code')!r}")
        return Credentials(
            body.get("AccessKeyId", ""), body.get("AccessKeySecret", ""),
            body.get("SecurityToken") or None, parse_expiration(body.get("Expiration")),
            provider=self.name, identity=f"ecs_ram_role:{role}",
        )


def default_sts_endpoint(environ: Mapping[str, str], region: str | None = None,
                         vpc: bool | None = None) -> str:
    """STS's host the SDK way: ``sts[-vpc].<region>.aliyuncs.com`` with a region
    (``ALIBABA_CLOUD_STS_REGION``), else the global ``sts.aliyuncs.com``."""
    region = region or environ.get(ENV_STS_REGION) or ""
    vpc = _flag(environ, ENV_VPC_ENDPOINT) if vpc is None else vpc
    prefix = "sts-vpc" if vpc else "sts"
    return f"{prefix}.{region}.aliyuncs.com" if region else "sts.aliyuncs.com"


class OidcRoleProvider(RefreshingProvider):
    """A RAM role assumed with the pod's OIDC token (ACK RRSA): STS ``AssumeRoleWithOIDC``,
    an anonymous call (the OIDC token is the proof). The token file is read at every refresh,
    since the kubelet rotates it. Parameters go in a POST form body, not the query string
    the SDK uses, so the token stays out of access logs.

    ``sts_endpoint``: a host or URL (https default); tests aim it at a loopback stand-in.
    """

    name = "oidc_role_arn"

    def __init__(self, role_arn: str | None = None, oidc_provider_arn: str | None = None,
                 oidc_token_file: str | None = None, *, role_session_name: str | None = None,
                 duration_seconds: int = OIDC_DURATION, policy: str | None = None,
                 sts_endpoint: str | None = None, sts_region: str | None = None,
                 environ: Mapping[str, str] | None = None,
                 timeout: tuple[float, float] = STS_TIMEOUT,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        environ = _env(environ)
        self.role_arn = role_arn or environ.get(ENV_ROLE_ARN, "")
        self.oidc_provider_arn = oidc_provider_arn or environ.get(ENV_OIDC_PROVIDER_ARN, "")
        self.oidc_token_file = oidc_token_file or environ.get(ENV_OIDC_TOKEN_FILE, "")
        if not (self.role_arn and self.oidc_provider_arn and self.oidc_token_file):
            raise CredentialsUnavailable(
                f"OIDC role needs {ENV_ROLE_ARN}, {ENV_OIDC_PROVIDER_ARN} and "
                f"{ENV_OIDC_TOKEN_FILE}")
        if duration_seconds < 900:
            raise CredentialsError("OIDC session duration must be at least 900 s")
        self.role_session_name = (role_session_name or environ.get(ENV_ROLE_SESSION_NAME)
                                  or f"moderation-{int(time.time())}")
        self.duration_seconds = duration_seconds
        self.policy = policy
        endpoint = sts_endpoint or default_sts_endpoint(environ, sts_region)
        self.url = (endpoint if "://" in endpoint else f"https://{endpoint}").rstrip("/") + "/"
        self.timeout = timeout
        self._session = requests.Session()

    def fetch(self) -> Credentials:
        try:
            token = Path(self.oidc_token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as exc:
            raise CredentialsError(
                f"cannot read the OIDC token file {self.oidc_token_file}: {exc}") from exc
        if not token:
            raise CredentialsError(f"the OIDC token file {self.oidc_token_file} is empty")
        form = {
            "Action": "AssumeRoleWithOIDC", "Format": "JSON", "Version": STS_VERSION,
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "RoleArn": self.role_arn, "OIDCProviderArn": self.oidc_provider_arn,
            "OIDCToken": token, "RoleSessionName": self.role_session_name,
            "DurationSeconds": str(self.duration_seconds),
        }
        if self.policy:
            form["Policy"] = self.policy
        try:
            response = self._session.post(self.url, data=form, timeout=self.timeout,
                                          stream=True, allow_redirects=False)
        except requests.RequestException as exc:
            raise CredentialsFetchError(f"STS at {self.url} did not answer: {exc}") from exc
        if 300 <= response.status_code < 400:  # a wrong endpoint: the form holds the token
            response.close()
            raise CredentialsError(
                f"STS at {self.url} answered a redirect (HTTP {response.status_code}); not "
                "followed")
        status = response.status_code
        body = _json_object(_read_answer(response, "STS AssumeRoleWithOIDC")) or {}
        if status != 200:
            message = redact(f"STS AssumeRoleWithOIDC answered HTTP {status} "
                             f"{str(body.get('Code', ''))[:100]}: "
                             f"{str(body.get('Message', ''))[:300]}".rstrip(": "))
            if status >= 500 or status == 429:
                raise CredentialsFetchError(message)
            raise CredentialsError(message)
        found = body.get("Credentials")
        if not isinstance(found, dict):
            raise CredentialsFetchError("STS AssumeRoleWithOIDC answered without Credentials")
        return Credentials(
            found.get("AccessKeyId", ""), found.get("AccessKeySecret", ""),
            found.get("SecurityToken") or None, parse_expiration(found.get("Expiration")),
            provider=self.name, identity=f"oidc_role_arn:{self.role_arn}",
        )


# --- profile files ----------------------------------------------------------------------------


def _home(home: str | Path | None) -> Path:
    return Path(home) if home is not None else Path.home()


def _read_profile_file(path: Path, what: str) -> str:
    """A profile file's text; absent: this source is not set up; unreadable: an error naming
    the file."""
    if not path.is_file():
        raise CredentialsUnavailable(f"no {what} {path}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CredentialsError(f"cannot read {what} {path}: {reason}") from exc


def _ini_value(section: Mapping[str, str], key: str, default: str = "") -> str:
    """A value as the SDK reads it: anything after ``#`` is a comment."""
    return section.get(key, default).split("#")[0].strip()


class ProfileProvider:
    """The SDKs' INI file: ``ALIBABA_CLOUD_CREDENTIALS_FILE`` or
    ``~/.alibabacloud/credentials.ini``, section ``ALIBABA_CLOUD_PROFILE`` (``default``), of
    ``type`` ``access_key``, ``sts``, ``ecs_ram_role`` (``role_name``) or ``oidc_role_arn``
    (``role_arn``, ``oidc_provider_arn``, ``oidc_token_file_path``)."""

    name = "profile"

    def __init__(self, path: str | Path | None = None, profile: str | None = None, *,
                 environ: Mapping[str, str] | None = None, home: str | Path | None = None,
                 metadata_url: str | None = None, sts_endpoint: str | None = None) -> None:
        environ = _env(environ)
        self.path = Path(path or environ.get(ENV_CREDENTIALS_FILE)
                         or _home(home) / ".alibabacloud" / "credentials.ini")
        self.profile = profile or environ.get(ENV_PROFILE) or "default"
        self._links = {"metadata_url": metadata_url, "sts_endpoint": sts_endpoint}
        self._inner: CredentialsProvider | None = None
        self._lock = threading.Lock()

    def _load(self) -> CredentialsProvider:
        text = _read_profile_file(self.path, "credentials file")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(self.path))
        except configparser.Error as exc:
            # The message quotes the offending lines, which may hold a secret: lines only.
            lines = [getattr(exc, "lineno", None)] + [n for n, _ in getattr(exc, "errors", [])]
            where = ", ".join(f"line {n}" for n in lines if n)
            raise CredentialsError(f"unreadable credentials file {self.path}: "
                                   f"{type(exc).__name__} {where}".rstrip()) from None
        if not parser.has_section(self.profile):
            raise CredentialsError(f"{self.path} has no [{self.profile}] profile")
        section = parser[self.profile]
        kind = _ini_value(section, "type", "access_key")
        if kind == "access_key":
            return StaticProvider(_ini_value(section, "access_key_id"),
                                  _ini_value(section, "access_key_secret"))
        if kind == "sts":
            return StaticProvider(_ini_value(section, "access_key_id"),
                                  _ini_value(section, "access_key_secret"),
                                  _ini_value(section, "security_token"))
        if kind == "ecs_ram_role":
            return EcsRamRoleProvider(_ini_value(section, "role_name") or None,
                                      metadata_url=self._links["metadata_url"])
        if kind == "oidc_role_arn":
            return OidcRoleProvider(
                _ini_value(section, "role_arn"), _ini_value(section, "oidc_provider_arn"),
                _ini_value(section, "oidc_token_file_path"),
                role_session_name=_ini_value(section, "role_session_name") or None,
                policy=_ini_value(section, "policy") or None,
                sts_endpoint=self._links["sts_endpoint"])
        raise CredentialsError(f"{self.path} [{self.profile}]: type {kind!r} is not supported "
                               "here; use CREDENTIALS 'sdk' (alibabacloud-credentials)")

    def get_credentials(self) -> Credentials:
        with self._lock:
            if self._inner is None:
                self._inner = self._load()
        return self._inner.get_credentials()


class CliProfileProvider(ProfileProvider):
    """The ``aliyun`` CLI's ``~/.aliyun/config.json``: profile ``ALIBABA_CLOUD_PROFILE`` or
    ``current``, in mode ``AK``, ``StsToken``, ``EcsRamRole`` or ``OIDC``. Off with
    ``ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true``."""

    name = "cli_profile"

    def __init__(self, path: str | Path | None = None, profile: str | None = None, *,
                 environ: Mapping[str, str] | None = None, home: str | Path | None = None,
                 metadata_url: str | None = None, sts_endpoint: str | None = None) -> None:
        environ = _env(environ)
        self.disabled = _flag(environ, ENV_CLI_PROFILE_DISABLED)
        super().__init__(path or _home(home) / ".aliyun" / "config.json", profile,
                         environ=environ, home=home,
                         metadata_url=metadata_url, sts_endpoint=sts_endpoint)
        self.profile = profile or environ.get(ENV_PROFILE) or ""

    def _load(self) -> CredentialsProvider:
        if self.disabled:
            raise CredentialsUnavailable(f"{ENV_CLI_PROFILE_DISABLED} is true")
        text = _read_profile_file(self.path, "CLI config")
        try:
            config = json.loads(text)
        except ValueError as exc:  # the message has a position, not the text
            raise CredentialsError(f"unreadable CLI config {self.path}: {exc}") from None
        profiles = (config.get("profiles") or []) if isinstance(config, dict) else None
        if not isinstance(profiles, list) or not all(isinstance(p, dict) for p in profiles):
            raise CredentialsError(f"unreadable CLI config {self.path}: not an object with a "
                                   "list of profiles")
        wanted = self.profile or config.get("current") or "default"
        found = next((p for p in profiles if p.get("name") == wanted), None)
        if found is None:
            raise CredentialsError(f"{self.path} has no profile {wanted!r}")
        mode = found.get("mode", "AK")
        if mode == "AK":
            return StaticProvider(found.get("access_key_id", ""),
                                  found.get("access_key_secret", ""))
        if mode == "StsToken":
            return StaticProvider(found.get("access_key_id", ""),
                                  found.get("access_key_secret", ""), found.get("sts_token"))
        if mode == "EcsRamRole":
            return EcsRamRoleProvider(found.get("ram_role_name") or None,
                                      metadata_url=self._links["metadata_url"])
        if mode == "OIDC":
            return OidcRoleProvider(
                found.get("ram_role_arn"), found.get("oidc_provider_arn"),
                found.get("oidc_token_file"), role_session_name=found.get("role_session_name"),
                sts_endpoint=self._links["sts_endpoint"], sts_region=found.get("sts_region"))
        raise CredentialsError(f"{self.path} profile {wanted!r}: mode {mode!r} is not "
                               "supported here; use CREDENTIALS 'sdk' (alibabacloud-credentials)")


# --- the chain --------------------------------------------------------------------------------


class ChainProvider:
    """The first source that has credentials, in the SDK's order; the one that answered is
    asked directly next time. A source that is set up but broken stops the search (falling
    through to another identity would hide the fault)."""

    name = "default"

    def __init__(self, links: list[Callable[[], CredentialsProvider]]) -> None:
        self._links = links
        self._built: dict[int, CredentialsProvider] = {}
        self._last: CredentialsProvider | None = None
        self._lock = threading.Lock()

    def _link(self, index: int) -> CredentialsProvider:
        with self._lock:
            if index not in self._built:
                self._built[index] = self._links[index]()
            return self._built[index]

    def get_credentials(self) -> Credentials:
        last = self._last
        if last is not None:
            try:
                return last.get_credentials()
            except CredentialsUnavailable:
                self._last = None
        reasons = []
        for index in range(len(self._links)):
            try:
                link = self._link(index)
                credentials = link.get_credentials()
            except CredentialsUnavailable as exc:
                reasons.append(str(exc))
                continue
            self._last = link
            return credentials
        raise CredentialsError("no Alibaba Cloud credentials found: " + "; ".join(reasons))


def default_chain(*, environ: Mapping[str, str] | None = None, home: str | Path | None = None,
                  metadata_url: str | None = None, sts_endpoint: str | None = None,
                  role_name: str | None = None) -> ChainProvider:
    """Environment, OIDC role (when its three variables are set), CLI config, credentials.ini,
    ECS RAM role (unless ``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true``): the order of
    alibabacloud-credentials' default chain."""
    env = _env(environ)
    links: list[Callable[[], CredentialsProvider]] = [
        lambda: EnvironmentProvider(environ),
        lambda: OidcRoleProvider(environ=environ, sts_endpoint=sts_endpoint),
        lambda: CliProfileProvider(environ=environ, home=home, metadata_url=metadata_url,
                                   sts_endpoint=sts_endpoint),
        lambda: ProfileProvider(environ=environ, home=home, metadata_url=metadata_url,
                                sts_endpoint=sts_endpoint),
    ]
    if not _flag(env, ENV_ECS_DISABLED):
        links.append(lambda: EcsRamRoleProvider(role_name, metadata_url=metadata_url,
                                                environ=environ))
    return ChainProvider(links)


#: Secret-bearing fields in the SDK's error texts (which quote STS answers and config files).
_SECRET_FIELDS = re.compile(
    r"(?i)([\"']?(?:access_?key_?secret|security_?token|sts_?token|oidc_?token|"
    r"private_?key|bearer_?token|access_?token|refresh_?token)[\"']?\s*[:=]\s*[\"']?)"
    r"[^\"',;\s}]+")


def redact(text: str) -> str:
    """``text`` with the values of secret-bearing fields replaced by ``***``."""
    return _SECRET_FIELDS.sub(r"\1***", text)


class SdkProvider:
    """``alibabacloud-credentials``' own default chain (or a ``Client`` given), for sources
    this module does not read (RAM role ARN from an AK, RSA key pairs, Cloud SSO, a credentials
    URI). The SDK caches and refreshes; expiry is its business."""

    name = "sdk"

    def __init__(self, client: Any = None) -> None:
        if client is None:
            try:
                sdk = importlib.import_module("alibabacloud_credentials.client")  # optional
            except ImportError as exc:
                raise CredentialsError(
                    "CREDENTIALS 'sdk' needs alibabacloud-credentials (pip install "
                    "django-media-moderation[aliyun-credentials])") from exc
            client = sdk.Client()
        self._client = client

    def get_credentials(self) -> Credentials:
        try:
            found = self._client.get_credential()
        except Exception as exc:  # the SDK raises its own CredentialException and others
            # Its messages quote STS answers (secrets included): redacted, and no chained
            # traceback to log them again.
            raise CredentialsError(
                f"alibabacloud-credentials: {redact(str(exc))[:1000]}") from None
        return Credentials(found.access_key_id or "", found.access_key_secret or "",
                           found.security_token or None,
                           provider=f"sdk/{getattr(found, 'provider_name', '') or ''}")


# --- from OPTIONS -----------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[..., CredentialsProvider]] = {
    "default": default_chain,
    "environment": EnvironmentProvider,
    "oidc_role_arn": OidcRoleProvider,
    "cli_profile": CliProfileProvider,
    "profile": ProfileProvider,
    "ecs_ram_role": EcsRamRoleProvider,
    "sdk": SdkProvider,
}
_shared: dict[str, CredentialsProvider] = {}
_shared_lock = threading.Lock()


def _spec_problem(spec: Any) -> tuple[str, dict[str, str]] | None:
    """What is wrong with an ``OPTIONS["CREDENTIALS"]`` value: an English message (marked
    for translation) and its arguments, or None."""
    if spec is None or spec == "" or hasattr(spec, "get_credentials"):
        return None
    kind = spec.get("type") if isinstance(spec, Mapping) else spec
    if kind not in KINDS:
        return (gettext_noop("CREDENTIALS %(kind)s is not one of %(kinds)s"),
                {"kind": repr(kind), "kinds": ", ".join(KINDS)})
    if isinstance(spec, Mapping):
        accepted = set(inspect.signature(_BUILDERS[kind]).parameters)
        unknown = sorted(set(spec) - accepted - {"type"})
        if unknown:
            return (gettext_noop("CREDENTIALS %(kind)s takes no %(options)s"),
                    {"kind": repr(kind), "options": ", ".join(unknown)})
    return None


def check_spec(spec: Any) -> str | None:
    """What is wrong with an ``OPTIONS["CREDENTIALS"]`` value, or None: the system check's
    text, in the active language."""
    problem = _spec_problem(spec)
    return gettext(problem[0]) % problem[1] if problem else None


def provider_for(spec: Any) -> CredentialsProvider:
    """The provider an ``OPTIONS["CREDENTIALS"]`` value names: a kind (``"default"``, the
    chain), a dict ``{"type": kind, **keyword arguments}`` (``metadata_url``,
    ``sts_endpoint``, ``role_name``...), or a ready provider object. Providers built from
    names are shared by every alias naming the same thing, so one cache serves them all."""
    if hasattr(spec, "get_credentials"):
        return spec
    # An error of a job, in English like the others (and no Django settings needed here).
    problem = _spec_problem(spec)
    if problem:
        raise CredentialsError(problem[0] % problem[1])
    options = dict(spec) if isinstance(spec, Mapping) else {"type": spec}
    key = json.dumps(options, sort_keys=True, default=str)
    with _shared_lock:
        if key not in _shared:
            kind = options.pop("type")
            _shared[key] = _BUILDERS[kind](**options)
        return _shared[key]


def forget_shared() -> None:
    """Drop the shared providers (tests; a settings change)."""
    with _shared_lock:
        _shared.clear()
