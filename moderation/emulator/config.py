"""Settings of one emulator instance: the single account it knows, where "OSS" lives, limits.

The real service has many accounts; the emulator has one AccessKey pair, which is all the
SDKs need to sign (aliyun-protocol.md §5, §6). Values come from the command line or the
``MODERATION_EMULATOR`` Django setting (see ``moderation_emulator``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from .verify import MAX_SKEW

#: How the emulator runs the local engine: in the request's own thread. The engine's
#: default would start its pool of worker processes, each loading the models, while the
#: client's read timeout runs (the SDKs' is 10 s; under load the start-up alone exceeded it).
ENGINE_OPTIONS = {"parallelism": "threads"}

DEFAULT_ACCESS_KEY_ID = "LTAI5tEmulatorKeyId0001"
DEFAULT_ACCESS_KEY_SECRET = "EmulatorSecret0000000000000001"
DEFAULT_UID = "1000000000000001"


@dataclass(frozen=True)
class EmulatorConfig:
    """One AccessKey pair, the account id echoed as ``AccountId``, and the OSS stand-in.

    ``oss_root`` replaces every bucket: ``ossObjectName`` is read from
    ``<oss_root>/<ossObjectName>`` whatever ``ossBucketName`` says.
    """

    access_key_id: str = DEFAULT_ACCESS_KEY_ID
    access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET
    uid: str = DEFAULT_UID
    oss_root: Path = Path("var/emulator-oss")
    host: str = "127.0.0.1"
    port: int = 0  # 0: let the OS pick a free port

    # --- limits ---------------------------------------------------------------------------
    # Freshness window of signed dates (§5.1 step 7); None turns the check off.
    max_skew: timedelta | None = MAX_SKEW
    # Largest request body read; SDK form bodies are a few hundred bytes.
    max_request_bytes: int = 1 << 20
    # Seconds a connection may stay silent (request line, headers, body): a client that
    # opens a connection and sends nothing, or trickles, frees its thread after this.
    read_timeout: float = 30.0
    # Image size the emulator downloads or reads (the documented 2.0 image limit is 20 MB).
    max_image_bytes: int = 20 << 20
    # Seconds for an imageUrl download; §2.6 code 592 is "download exceeded 3 s".
    download_timeout: float = 3.0
    # The real service only fetches public URLs; the emulator also fetches from loopback so
    # that tests can serve images locally. Other private addresses stay refused.
    allow_loopback_urls: bool = True
    allow_private_urls: bool = False
    # Callbacks (aliyun-api-reference.md §2.11): a first POST when a task finishes, then one
    # retry per entry (seconds after the previous try) until an answer is HTTP 200. The docs
    # say "up to 3 retries" without the spacing; the default spacing is ours.
    callback_retries: tuple[float, ...] = (1.0, 10.0, 60.0)
    callback_timeout: float = 5.0
    # Account limits (aliyun-api-reference.md §2.1, §3.2, §3.3), None: unlimited. Requests
    # per whole wall-clock second, and video tasks running at once; past either the answer is
    # each protocol's "slow down" (see app.throttle_reply).
    qps_limit: int | None = None
    max_running_tasks: int | None = None
    # How long finished tasks are kept, per product (aliyun-api-reference.md §2.6, §3.3,
    # §4.1); tests shorten them to see "expired" answers.
    result_retention: timedelta = timedelta(hours=24)  # 2.0 video
    green_retention: timedelta = timedelta(hours=1)  # 1.0 image and video async
    imm_retention: timedelta = timedelta(days=7)
    # Temporary STS credentials the gateway knows besides the AccessKey pair: (AccessKey id,
    # secret, security token) each; a request signed with one must carry its token.
    sts_credentials: tuple[tuple[str, str, str], ...] = ()

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of a known AccessKey id, None otherwise (-> InvalidAccessKeyId.NotFound)."""
        if access_key_id == self.access_key_id:
            return self.access_key_secret
        return next((secret for key, secret, _ in self.sts_credentials if key == access_key_id),
                    None)

    def token_refused(self, access_key_id: str, security_token: str | None) -> bool:
        """An STS AccessKey id signed without its own token (``x-acs-security-token``,
        ``SecurityToken``): the gateway refuses it (``InvalidSecurityToken.*``)."""
        tokens = {key: token for key, _, token in self.sts_credentials}
        return access_key_id in tokens and security_token != tokens[access_key_id]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> EmulatorConfig:
        """A config from a settings dict; keys are field names in any case, None is skipped."""
        names = {field.name for field in fields(cls)}
        given = {key.lower(): value for key, value in values.items() if value is not None}
        unknown = sorted(set(given) - names)
        if unknown:
            raise ValueError(f"unknown emulator settings: {', '.join(unknown)}")
        if "callback_retries" in given:
            given["callback_retries"] = tuple(float(s) for s in given["callback_retries"])
        if "oss_root" in given:
            given["oss_root"] = Path(given["oss_root"])
        if "sts_credentials" in given:
            given["sts_credentials"] = tuple(tuple(c) for c in given["sts_credentials"])
        return cls(**given)
