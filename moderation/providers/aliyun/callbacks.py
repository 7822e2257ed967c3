"""Alibaba callbacks: read the form, find the ids, verify, parse; and the provider hooks
(:class:`AliyunCallbacks`, shared by the three Alibaba providers) the callback view calls.

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
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import parse_qsl

from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.translation import gettext as _

from ..base import CALLBACK, ProviderContext
from ..errors import MalformedCallback
from ..result import Result
from . import checksum
from . import guardrails_video as video
from .checksum import verify_checksum

#: deepest nesting of ``content`` accepted (objects and arrays)
MAX_DEPTH = 32
#: a callback form has two fields; a body with more than this many is not one
MAX_FIELDS = 20

logger = logging.getLogger(__name__)

__all__ = ["AliyunCallbacks", "Callback", "MalformedCallback", "form_fields", "read_callback"]


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


def form_fields(request: HttpRequest, body: bytes) -> dict[str, str]:
    """The form fields of a callback body, strictly: UTF-8 (after percent-decoding too),
    urlencoded (what Alibaba sends) or multipart without files, no field repeated."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedCallback("the body is not UTF-8") from None
    kind = request.content_type or "application/x-www-form-urlencoded"
    if kind == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                              max_num_fields=MAX_FIELDS)
        except ValueError as exc:  # UnicodeDecodeError included
            raise MalformedCallback(f"not a form: {exc}") from None
    elif kind == "multipart/form-data":
        try:
            parser = MultiPartParser(request.META, BytesIO(body), request.upload_handlers,
                                     "utf-8")
            data, files = parser.parse()
        except (MultiPartParserError, SuspiciousOperation, ValueError) as exc:
            raise MalformedCallback(f"not a form: {exc}") from None
        if files:
            raise MalformedCallback("a callback carries no files")
        pairs = [(key, value) for key, values in data.lists() for value in values]
        if len(pairs) > MAX_FIELDS:
            raise MalformedCallback("too many fields")
    else:
        raise MalformedCallback(f"content type {kind!r} is not a form")
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise MalformedCallback(f"field {key!r} is repeated")
        fields[key] = value
    return fields


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


class AliyunCallbacks:
    """The callback hooks of the Alibaba providers (mixed into ``AliyunProvider``): a form
    with ``checksum`` + ``content``, verified with the account UID, the job's seed and the
    crypt type (the job's ``crypt_type`` option, else ``OPTIONS['CRYPT_TYPE']``, SHA256)."""

    alias: str
    options: dict[str, Any]
    capabilities: frozenset[str]

    def read_callback(self, request: HttpRequest, body: bytes) -> Callback:
        return read_callback(form_fields(request, body))

    def verify_callback(self, callback: Callback, seed: str, options: dict[str, Any]) -> bool:
        uid = str(self.options.get("UID") or "")
        crypt_type = str(options.get("crypt_type") or self.options.get("CRYPT_TYPE")
                         or "SHA256")
        if not uid:
            logger.error("provider %r has no OPTIONS['UID']: callbacks cannot be verified",
                         self.alias)
        return is_authentic(callback, uid, seed, crypt_type)

    @classmethod
    def check(cls, alias: str, options: dict[str, Any],
              context: ProviderContext | None = None) -> list[CheckMessage]:
        """E011: with CALLBACK_BASE_URL set, a callback provider without a UID would refuse
        every callback (the checksum includes the account UID). W017: ``CRYPT_TYPE`` SM3
        verified through the pure-Python fallback (no SM3 in this Python's OpenSSL) costs
        seconds per MiB of callback (checksum.py; bench/callbacks.py)."""
        context = context if context is not None else ProviderContext()
        errors = list(super().check(alias, options, context))  # type: ignore[misc]
        if (context.settings["CALLBACK_BASE_URL"] and CALLBACK in cls.capabilities
                and not options.get("UID")):
            errors.append(Error(
                _("Provider %(alias)s receives callbacks but has no UID option: every "
                  "callback would be refused (its checksum includes the account UID).")
                % {"alias": repr(alias)},
                hint=_("Set OPTIONS['UID'] (ALIBABA_CLOUD_UID), or unset CALLBACK_BASE_URL."),
                id="moderation.E011",
            ))
        if (checksum.SM3_IMPLEMENTATION == "python"
                and str(options.get("CRYPT_TYPE", "")).upper() == "SM3"):
            errors.append(Warning(
                _("Provider(s) %(aliases)s verify callbacks with SM3, which this Python's "
                  "OpenSSL lacks: the pure-Python fallback takes about 6 s per MiB of "
                  "callback.") % {"aliases": alias},
                hint=_("pip install cryptography (it brings SM3), or use CRYPT_TYPE 'SHA256'."),
                id="moderation.W017",
            ))
        return errors
