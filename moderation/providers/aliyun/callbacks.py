"""Alibaba callbacks, pure functions: read the form, find the ids, verify, parse.

The service POSTs ``application/x-www-form-urlencoded`` with ``checksum`` and ``content``
(aliyun-protocol.md §2.5; aliyun-api-reference.md §2.11, §3.6). ``content`` is the JSON text
of the result's ``Data`` (for 2.0 video: the VideoModerationResult ``Data``, with ``TaskId``
and ``DataId``); the checksum is verified over the exact string received.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..result import Result
from . import guardrails_video as video
from .checksum import verify_checksum


class MalformedCallback(ValueError):
    """The body is not a callback: a field is missing or ``content`` is not a JSON object."""


@dataclass(frozen=True)
class Callback:
    """One received callback: the checksum, the exact ``content`` text and its JSON."""

    checksum: str
    text: str
    content: dict[str, Any]

    @property
    def task_id(self) -> str:
        return str(self.content.get("TaskId") or self.content.get("taskId") or "")

    @property
    def data_id(self) -> str:
        return str(self.content.get("DataId") or self.content.get("dataId") or "")


def read_callback(form: Mapping[str, Any]) -> Callback:
    """The callback in a POST form (1.0/2.0 ``checksum``/``content``; the ReqId-based APIs'
    ``Checksum``/``Content`` spelling is accepted too, §3.6)."""
    checksum = form.get("checksum") or form.get("Checksum") or ""
    text = form.get("content") or form.get("Content") or ""
    if not isinstance(checksum, str) or not isinstance(text, str) or not checksum or not text:
        raise MalformedCallback("checksum and content are required")
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise MalformedCallback("content is not JSON") from exc
    if not isinstance(content, dict):
        raise MalformedCallback("content is not a JSON object")
    callback = Callback(checksum, text, content)
    if not callback.task_id and not callback.data_id:
        raise MalformedCallback("content names neither TaskId nor DataId")
    return callback


def is_authentic(callback: Callback, uid: str, seed: str, crypt_type: str = "SHA256") -> bool:
    """The checksum is ``hash(uid + seed + content)`` (§2.11), compared in constant time.
    Without a UID nothing can be verified, so nothing is authentic."""
    if not uid or not seed:
        return False
    return verify_checksum(uid, seed, callback.text, callback.checksum, crypt_type)


def parse_video_callback(content: Mapping[str, Any], service: str) -> Result:
    """A 2.0 video callback ``content`` (a VideoModerationResult ``Data``) as a finished
    Result, through the same parser as polling (§3.6: same structure as the query's Data)."""
    return video.parse_video_result({"Code": 200, "Data": dict(content)}, service)
