"""Alibaba Cloud Content Moderation 1.0 (``Green``, API version 2018-05-09): images (sync or
async), video files and live streams (async), frame sequences (sync), feedback and callbacks
(shared/specs/aliyun-protocol.md §2; aliyun-api-reference.md §2).

ROA: ``POST /green/...?RegionId=<region>`` with a raw JSON body (§2.1, §2.3), signed with ROA
HMAC-SHA1 (§3) exactly as aliyun-python-sdk-core does; lower-camel JSON answers (§2.4) whose
1.0 (scene, label) results are read back into our labels through ``vocabulary``. Bodies and
parsers live in ``green_tasks`` (shared, images), ``green_video`` and ``green_feedback``; this
module picks the operation and sends it.

OPTIONS: ``ACCESS_KEY_ID``, ``ACCESS_KEY_SECRET`` (required), ``SECURITY_TOKEN`` (STS),
``REGION`` (``ap-southeast-1``), ``ENDPOINT`` (default from the 1.0 endpoint map, §1.1;
``http://127.0.0.1:PORT`` for the emulator; scheme optional, default https), ``TIMEOUT``
((connect, read) seconds, ``(5, 10)``, the SDK defaults §2.1), ``BIZ_TYPE`` (console
business scenario, sent as ``bizType``), ``ASYNC_IMAGES`` (images through
``/green/image/asyncscan`` + polling/callback instead of the sync scan; a registration can ask
the same with ``options={"async": True}``), ``CRYPT_TYPE`` (callback checksum ``SHA256`` |
``SM3``), ``UID`` (account id the callback checksum is verified with), ``LIVE_POLL_INTERVAL``
(seconds between result queries of a live stream, 5).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from ..base import (
    CALLBACK,
    FEEDBACK,
    FRAMES,
    IMAGE,
    LIVE,
    VIDEO,
    Feedback,
    Media,
    ModerationRequest,
)
from ..errors import ModerationError, NotSupported, ProviderError
from ..result import Result
from . import green_feedback, green_video, signing
from .client import AliyunProvider
from .green_tasks import (
    RISK_OF_SUGGESTION,
    dumps,
    first_task,
    image_body,
    parse_image_task,
    raise_for_task,
    submitted,
    task_kind,
)

__all__ = ["RISK_OF_SUGGESTION", "GreenProvider", "default_endpoint", "parse_scan_response",
           "scan_body"]

ACTION, PATH = "ImageSyncScan", "/green/image/scan"
ASYNC_ACTION, ASYNC_PATH = "ImageAsyncScan", "/green/image/asyncscan"
RESULTS_ACTION, RESULTS_PATH = "ImageAsyncScanResults", "/green/image/results"
DEFAULT_SCENES = ("porn", "qrcode", "ad")
DEFAULT_TIMEOUT = (5.0, 10.0)
STREAM_SCHEMES = ("http", "https", "rtmp", "rtsp")
LIVE_POLL_INTERVAL = 5.0  # §2.6: "poll again after ~5 s"
USER_AGENT = "django-media-moderation (aliyun-green; python-requests)"

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
    return image_body(url, request, request.scenes or DEFAULT_SCENES, biz_type)


def parse_scan_response(body: Mapping[str, Any]) -> Result:
    """A ``code`` 200 ImageSyncScan body (§2.4) as a one-frame Result; a failed task
    (``data[0].code`` != 200, §2.6) raises the error of ``errors.ERRORS``."""
    task = first_task(body, ACTION)
    return parse_image_task(task, body, str(body.get("requestId") or ""))


def frame_urls(request: ModerationRequest) -> list[tuple[float, str]]:
    """(offset, URL) of a frame sequence, from the job option ``frame_urls``. Frames of an
    ad-hoc job live in private storage and have no URL the service could fetch."""
    given = (request.options or {}).get("frame_urls") or []
    frames = [(float(offset), str(url)) for offset, url in given]
    if not frames or not all(url.startswith(("http://", "https://")) for _, url in frames):
        raise NotSupported(
            "Content Moderation 1.0 scans frame sequences by URL (/green/video/syncscan); "
            "this job's frames have no http(s) URLs", code="no_frame_urls")
    return frames


class GreenProvider(AliyunProvider):
    """Content Moderation 1.0 over ``requests`` (no Alibaba SDK needed)."""

    # Not ``sync``: images are answered at once unless ASYNC_IMAGES or a job's ``async``
    # option asks for the async scan, and a sync provider must always answer them at once.
    capabilities = frozenset({IMAGE, VIDEO, FRAMES, LIVE, FEEDBACK, CALLBACK})
    product = "green"  # 1.0 quotas are the account's, apart from 2.0's (§2.2 QPS)
    default_scenes = DEFAULT_SCENES
    default_timeout = DEFAULT_TIMEOUT
    default_endpoint = staticmethod(default_endpoint)

    # --- options -----------------------------------------------------------------------

    @property
    def biz_type(self) -> str:
        return str(self._opt("BIZ_TYPE"))

    @property
    def crypt_type(self) -> str:
        return str(self._opt("CRYPT_TYPE"))

    def async_images(self, request: ModerationRequest) -> bool:
        return bool(self._opt("ASYNC_IMAGES", False) or (request.options or {}).get("async"))

    @staticmethod
    def stream_url(media: Media) -> str:
        """A live stream's URL: HTTP(S) (HLS, HTTP-FLV), RTMP or RTSP (§2.6)."""
        if urlsplit(media.url).scheme.lower() not in STREAM_SCHEMES:
            raise NotSupported(f"{media.url!r} is not a stream URL 1.0 can read "
                               f"({', '.join(STREAM_SCHEMES)})", code="unsupported_url")
        return media.url

    # --- moderation --------------------------------------------------------------------

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        """An image: the sync scan (done at once) or the async one; a video or live stream:
        ``VideoAsyncScan``; frames: ``VideoSyncScan`` of their URLs. Async answers are
        ``in_progress`` with the service's task id (see :meth:`fetch`)."""
        if media.kind == FRAMES:
            return self.scan_frames(frame_urls(request), request)
        url = self.stream_url(media) if media.kind == LIVE else self.public_url(media)
        scenes = request.scenes or DEFAULT_SCENES
        biz_type = self.biz_type or request.biz_type
        if media.kind in (VIDEO, LIVE):
            live = media.kind == LIVE
            if live:  # stream() polls the task itself; a callback would race with it
                request = replace(request, callback_url="")
            body = green_video.async_body(
                url, request, scenes, audio=bool((request.options or {}).get("audio", True)),
                live=live, biz_type=biz_type, crypt_type=self.crypt_type)
            return submitted(self.call(green_video.SUBMIT_ACTION, green_video.SUBMIT_PATH,
                                       body), green_video.SUBMIT_ACTION)
        if self.async_images(request):
            body = image_body(url, request, scenes, biz_type, self.crypt_type,
                              asynchronous=True)
            return submitted(self.call(ASYNC_ACTION, ASYNC_PATH, body), ASYNC_ACTION)
        return parse_scan_response(self.call(ACTION, PATH, image_body(url, request, scenes,
                                                                      biz_type)))

    def fetch(self, task_id: str, request: ModerationRequest | None = None) -> Result:
        """The image or video results query (by the task id's prefix): ``in_progress`` on a
        per-task 280, the result on 200, else the task's error (594/expired: ``Expired``)."""
        if task_kind(task_id) == "image":
            action, path, parse = RESULTS_ACTION, RESULTS_PATH, parse_image_task
        else:
            action, path = green_video.RESULTS_ACTION, green_video.RESULTS_PATH
            parse = green_video.parse_video_task
        body = self.call(action, path, dumps([task_id]))
        return parse(first_task(body, action), body, str(body.get("requestId") or ""))

    def scan_frames(self, frames: list[tuple[float, str]], request: ModerationRequest) -> Result:
        """``VideoSyncScan`` of frame URLs at offsets: finished at once, no audio."""
        body = green_video.sync_body(frames, request, request.scenes or DEFAULT_SCENES,
                                     self.biz_type or request.biz_type)
        answer = self.call(green_video.SYNC_ACTION, green_video.SYNC_PATH, body)
        return green_video.parse_video_task(first_task(answer, green_video.SYNC_ACTION),
                                            answer, str(answer.get("requestId") or ""))

    def stream(self, media: Media, request: ModerationRequest) -> Iterator[Result]:
        """A live stream (``live: true``): submit, then poll every ``LIVE_POLL_INTERVAL``;
        frames and sentences a 280 answer already carries are yielded as they come, the rest
        when the task is done. Closing the iterator early cancels the task."""
        task_id = self.submit(Media(media.name, LIVE, url=media.url), request).task_id
        return self._follow(task_id, request)

    def _follow(self, task_id: str, request: ModerationRequest) -> Iterator[Result]:
        interval = float(self._opt("LIVE_POLL_INTERVAL", LIVE_POLL_INTERVAL))
        seen_frames: set[float] = set()
        seen_slices: set[tuple[float, float]] = set()
        finished = False
        try:
            while True:
                result = self.fetch(task_id, request)
                result.frames = [f for f in result.frames if f.offset not in seen_frames]
                result.slices = [s for s in result.slices if (s.start, s.end) not in seen_slices]
                seen_frames.update(f.offset for f in result.frames)
                seen_slices.update((s.start, s.end) for s in result.slices)
                finished = result.finished
                yield result
                if finished:
                    return
                time.sleep(interval)
        finally:
            if not finished:  # a failed cancel is harmless: the task ends after 24 h
                with suppress(ModerationError):
                    self.cancel(task_id)

    def cancel(self, task_id: str) -> None:
        """``VideoCancelScan``: stop a live task (only streams can be cancelled, §2.3)."""
        body = self.call(green_video.CANCEL_ACTION, green_video.CANCEL_PATH, dumps([task_id]))
        raise_for_task(first_task(body, green_video.CANCEL_ACTION),
                       str(body.get("requestId") or ""))

    def feedback(self, feedback: Feedback) -> None:
        """``/green/image/feedback`` for images, ``/green/video/feedback`` (with frames) for
        the other kinds; counted against the account's feedback budget."""
        if feedback.kind == IMAGE:
            action, path = green_feedback.IMAGE_ACTION, green_feedback.IMAGE_PATH
            body = green_feedback.image_body(feedback, DEFAULT_SCENES)
        else:
            action, path = green_feedback.VIDEO_ACTION, green_feedback.VIDEO_PATH
            body = green_feedback.video_body(feedback, DEFAULT_SCENES)
        self.call(action, path, body, rate="feedback")

    def parse_callback(self, content: dict[str, Any]) -> Result:
        """A verified callback ``content`` (one ``data[]`` element, §2.11) as a finished
        Result; a failed task raises its error, an unfinished one ``ProviderError``."""
        task_id = str(content.get("taskId") or "")
        if task_kind(task_id) == "image":
            result = parse_image_task(content, content)
        else:
            result = green_video.parse_video_task(content, content)
        if not result.finished:
            raise ProviderError(f"callback for unfinished task {task_id!r}", code="processing")
        return result

    def call(self, action: str, path: str, body: bytes, *,
             rate: str = "request") -> dict[str, Any]:
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
        return self.post(url, body, headers, rate=rate)
