"""Alibaba Cloud Content Moderation 1.0 (``Green``, API version 2018-05-09): synchronous image
moderation with ``ImageSyncScan`` (shared/specs/aliyun-protocol.md §2).

ROA: ``POST /green/image/scan?RegionId=<region>`` with a raw JSON body (§2.1, §2.3), signed with
ROA HMAC-SHA1 (§3) exactly as aliyun-python-sdk-core does; lower-camel JSON answer (§2.4) whose
1.0 (scene, label) results are read back into our labels through ``vocabulary``.

OPTIONS: ``ACCESS_KEY_ID``, ``ACCESS_KEY_SECRET`` (required), ``SECURITY_TOKEN`` (STS),
``REGION`` (``ap-southeast-1``), ``ENDPOINT`` (default from the 1.0 endpoint map, §1.1;
``http://127.0.0.1:PORT`` for the emulator; scheme optional, default https), ``TIMEOUT``
((connect, read) seconds, ``(5, 10)``, the SDK defaults §2.1), ``BIZ_TYPE`` (console
business scenario, sent as ``bizType``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...labels import make_label
from ..base import IMAGE, SYNC, Media, ModerationRequest
from ..errors import ProviderError
from ..result import Label, Result, worst_risk
from . import signing
from .client import AliyunProvider, image_result
from .errors import V1_OVERRIDES, error_for
from .vocabulary import BLOCK, PASS, REVIEW, from_v1

ACTION = "ImageSyncScan"
PATH = "/green/image/scan"
DEFAULT_SCENES = ("porn", "qrcode", "ad")
DEFAULT_TIMEOUT = (5.0, 10.0)
USER_AGENT = "django-media-moderation (aliyun-green; python-requests)"
LABEL_SERVICE = "green"

#: 1.0 suggestion -> our risk level. The suggestion is the service's verdict (console
#: thresholds), so it sets the job's risk, as ``Data.RiskLevel`` does for 2.0; the labels
#: themselves keep the risk of ``labels.DEFAULT_LABELS`` (via make_label).
RISK_OF_SUGGESTION = {BLOCK: "high", REVIEW: "medium", PASS: "none"}

# §1.1: regions the 1.0 SDK map sends elsewhere than green.<region>.aliyuncs.com.
_GLOBAL_HOST_REGIONS = frozenset({
    "cn-qingdao", "cn-zhangjiakou", "cn-huhehaote", "cn-chengdu", "cn-hongkong",
    "cn-hangzhou-finance", "cn-shanghai-finance-1", "cn-shenzhen-finance-1", "cn-north-2-gov-1",
})
_SINGAPORE_REGIONS = frozenset({
    "ap-southeast-2", "ap-southeast-3", "ap-southeast-5", "ap-northeast-1", "ap-south-1",
    "us-east-1", "eu-central-1", "eu-west-1", "me-east-1",
})


def default_endpoint(region: str) -> str:
    """The host aliyun-python-sdk-green resolves for ``region`` (§1.1)."""
    if region in _GLOBAL_HOST_REGIONS:
        return "green.aliyuncs.com"
    if region in _SINGAPORE_REGIONS:
        return "green.ap-southeast-1.aliyuncs.com"
    return f"green.{region}.aliyuncs.com"


def scan_body(url: str, request: ModerationRequest, biz_type: str = "") -> bytes:
    """The ImageSyncScan JSON body (§2.3); ``dataId`` and ``bizType`` only when set."""
    task: dict[str, str] = {"url": url}
    if request.data_id:
        task = {"dataId": request.data_id, **task}
    body: dict[str, Any] = {"scenes": list(request.scenes or DEFAULT_SCENES), "tasks": [task]}
    if biz_type:
        body["bizType"] = biz_type
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def parse_scan_response(body: Mapping[str, Any]) -> Result:
    """A ``code`` 200 ImageSyncScan body (§2.4) as a one-frame Result.

    A failed task (``data[0].code`` != 200, §2.6) raises the error of ``errors.ERRORS``.
    ``normal`` results give no label; the job's risk is the worst suggestion's.
    """
    data = body.get("data")
    task = data[0] if isinstance(data, list) and data else None
    if not isinstance(task, Mapping):
        raise ProviderError("ImageSyncScan answered code 200 without data", code="bad_response")
    if str(task.get("code")) != "200":
        raise error_for(
            task.get("code"), str(task.get("msg") or ""),
            request_id=str(body.get("requestId") or ""), overrides=V1_OVERRIDES,
        )
    labels: list[Label] = []
    risks: list[str] = []
    for item in task.get("results") or []:
        if not isinstance(item, Mapping):
            continue
        scene, suggestion = str(item.get("scene") or ""), str(item.get("suggestion") or "")
        risks.append(RISK_OF_SUGGESTION.get(suggestion, "medium"))  # unknown: look at it
        name = from_v1(scene, str(item.get("label") or ""))
        if name is not None:
            labels.append(make_label(name, float(item.get("rate") or 0), LABEL_SERVICE, scene))
    risk = worst_risk(risks)
    return image_result(labels, risk, body)


class GreenProvider(AliyunProvider):
    """Content Moderation 1.0 ImageSyncScan over ``requests`` (no Alibaba SDK needed)."""

    capabilities = frozenset({IMAGE, SYNC})
    default_scenes = DEFAULT_SCENES
    default_timeout = DEFAULT_TIMEOUT
    default_endpoint = staticmethod(default_endpoint)

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        """``ImageSyncScan`` of the media's URL, finished at once."""
        url = self.public_url(media)
        biz_type = str(self._opt("BIZ_TYPE") or request.biz_type)
        return parse_scan_response(self.call(ACTION, PATH, scan_body(url, request, biz_type)))

    def call(self, action: str, path: str, body: bytes) -> dict[str, Any]:
        """POST one signed ROA operation (§2.1, §3); the JSON body when ``code`` is 200.

        Gateway errors (non-2xx, §8.1) and a non-200 envelope ``code`` (§2.6) raise the error
        ``errors.ERRORS`` maps them to; no answer raises ``ProviderError``.
        """
        key_id, secret, token = self.credentials()
        scheme, host = self.endpoint
        query = {"RegionId": self.region}
        headers = signing.sign_roa(
            "POST", path, query,
            {
                "User-Agent": USER_AGENT,
                "x-acs-action": action,
                "x-acs-region-id": self.region,
                "Content-Type": "application/json",
            },
            body, key_id, secret,
            security_token=token,
        )
        url = f"{scheme}://{host}{path}?{signing.form_encode(query)}"
        return self.post(url, body, headers)
