"""IMM (Intelligent Media Management, API version 2020-09-30) moderation handlers of the emulator.

``CreateVideoModerationTask`` / ``CreateImageModerationTask`` take every parameter from the
query (aliyun-protocol.md §7, §7.1), read ``SourceURI`` = ``oss://<bucket>/<key>`` from
``<oss_root>/<key>`` (every bucket is the OSS stand-in; IMM reads OSS only, so http(s) URIs
are refused like the real API refuses them) and answer ``{RequestId, TaskId, EventId}`` at
once; the task id is ``<TaskType>-<uuid>`` like the service's. Videos are analysed on the
shared :class:`~.video_tasks.VideoTasks` worker, images with the image engine on the same
worker. ``GetTask`` (§7.2) reports ``Status`` (no ``Progress``: GetTask has none) without a
verdict, ``GetVideoModerationResult`` / ``GetImageModerationResult`` (§7.3) add
``ModerationResult`` {``URI``, ``Suggestion``, ``Categories``, ``Frames {TotalCount,
BlockFrames[]}``} once ``Succeeded``. Tasks are kept ``EmulatorConfig.imm_retention`` (7
days, api-reference §4.1) after they end.

Errors are gateway-style (§7.3, §8.1): HTTP 4xx + ``{RequestId, HostId, Code, Message}``.
Conventions of this emulator (the spec names no IMM codes besides the documented example
``ResourceNotFound`` / "The specified resource TaskId is not found."):

* 400 ``MissingParameter`` for an absent required parameter, 400 ``InvalidArgument`` for a
  malformed one (SourceURI not ``oss://bucket/key``, Interval/MaxFrames out of range, bad JSON);
* 404 ``ResourceNotFound`` for an unknown project (when the service was given a project list),
  an unknown/expired task, or a task of another type/project;
* a source that cannot be read does not fail the request: the task ends ``Failed`` with
  ``ResourceNotFound`` (object missing), ``InvalidFile`` (too large, not a decodable
  video/image) or ``InternalError`` (:data:`TASK_FAILURES`).

Interval/MaxFrames are applied by keeping the engine's 1-second samples whose offset is a
multiple of ``Interval``, at most ``MaxFrames``; ``Scenes`` filters the reported categories by
the scene of each row of ``providers.aliyun.imm.CATEGORIES`` (the one label table). Sound is
not moderated by IMM and is ignored. ``Notification``, ``CredentialConfig`` are checked as JSON
and otherwise ignored (no MNS/RocketMQ delivery).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ..providers import Label, Result
from ..providers.aliyun.imm import (
    API_VERSION,
    CREATE_ACTIONS,
    IMAGE_TASK,
    MAX_USER_DATA,
    RESULT_ACTIONS,
    VIDEO_TASK,
    category_for_label,
)
from ..providers.result import worst_risk
from .app import Call, GatewayError, Reply, Routes
from .config import EmulatorConfig
from .guardrails import (
    ALGO_FAILED,
    NOT_ALLOWED,
    NOT_FOUND,
    BusinessError,
    moderate,
    read_oss_object,
)
from .tasks import DONE, FAILED, RUNNING, Task, TaskStore
from .video_tasks import VideoTasks, download_video

logger = logging.getLogger(__name__)

VERSION = API_VERSION
#: Documented ``Scenes`` values (api-reference §4.1).
SCENES = frozenset({"porn", "terrorism", "ad", "live", "logo"})
#: (default, low, high) of Interval and MaxFrames per task type (§7.1, §7.3).
SAMPLING = {
    VIDEO_TASK: {"Interval": (1, 1, 600), "MaxFrames": (200, 5, 3600)},
    IMAGE_TASK: {"Interval": (1, 1, 600), "MaxFrames": (1, 1, 3600)},
}
STATUS = {RUNNING: "Running", DONE: "Succeeded", FAILED: "Failed"}
#: Business code recorded by the download/analysis steps -> task ``Code`` and message.
TASK_FAILURES: dict[int, tuple[str, str | None]] = {
    NOT_FOUND: ("ResourceNotFound", "The specified resource SourceURI is not found."),
    589: ("InvalidFile", None),  # too large
    590: ("InvalidFile", None),  # not a decodable video / image
    ALGO_FAILED: ("InternalError", None),
}
SUGGESTION_OF_RISK = {"high": "block", "medium": "review", "low": "review", "none": "pass"}
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


def _now_iso() -> str:
    """ISO 8601 UTC with milliseconds, like ``2023-04-03T10:20:41.432Z`` (§7.2)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _missing(name: str) -> GatewayError:
    return GatewayError(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
        400,
    )


def _invalid(name: str, why: str = "") -> GatewayError:
    detail = f" ({why})" if why else ""
    return GatewayError("InvalidArgument", f"The specified parameter {name} is not valid{detail}.",
                        400)


def _not_found(resource: str) -> GatewayError:
    return GatewayError("ResourceNotFound", f"The specified resource {resource} is not found.", 404)


def parse_source_uri(value: str | None) -> tuple[str, str]:
    """(bucket, key) of ``oss://bucket/key``; IMM takes nothing else (§7.1)."""
    if not value:
        raise _missing("SourceURI")
    parts = urlsplit(value)
    key = parts.path.lstrip("/")
    if parts.scheme != "oss" or not parts.netloc or not key or parts.query or parts.fragment:
        raise _invalid("SourceURI", "expected oss://<bucket>/<object>")
    return parts.netloc, key


def _json_param(params: dict[str, str], name: str, kind: type) -> Any:
    """A "shrunk" parameter (§7: nested values travel as JSON strings), or None."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        raise _invalid(name, "not JSON") from None
    if not isinstance(value, kind):
        raise _invalid(name, f"expected a JSON {kind.__name__}")
    return value


def _int_param(params: dict[str, str], name: str, bounds: tuple[int, int, int]) -> int:
    default, low, high = bounds
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise _invalid(name, f"an integer from {low} to {high}")
    return int(raw)


#: Parameters of the signature and the gateway, not of the operation (§6).
_GATEWAY_PARAMS = frozenset({
    "AccessKeyId", "Action", "Format", "RegionId", "SecurityToken", "Signature",
    "SignatureMethod", "SignatureNonce", "SignatureType", "SignatureVersion", "Timestamp",
    "Version",
})


def request_definition(params: dict[str, str], nested: dict[str, Any],
                       sampling: dict[str, int]) -> dict[str, Any]:
    """The create request as the caller built it before the SDK's "shrink" step (§7): its own
    parameters only, ``Scenes``/``Tags``/``Notification``/``CredentialConfig`` as the JSON
    values they were, ``Interval``/``MaxFrames`` as numbers."""
    definition: dict[str, Any] = {k: v for k, v in params.items() if k not in _GATEWAY_PARAMS}
    for name, value in nested.items():
        if name in definition:
            definition[name] = value
    for name, value in sampling.items():
        if name in definition:
            definition[name] = value
    return definition


def _event_id() -> str:
    """Shaped like the documented ``05C-1XBQvsG2Tn5kBx2dUWo43******``."""
    return f"{uuid.uuid4().hex[:3].upper()}-1{uuid.uuid4().hex[:26]}"


class ImmService:
    """The IMM moderation operations over the emulator's shared :class:`VideoTasks`.

    ``projects``: the project names that exist (others are ``ResourceNotFound``); None means
    every well-formed name exists, as the emulator has no project API.
    """

    def __init__(self, config: EmulatorConfig, tasks: VideoTasks,
                 projects: Iterable[str] | None = None) -> None:
        self.config = config
        self.tasks = tasks
        self.projects = None if projects is None else frozenset(projects)

    @property
    def store(self) -> TaskStore:
        return self.tasks.store

    def routes(self) -> Routes:
        return {
            (CREATE_ACTIONS[VIDEO_TASK], VERSION): self.create_video_moderation_task,
            (CREATE_ACTIONS[IMAGE_TASK], VERSION): self.create_image_moderation_task,
            ("GetTask", VERSION): self.get_task,
            (RESULT_ACTIONS[VIDEO_TASK], VERSION): self.get_video_moderation_result,
            (RESULT_ACTIONS[IMAGE_TASK], VERSION): self.get_image_moderation_result,
        }

    # --- operations ----------------------------------------------------------------------

    def create_video_moderation_task(self, call: Call) -> Reply:
        return self._create(call, VIDEO_TASK)

    def create_image_moderation_task(self, call: Call) -> Reply:
        return self._create(call, IMAGE_TASK)

    def get_task(self, call: Call) -> Reply:
        """§7.2: status and bookkeeping, never the verdict. No ``Progress``: the SDK's model
        says "the GetTask operation does not support this parameter" (imm20200930 5.0.3).
        ``TaskRequestDefinition`` (with ``RequestDefinition=True``) is the create request
        as one JSON string, nested values as JSON, not the shrunk wire strings."""
        task_type = call.params.get("TaskType")
        if not task_type:
            raise _missing("TaskType")
        task = self._task(call, task_type)
        body = self._envelope(call, task)
        if task.extra.get("tags") is not None:
            body["Tags"] = task.extra["tags"]
        if call.params.get("RequestDefinition", "").lower() == "true":
            body["TaskRequestDefinition"] = json.dumps(task.extra["definition"],
                                                       ensure_ascii=False)
        return Reply(200, body)

    def get_video_moderation_result(self, call: Call) -> Reply:
        return self._result(call, VIDEO_TASK)

    def get_image_moderation_result(self, call: Call) -> Reply:
        return self._result(call, IMAGE_TASK)

    # --- steps ---------------------------------------------------------------------------

    def _project(self, call: Call) -> str:
        project = call.params.get("ProjectName")
        if not project:
            raise _missing("ProjectName")
        if not _PROJECT.match(project):
            raise _invalid("ProjectName")
        if self.projects is not None and project not in self.projects:
            raise _not_found(f"Project {project!r}")
        return project

    def _create(self, call: Call, task_type: str) -> Reply:
        """Check the request, then queue the analysis; a source that cannot be read gives a
        task that is already ``Failed`` (it is the task that reads OSS, not the request)."""
        params = call.params
        project = self._project(call)
        uri = params.get("SourceURI")
        bucket, key = parse_source_uri(uri)
        sampling = {name: _int_param(params, name, bounds)
                    for name, bounds in SAMPLING[task_type].items()}
        scenes = _json_param(params, "Scenes", list)
        if scenes is not None and (not all(isinstance(s, str) for s in scenes)
                                   or not set(scenes) <= SCENES):
            raise _invalid("Scenes", f"known scenes are {', '.join(sorted(SCENES))}")
        tags = _json_param(params, "Tags", dict)
        nested = {"Scenes": scenes, "Tags": tags}
        for name in ("Notification", "CredentialConfig"):
            nested[name] = _json_param(params, name, dict)
        user_data = params.get("UserData")
        if user_data is not None and len(user_data.encode()) > MAX_USER_DATA:
            raise _invalid("UserData", f"at most {MAX_USER_DATA} bytes")
        task = Task(f"{task_type}-{uuid.uuid4()}", None, task_type, extra={
            "project": project, "uri": uri, "scenes": scenes, "tags": tags,
            "user_data": user_data, "event_id": _event_id(), "start": _now_iso(),
            "definition": request_definition(params, nested, sampling),
            **sampling,
        })
        task.retention = self.config.imm_retention.total_seconds()
        try:
            if task_type == VIDEO_TASK:
                path = download_video(self.config, None, bucket, key)
            else:
                data = read_oss_object(key, self.config)
        except BusinessError as exc:
            if exc.code == NOT_ALLOWED:  # a key that leaves the OSS root
                raise _invalid("SourceURI") from None
            self.store.add(task)
            self.store.finish(task.task_id, error=(exc.code, exc.message))
        else:
            if task_type == VIDEO_TASK:
                self.tasks.start(task, path, "", render)
            else:
                self.store.add(task)
                self.tasks.executor.submit(self._analyse_image, task, data)
        body = {"RequestId": call.request_id, "TaskId": task.task_id,
                "EventId": task.extra["event_id"]}
        return Reply(200, body)

    def _analyse_image(self, task: Task, data: bytes) -> None:
        """On the worker thread: the image engine, then the IMM answer or a failure code."""
        try:
            answer, _ = render(task, moderate(data, None), "")
            self.store.finish(task.task_id, data=answer)
        except BusinessError as exc:
            self.store.finish(task.task_id, error=(exc.code, exc.message))
        except Exception:  # the worker thread must survive any engine failure
            logger.exception("emulator analysis of %s failed", task.task_id)
            self.store.finish(task.task_id, error=(ALGO_FAILED, "algorithm failed"))

    def _task(self, call: Call, task_type: str) -> Task:
        """The task named by ``TaskId``, in this project and of ``task_type``."""
        project = self._project(call)
        task_id = call.params.get("TaskId")
        if not task_id:
            raise _missing("TaskId")
        task = self.store.get(task_id)
        if task is None or task.service != task_type or task.extra.get("project") != project:
            raise _not_found("TaskId")
        return task

    def _result(self, call: Call, task_type: str) -> Reply:
        """§7.3: the envelope, plus ``ModerationResult`` once Succeeded."""
        given = call.params.get("TaskType")
        if not given:
            raise _missing("TaskType")
        if given != task_type:
            raise _invalid("TaskType", f"this operation reads {task_type} tasks")
        task = self._task(call, task_type)
        body = self._envelope(call, task)
        if task.state == DONE:
            body["ModerationResult"] = task.data["ModerationResult"]
        return Reply(200, body)

    def _envelope(self, call: Call, task: Task) -> dict[str, Any]:
        """Fields GetTask and the result queries share; ``Code``/``Message`` only on failure."""
        body: dict[str, Any] = {
            "RequestId": call.request_id,
            "ProjectName": task.extra["project"],
            "TaskId": task.task_id,
            "TaskType": task.service,
            "Status": STATUS[task.state],
            "StartTime": task.extra["start"],
            "EventId": task.extra["event_id"],
        }
        if task.finished_at is not None:
            body["EndTime"] = self._wall_time(task.finished_at)
        if task.extra.get("user_data") is not None:
            body["UserData"] = task.extra["user_data"]
        if task.error is not None:
            code, message = task.error
            imm_code, fixed = TASK_FAILURES.get(code, ("InternalError", None))
            body["Code"], body["Message"] = imm_code, fixed or message
        return body

    def _wall_time(self, moment: float) -> str:
        """A store-clock instant as ISO 8601 UTC with milliseconds."""
        wall = time.time() - (self.store.clock() - moment)
        return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace(
            "+00:00", "Z")


def routes(tasks: VideoTasks, projects: Iterable[str] | None = None) -> Routes:
    """The IMM operations, keyed by (action, version), on the emulator's ``tasks``."""
    return ImmService(tasks.config, tasks, projects).routes()


# --- the answer body ---------------------------------------------------------------------


def _hits(labels: Iterable[Label], scenes: list[str] | None) -> dict[str, Label]:
    """Risky labels that IMM reports, by category (the most confident label of each);
    ``scenes`` (when given) keeps only the categories of those scenes."""
    hits: dict[str, Label] = {}
    for label in labels:
        row = category_for_label(label.label)
        if row is None or label.risk_level == "none":
            continue
        if scenes is not None and row.scene not in scenes:
            continue
        best = hits.get(row.category)
        if best is None or label.confidence > best.confidence:
            hits[row.category] = label
    return hits


def sampled(frames: list[Any], interval: int, max_frames: int) -> list[Any]:
    """The engine's 1-second samples at ``Interval`` spacing, at most ``MaxFrames``."""
    return [f for f in frames if round(f.offset) % interval == 0][:max_frames]


def render(task: Task, result: Result, temp_base: str) -> tuple[dict[str, Any], dict]:
    """The ``ModerationResult`` of a finished task (§7.3) from the engine's Result.

    Video: one ``BlockFrames`` element per sampled frame and category, ``Offset`` in whole
    seconds, ``Rate`` the label's confidence. Image: ``Categories`` only. ``Suggestion`` is the
    worst reported risk (high -> block, medium/low -> review, none -> pass: the mapping IMM's
    AI-media-audit results use, api-reference §4.2). No temporary files: IMM has no frame URLs.
    """
    extra = task.extra
    scenes = extra.get("scenes")
    moderation: dict[str, Any] = {"URI": extra["uri"]}
    reported: list[Label] = []
    if task.service == VIDEO_TASK:
        frames = sampled(result.frames, extra["Interval"], extra["MaxFrames"])
        block = []
        for frame in frames:
            for category, label in sorted(_hits(frame.labels, scenes).items()):
                block.append({"Label": category, "Offset": round(frame.offset),
                              "Rate": round(float(label.confidence), 2)})
                reported.append(label)
        categories = sorted({item["Label"] for item in block})
        moderation["Frames"] = {"TotalCount": len(frames), "BlockFrames": block}
    else:
        hits = _hits(result.all_labels(), scenes)
        reported = list(hits.values())
        categories = sorted(hits)
    risk = worst_risk(label.risk_level for label in reported)
    moderation["Suggestion"] = SUGGESTION_OF_RISK[risk]
    moderation["Categories"] = categories
    return {"ModerationResult": moderation}, {}
