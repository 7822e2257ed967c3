"""Alibaba callbacks, pure functions: read the form, find the ids, verify, parse.

The service POSTs ``application/x-www-form-urlencoded`` with ``checksum`` and ``content``
(aliyun-protocol.md §2.5; aliyun-api-reference.md §2.11, §3.6). ``content`` is the JSON text
of the result's ``Data`` (for 2.0 video: the VideoModerationResult ``Data``, with ``TaskId``
and ``DataId``); the checksum is verified over the exact string received.

Anything else is :class:`MalformedCallback` (the view answers 400): a missing or repeated
field, ``content`` that is not a JSON object, JSON nested deeper than :data:`MAX_DEPTH`
(Alibaba's results nest about 8 levels; Python's parser would otherwise raise
``RecursionError`` near 1,000) or carrying ``NaN``/``Infinity`` (not JSON, and refused by
PostgreSQL's ``jsonb`` when stored).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..result import Result
from . import guardrails_video as video
from .checksum import verify_checksum

#: deepest nesting of ``content`` accepted (objects and arrays)
MAX_DEPTH = 32


class MalformedCallback(ValueError):
    """The body is not a callback: a field is missing or ``content`` is not a JSON object."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise ValueError(f"{text[:20]} is out of range")
    return value


def nesting_depth(value: Any, limit: int) -> int:
    """How deep ``value`` nests (a scalar is 0), walked without recursion; stops counting
    past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def load_content(text: str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """``content`` as a JSON object, or :class:`MalformedCallback`."""
    try:
        content = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError as exc:
        raise MalformedCallback("content is nested too deeply") from exc
    except ValueError as exc:  # also int strings past sys.get_int_max_str_digits()
        raise MalformedCallback("content is not JSON") from exc
    if not isinstance(content, dict):
        raise MalformedCallback("content is not a JSON object")
    if nesting_depth(content, max_depth) > max_depth:
        raise MalformedCallback(f"content nests deeper than {max_depth} levels")
    return content


@dataclass(frozen=True)
class Callback:
    """One received callback: the checksum, the exact ``content`` text and its JSON."""

    checksum: str
    text: str
    content: dict[str, Any]

    @property
    def task_id(self) -> str:
        return _identifier(self.content, "TaskId", "taskId")

    @property
    def data_id(self) -> str:
        return _identifier(self.content, "DataId", "dataId")


#: longest task or data id looked up (Alibaba's are under 64 characters)
MAX_ID_LENGTH = 128


def _identifier(content: Mapping[str, Any], *keys: str) -> str:
    """The first of ``keys`` holding a string or integer id; anything else (an object, a
    list, a boolean, an overlong string) is no id."""
    for key in keys:
        value = content.get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            continue
        text = str(value)
        if text and len(text) <= MAX_ID_LENGTH:
            return text
    return ""


def read_callback(form: Mapping[str, Any]) -> Callback:
    """The callback in a POST form (1.0/2.0 ``checksum``/``content``; the ReqId-based APIs'
    ``Checksum``/``Content`` spelling is accepted too, §3.6)."""
    checksum = form.get("checksum") or form.get("Checksum") or ""
    text = form.get("content") or form.get("Content") or ""
    if not isinstance(checksum, str) or not isinstance(text, str) or not checksum or not text:
        raise MalformedCallback("checksum and content are required")
    content = load_content(text)
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
