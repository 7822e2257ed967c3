"""A provider written the way a site would write one: only ``moderation.providers`` names.

"Acme" moderates images asynchronously: ``submit`` answers ``in_progress`` with a task
id, and Acme later POSTs the verdict as a JSON body signed with HMAC-SHA256 of the body
(key: ``OPTIONS['SECRET']``) in the ``X-Acme-Signature`` header, echoing the job's seed.
It declares no feedback and no video, and checks its own OPTIONS (``acme.W001``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.core.checks import CheckMessage, Warning

from moderation.providers import (
    CALLBACK,
    IMAGE,
    Callback,
    Frame,
    Label,
    MalformedCallback,
    Media,
    ModerationRequest,
    Provider,
    ProviderContext,
    ProviderError,
    Result,
)

SIGNATURE_HEADER = "X-Acme-Signature"

#: what the test's "Acme service" received: (task id, seed, callback URL) per submit
SUBMITTED: list[tuple[str, str, str]] = []


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AcmeProvider(Provider):
    capabilities = frozenset({IMAGE, CALLBACK})
    default_scenes = ("porn",)
    required_options = ("SECRET",)

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        media.read()  # Acme would upload the bytes here
        task_id = f"acme-{request.data_id}"
        SUBMITTED.append((task_id, request.seed, request.callback_url))
        return Result(status="in_progress", task_id=task_id)

    def fetch(self, task_id: str, request: ModerationRequest) -> Result:
        return Result(status="in_progress", task_id=task_id)  # still working: wait for push

    def read_callback(self, request, body: bytes) -> Callback:
        if request.content_type != "application/json":
            raise MalformedCallback("Acme posts application/json")
        try:
            content = json.loads(body)
        except ValueError:
            raise MalformedCallback("the body is not JSON") from None
        if not isinstance(content, dict) or not isinstance(content.get("task"), str):
            raise MalformedCallback("no task id")
        return Callback(task_id=content["task"], content=content,
                        extra={"body": body,
                               "signature": request.headers.get(SIGNATURE_HEADER, "")})

    def verify_callback(self, callback: Callback, seed: str, options: dict[str, Any]) -> bool:
        expected = sign(str(self.options["SECRET"]), callback.extra["body"])
        return (hmac.compare_digest(expected, str(callback.extra["signature"]))
                and callback.content.get("seed") == seed)

    def parse_callback(self, content: dict[str, Any]) -> Result:
        if content.get("state") == "failed":  # Acme could not analyse it: no verdict
            return Result(status="failed", task_id=str(content["task"]), raw=content)
        if content.get("state") != "finished":
            raise ProviderError(f"Acme task {content['task']} is {content.get('state')!r}")
        labels = [Label(str(item["name"]), float(item["score"]), risk_level=str(item["risk"]),
                        service="acme") for item in content.get("labels", [])]
        risk = "high" if any(label.risk_level == "high" for label in labels) else "none"
        frame = Frame(offset=0.0, risk_level=risk, labels=labels)
        return Result(status="done", risk_level=risk, labels=labels, frames=[frame],
                      raw=content)

    @classmethod
    def check(cls, alias: str, options: dict[str, Any],
              context: ProviderContext | None = None) -> list[CheckMessage]:
        errors = super().check(alias, options, context)
        if 0 < len(str(options.get("SECRET") or "")) < 16:
            errors.append(Warning(f"Acme provider {alias!r}: SECRET is shorter than 16 "
                                  "characters.", hint="Use the secret Acme issued.",
                                  id="acme.W001"))
        return errors
