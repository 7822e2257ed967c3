"""Alibaba Cloud Intelligent Media Management (IMM, API version 2020-09-30): asynchronous video
and image moderation tasks inside an IMM project.

Wire protocol per shared/specs/aliyun-protocol.md §7: RPC ``POST /`` on
``imm.<region>.aliyuncs.com`` (§1.1), the operation in ``x-acs-action``, **every parameter in
the query string** and an empty body, signed with ACS3-HMAC-SHA256 (§5) or legacy RPC V1 (§6).
Operations: ``CreateVideoModerationTask`` / ``CreateImageModerationTask`` answer a ``TaskId``;
``GetVideoModerationResult`` / ``GetImageModerationResult`` answer ``Status``
(``Running|Succeeded|Failed``) and, once done, ``ModerationResult`` {``Suggestion``,
``Categories``, ``Frames {TotalCount, BlockFrames[] {Label, Offset, Rate}}``} (§7.3). Polling
uses those two only: ``GetTask`` carries no verdict (§7.2). Results are kept 7 days
(aliyun-api-reference.md §4.1); after that the task is ``ResourceNotFound`` -> ``Expired``.

IMM reads media from OSS only: ``SourceURI`` is ``oss://<bucket>/<object>`` in the project's
region (§7.1, api-reference §1.3). It never downloads an http(s) URL, so a media URL must be an
``oss://`` URI or a virtual-hosted OSS URL (``https://<bucket>.oss-<region>.aliyuncs.com/<key>``,
what OSS storages hand out), else submit raises ``NotSupported`` (``imm_needs_oss``). There is
no callback URL (results come by polling; MNS/RocketMQ notifications can be requested with the
``NOTIFICATION`` option but are not consumed by this app), no audio, no feedback.

OPTIONS (``MODERATION["PROVIDERS"][alias]["OPTIONS"]``):

``ACCESS_KEY_ID``, ``ACCESS_KEY_SECRET``, ``PROJECT_NAME`` (required), ``SECURITY_TOKEN``
(STS), ``REGION`` (``ap-southeast-1``), ``ENDPOINT`` (default ``imm.<REGION>.aliyuncs.com``;
``http://127.0.0.1:PORT`` for the emulator), ``SIGNATURE`` (``acs3`` | ``rpc_v1``), ``TIMEOUT``
((connect, read) seconds, ``(5, 20)``), ``INTERVAL`` / ``MAX_FRAMES`` (video sampling; default
the job's ``interval``/``max_frames`` options, then ``VIDEO_INTERVAL``/``VIDEO_MAX_FRAMES``),
``NOTIFICATION`` (a dict sent as ``Notification``, e.g. ``{"MNS": {"TopicName": "t"}}``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from ...labels import make_label
from ..base import IMAGE, VIDEO, Media, ModerationRequest
from ..errors import AuthError, Expired, MediaError, ModerationError, NotSupported, ProviderError
from ..result import Frame, Label, Result, worst_risk
from . import signing
from .client import AliyunProvider, image_result
from .errors import ErrorRule, error_from_response
from .green import RISK_OF_SUGGESTION

API_VERSION = "2020-09-30"
VIDEO_TASK, IMAGE_TASK = "VideoModeration", "ImageModeration"  # TaskType, also the id prefix
CREATE_ACTIONS = {VIDEO_TASK: "CreateVideoModerationTask", IMAGE_TASK: "CreateImageModerationTask"}
RESULT_ACTIONS = {VIDEO_TASK: "GetVideoModerationResult", IMAGE_TASK: "GetImageModerationResult"}
RUNNING, SUCCEEDED, FAILED = "Running", "Succeeded", "Failed"
SIGNATURES = ("acs3", "rpc_v1")
DEFAULT_TIMEOUT = (5.0, 20.0)
USER_AGENT = "django-media-moderation (aliyun-imm; python-requests)"
LABEL_SERVICE = "imm"
MAX_USER_DATA = 2048  # bytes (§7.1)
#: IMM scenes (api-reference §4.1: the 1.0 scene names). Our ``qrcode`` scene is part of IMM's
#: ``ad`` scene (its ``qrcode`` label, api-reference §2.9).
SCENE_ALIASES = {"qrcode": "ad"}
NORMAL = "normal"


class ImmCategory(NamedTuple):
    category: str  # IMM ``Categories[]`` / ``BlockFrames[].Label`` (a 1.0 label, §4.2)
    label: str  # our label (Alibaba 2.0 vocabulary, labels.DEFAULT_LABELS)
    scene: str  # the IMM scene that reports it (``Scenes``)


#: The one table between IMM categories and our labels. Reading an answer, the *first* row of
#: a category gives our label; the emulator renders our labels with the rows right to left.
#: Agrees with the 1.0 table (vocabulary.TO_V1/FROM_V1), since IMM categories are 1.0 labels.
#: A category without a row keeps its IMM name as our label (an unknown label counts as
#: ``medium``, labels.UNKNOWN_RULE); ``normal`` is no label.
CATEGORIES: tuple[ImmCategory, ...] = (
    ImmCategory("porn", "pornographic_adultContent", "porn"),
    ImmCategory("sexy", "sexual_suggestiveContent", "porn"),
    ImmCategory("sexy", "sexual_partialNudity", "porn"),  # IMM has no partial-nudity category
    ImmCategory("qrcode", "pt_qrCode", "ad"),
    ImmCategory("ad", "pt_toDirectContact_tii", "ad"),
    ImmCategory("abuse", "profanity_offensive_tii", "ad"),
)
_LABEL_OF = {row.category: row.label for row in reversed(CATEGORIES)}  # first row wins
_ROW_OF = {row.label: row for row in CATEGORIES}


def label_for_category(category: str) -> str | None:
    """Our label for an IMM category; None for ``normal``."""
    if not category or category == NORMAL:
        return None
    return _LABEL_OF.get(category, category)


def category_for_label(label: str) -> ImmCategory | None:
    """The IMM row for one of our labels (``<label>_lib`` as its base), None when IMM has no
    such category."""
    if label.endswith("_lib"):
        label = label[: -len("_lib")]
    return _ROW_OF.get(label)


#: Gateway error codes (HTTP 4xx/5xx, §7.3, §8.1) whose meaning is IMM's own; every other code
#: goes through ``errors.ERRORS``. ``ResourceNotFound`` depends on what is missing (below).
GATEWAY_ERRORS: dict[int | str, ErrorRule] = {
    "InvalidArgument": (MediaError, "invalid_argument"),  # e.g. a SourceURI IMM cannot read
    "InvalidParameter": (MediaError, "invalid_argument"),
}

#: Codes of a ``Failed`` task (``Status: Failed`` + ``Code``/``Message``, §7.2, §7.3). The file
#: is the problem -> MediaError (not retried); any other code -> ProviderError.
TASK_ERRORS: dict[str, ErrorRule] = {
    "ResourceNotFound": (MediaError, "file_missing"),  # the OSS object is gone
    "InvalidFile": (MediaError, "invalid_file"),  # and every ``InvalidFile.*``
    "InvalidArgument": (MediaError, "invalid_argument"),
}


def default_endpoint(region: str) -> str:
    """``imm.<region>.aliyuncs.com``: the IMM SDK has no region map (§1.1)."""
    return f"imm.{region}.aliyuncs.com"


# --- requests --------------------------------------------------------------------------------


def source_uri(url: str) -> str:
    """The ``SourceURI`` for a media URL: ``oss://bucket/key`` as is, a virtual-hosted OSS URL
    (``https://bucket.oss-<region>[-internal].aliyuncs.com/<key>``, query dropped: IMM reads
    with its own role) rewritten; anything else raises ``NotSupported``."""
    parts = urlsplit(url or "")
    scheme = parts.scheme.lower()
    if scheme == "oss" and parts.netloc and parts.path.strip("/"):
        return url
    host = (parts.hostname or "").lower()
    bucket, _, rest = host.partition(".")
    if (scheme in ("http", "https") and bucket and rest.startswith("oss-")
            and rest.endswith(".aliyuncs.com") and parts.path.strip("/")):
        return f"oss://{bucket}/{unquote(parts.path.lstrip('/'))}"
    raise NotSupported(
        f"IMM reads media from OSS only (SourceURI oss://<bucket>/<object> in the project's "
        f"region) and cannot download {url or 'a file without a URL'!r}; store the file in OSS "
        "(an OSS storage, or an ad-hoc job with an oss:// URL)",
        code="imm_needs_oss",
    )


def task_type_of(task_id: str) -> str:
    """The ``TaskType`` of a task id: IMM prefixes ids with it (``VideoModeration-<uuid>``,
    api-reference §4.1 examples); video when the prefix says nothing."""
    return IMAGE_TASK if task_id.startswith(f"{IMAGE_TASK}-") else VIDEO_TASK


def _json(value: Any) -> str:
    """The SDK's "shrink" of nested values: compact JSON, UTF-8 kept (§7)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def imm_scenes(scenes: Iterable[str]) -> list[str]:
    """Our scene names as IMM ``Scenes``, in order, without duplicates (``qrcode`` -> ``ad``)."""
    out: list[str] = []
    for scene in scenes:
        name = SCENE_ALIASES.get(scene, scene)
        if name and name not in out:
            out.append(name)
    return out


def create_parameters(
    project: str, uri: str, *, scenes: Iterable[str] = (), interval: int | None = None,
    max_frames: int | None = None, notification: Mapping[str, Any] | None = None,
    user_data: str = "",
) -> dict[str, str]:
    """The query of Create{Video,Image}ModerationTask (§7.1), sorted like the SDK's; empty
    values are left out (IMM applies its defaults)."""
    params = {"ProjectName": project, "SourceURI": uri}
    if scenes := imm_scenes(scenes):
        params["Scenes"] = _json(scenes)
    if interval is not None:
        params["Interval"] = str(int(interval))
    if max_frames is not None:
        params["MaxFrames"] = str(int(max_frames))
    if notification:
        params["Notification"] = _json(dict(notification))
    if user_data:
        if len(user_data.encode()) > MAX_USER_DATA:
            raise ValueError(f"UserData is limited to {MAX_USER_DATA} bytes")
        params["UserData"] = user_data
    return dict(sorted(params.items()))


# --- answers ---------------------------------------------------------------------------------


def parse_create(body: Mapping[str, Any]) -> Result:
    """A Create*ModerationTask answer: ``in_progress`` with ``TaskId`` (required)."""
    task_id = str(body.get("TaskId") or "")
    if not task_id:
        raise ProviderError("IMM answered a create task without TaskId", code="bad_response")
    return Result(status="in_progress", task_id=task_id, raw=dict(body))


def task_error(body: Mapping[str, Any], task_id: str = "") -> ModerationError:
    """The error for a ``Failed`` task, by its ``Code`` (:data:`TASK_ERRORS`)."""
    code = str(body.get("Code") or "")
    family = code.split(".", 1)[0]
    cls, job_code = TASK_ERRORS.get(code) or TASK_ERRORS.get(family) or (
        ProviderError, "task_failed")
    text = f"IMM task {task_id or body.get('TaskId') or ''} failed: {code or 'no code'}"
    if body.get("Message"):
        text += f": {body['Message']}"
    if body.get("RequestId"):
        text += f" [request id {body['RequestId']}]"
    return cls(text, code=job_code)


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _label(category: str, rate: Any) -> Label | None:
    name = label_for_category(category)
    if name is None:
        return None
    return make_label(name, _number(rate, 100.0), service=LABEL_SERVICE, scene=category)


def _best(labels: Iterable[Label]) -> list[Label]:
    """One label per name, the most confident, sorted by name."""
    best: dict[str, Label] = {}
    for lbl in labels:
        if lbl.label not in best or lbl.confidence > best[lbl.label].confidence:
            best[lbl.label] = lbl
    return [best[name] for name in sorted(best)]


def parse_frames(block_frames: Any) -> list[Frame]:
    """``Frames.BlockFrames[]`` ({Label, Offset, Rate}, one element per frame *and* label) as
    one Frame per offset, in time order. ``Offset`` is read as seconds: IMM samples one frame
    every ``Interval`` seconds and, like 1.0/2.0, reports offsets in seconds (the docs only say
    "the offset of the frame"; at the default Interval 1 both readings agree)."""
    by_offset: dict[float, list[Label]] = {}
    for item in _items(block_frames):
        found = _label(str(item.get("Label") or ""), item.get("Rate"))
        offset = _number(item.get("Offset"), 0.0)
        by_offset.setdefault(offset, [])
        if found is not None:
            by_offset[offset].append(found)
    return [
        Frame(offset=offset, risk_level=worst_risk(lbl.risk_level for lbl in labels),
              labels=_best(labels))
        for offset, labels in sorted(by_offset.items())
    ]


def parse_moderation_result(body: Mapping[str, Any], task_id: str = "") -> Result:
    """A Get{Video,Image}ModerationResult answer (§7.3) as a Result.

    ``Running`` -> ``in_progress``; ``Failed`` -> raises :func:`task_error`; ``Succeeded`` ->
    ``done``: the job's risk is IMM's ``Suggestion`` (block -> high, review -> medium,
    pass -> none, as for 1.0), labels keep the risk of our label table; one label per category
    (confidence: its best frame ``Rate``, else 100), one Frame per blocked frame offset. An
    image without frames is one frame at 0 s.
    """
    task_id = str(body.get("TaskId") or task_id)
    status = str(body.get("Status") or "")
    if status == FAILED:
        raise task_error(body, task_id)
    if status != SUCCEEDED:
        return Result(status="in_progress", task_id=task_id, raw=dict(body))
    moderation = body.get("ModerationResult")
    if not isinstance(moderation, Mapping):
        raise ProviderError(f"IMM task {task_id} succeeded without ModerationResult",
                            code="bad_response")
    frames_part = moderation.get("Frames") if isinstance(moderation.get("Frames"), Mapping) else {}
    frames = parse_frames(frames_part.get("BlockFrames"))
    frame_labels = [lbl for frame in frames for lbl in frame.labels]
    categories = [str(c) for c in moderation.get("Categories") or [] if isinstance(c, str)]
    listed = [lbl for lbl in (_label(c, None) for c in categories) if lbl is not None]
    seen = {lbl.label for lbl in frame_labels}
    labels = _best([*frame_labels, *(lbl for lbl in listed if lbl.label not in seen)])
    suggestion = str(moderation.get("Suggestion") or "").strip().lower()
    risk = RISK_OF_SUGGESTION.get(suggestion, "medium")  # unknown: let a human look
    if task_type_of(task_id) == IMAGE_TASK and not frames:
        result = image_result(labels, risk, body)
        result.task_id = task_id
        return result
    summary: dict[str, int] = {}
    for lbl in frame_labels:
        summary[lbl.label] = summary.get(lbl.label, 0) + 1
    return Result(
        status="done",
        risk_level=risk,
        labels=labels,
        frames=frames,
        frame_summary=summary,
        task_id=task_id,
        raw=dict(body),
        frames_analysed=_total_count(frames_part.get("TotalCount")),
    )


def _total_count(value: Any) -> int:
    """``Frames.TotalCount``: how many frames IMM looked at (BlockFrames lists only the
    blocked ones), 0 when absent or not a count."""
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


# --- the provider ----------------------------------------------------------------------------


class ImmProvider(AliyunProvider):
    """IMM video/image moderation over HTTPS with ``requests`` (no Alibaba SDK needed)."""

    capabilities = frozenset({IMAGE, VIDEO})
    product = "imm"
    required_options = ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "PROJECT_NAME")
    default_timeout = DEFAULT_TIMEOUT
    default_endpoint = staticmethod(default_endpoint)

    @property
    def project(self) -> str:
        project = str(self._opt("PROJECT_NAME"))
        if not project:
            raise AuthError(f"provider {self.alias!r} has no PROJECT_NAME", code="no_project")
        return project

    def _sampling(self, request: ModerationRequest) -> tuple[int, int]:
        """(Interval, MaxFrames): the job's options, then OPTIONS, then the settings."""
        options = request.options or {}
        interval = options.get("interval") or self._opt(
            "INTERVAL", self.context.settings["VIDEO_INTERVAL"])
        max_frames = options.get("max_frames") or self._opt(
            "MAX_FRAMES", self.context.settings["VIDEO_MAX_FRAMES"])
        return int(interval), int(max_frames)

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        """Create{Video,Image}ModerationTask; ``in_progress`` with IMM's TaskId (whose prefix
        is the TaskType that :meth:`fetch` needs)."""
        self.check_media(media)
        task_type = IMAGE_TASK if media.kind == IMAGE else VIDEO_TASK
        interval, max_frames = self._sampling(request) if task_type == VIDEO_TASK else (
            None, None)
        params = create_parameters(
            self.project, source_uri(media.url), scenes=request.scenes, interval=interval,
            max_frames=max_frames, notification=self._opt("NOTIFICATION", None),
            user_data=_json({"dataId": request.data_id}) if request.data_id else "",
        )
        return parse_create(self.call(CREATE_ACTIONS[task_type], params))

    def fetch(self, task_id: str, request: ModerationRequest | None = None) -> Result:
        """Get{Video,Image}ModerationResult: ``in_progress`` while Running, the result once
        Succeeded; a Failed task raises its error, a purged one (7 days) ``Expired``."""
        task_type = task_type_of(task_id)
        body = self.call(RESULT_ACTIONS[task_type], {
            "ProjectName": self.project, "TaskId": task_id, "TaskType": task_type})
        return parse_moderation_result(body, task_id)

    def call(self, action: str, query: Mapping[str, str]) -> dict[str, Any]:
        """POST one signed operation (parameters in the query, empty body, §7); the JSON
        answer of a 2xx (IMM has no business ``Code`` on success, §7.3), else the mapped
        gateway error, or ``ProviderError`` (``timeout``/``connection``) without an answer."""
        url, headers = self._signed(action, query)
        response, payload = self.send(url, b"", headers)
        if 200 <= response.status_code < 300:
            if isinstance(payload, dict):
                return payload
            raise ProviderError(f"IMM sent a non-JSON answer (HTTP {response.status_code})",
                                code="bad_response")
        overrides = {**GATEWAY_ERRORS, "ResourceNotFound": not_found_rule(action, payload)}
        error = error_from_response(response.status_code, payload, response.headers,
                                    "" if payload is not None else response.text,
                                    overrides=overrides)
        raise error or ProviderError(f"IMM answered HTTP {response.status_code}")

    def _signed(self, action: str, query: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """(URL with the query, headers) of a signed request; send the headers as returned."""
        key_id, secret, token = self.credentials()
        algorithm = str(self._opt("SIGNATURE", "acs3")).lower()
        if algorithm not in SIGNATURES:
            raise AuthError(f"SIGNATURE must be one of {SIGNATURES}", code="invalid_option")
        scheme, host = self.endpoint
        headers = {"host": host, "user-agent": USER_AGENT}
        if algorithm == "acs3":
            signed = signing.sign_acs3(
                "POST", "/", query, headers, b"", key_id, secret,
                action=action, version=API_VERSION, security_token=token,
            )
            return f"{scheme}://{host}/?{signing.form_encode(query)}", signed
        full = signing.sign_rpc_v1(  # §6: the operation's query parameters are signed too
            "POST", {"Action": action, "Version": API_VERSION, **query}, key_id, secret,
            security_token=token,
        )
        headers.update({
            "x-acs-version": API_VERSION,
            "x-acs-action": action,
            "x-acs-credentials-provider": "static_sts" if token else "static_ak",
        })
        return f"{scheme}://{host}/?{signing.form_encode(full)}", headers


def not_found_rule(action: str, payload: Any) -> ErrorRule:
    """What a gateway ``ResourceNotFound`` means: a missing project is configuration
    (AuthError, surfaced); a missing task on a result query is a purged result (Expired);
    anything else at creation is the media."""
    message = str(payload.get("Message") or "") if isinstance(payload, Mapping) else ""
    if "project" in message.lower():
        return (AuthError, "project_not_found")
    if action in RESULT_ACTIONS.values():
        return (Expired, "expired")
    return (MediaError, "file_missing")
