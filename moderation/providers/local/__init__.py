"""The ``local`` provider: moderation on this machine, offline, with no account anywhere.

Images go through :mod:`.engine` (one frame; animated ones frame by frame through
:mod:`.animation`); videos, audio, frame sequences and live streams through
:mod:`.video`, which reuses the image engine per frame and :mod:`.speech` for the
soundtrack. The heavy imports (onnxruntime, cv2, NudeNet,
RapidOCR, PyAV, pocketsphinx) happen on first use, not here.

OPTIONS (lowercase keys) are documented in docs/settings.md; a job's own options
(``interval``, ``max_frames``, ``audio``, ...) override them per call.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from ...remote import check_remote_url
from ..base import (
    AUDIO,
    FRAMES,
    IMAGE,
    LIVE,
    SYNC,
    VIDEO,
    Media,
    ModerationRequest,
    Provider,
    ProviderContext,
)
from ..errors import MediaError
from ..result import Frame, Result, worst_risk
from .checks import local_checks
from .text_boxes import text_boxes

# Provider option -> the MODERATION setting that gives its default.
SETTING_DEFAULTS = {
    "max_image_bytes": "MAX_IMAGE_BYTES",
    "max_image_pixels": "MAX_IMAGE_PIXELS",
    "image_working_size": "IMAGE_WORKING_SIZE",
    "max_animation_pixels": "MAX_ANIMATION_PIXELS",
    "thumbnail_size": "THUMBNAIL_SIZE",
    "thumbnail_all_frames": "THUMBNAIL_ALL_FRAMES",
    "interval": "VIDEO_INTERVAL",
    "max_frames": "VIDEO_MAX_FRAMES",
    "max_video_bytes": "MAX_VIDEO_BYTES",
    "max_file_duration": "MAX_DURATION",
    "chunk_seconds": "LIVE_CHUNK_SECONDS",
    "max_duration": "LIVE_MAX_DURATION",
    "detectors": "DETECTORS",
}


class LocalProvider(Provider):
    capabilities = frozenset({IMAGE, VIDEO, AUDIO, FRAMES, LIVE, SYNC})
    consults_libraries = True
    default_scenes = ("porn", "qrcode", "ad")
    # 2: animations frame by frame, samples over the whole file, images at a working size
    # (version 1 looked at an animation's first frame and at a video's first 200 samples)
    engine_version = "2"

    @classmethod
    def check(cls, alias: str, options: dict[str, Any],
              context: ProviderContext | None = None) -> list:
        """E009 (the ``local`` extra installed), E021 (the speech recogniser), E020 (the
        detectors build) and W004 (scenes asked of this alias that no detector covers)."""
        return super().check(alias, options, context) + local_checks(
            alias, options, context, cls.default_scenes)

    @property  # read-only here: computed from the site's DETECTORS
    def result_version(self) -> str:  # type: ignore[override]
        """The engine's version, and a digest of the site's DETECTORS when it has some: a
        result made before a detector was added (that skipped its scene) is not reused.
        A registration's own ``detectors`` option is part of the job's options already."""
        from .detectors import normalize_specs  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it

        configured = self.options.get("detectors")
        if configured is None:
            configured = self.context.settings["DETECTORS"]
        try:
            specs = normalize_specs(configured)
        except ValueError:  # reported by check E020; such jobs fail with bad_detector
            return f"{self.engine_version}+detectors:invalid"
        if not specs:
            return self.engine_version

        digest = hashlib.sha256(repr(specs).encode()).hexdigest()[:12]
        return f"{self.engine_version}+detectors:{digest}"

    def settings_for(self, request: ModerationRequest) -> dict[str, Any]:
        """Settings defaults, then provider OPTIONS, then the job's own options."""
        merged = {key: self.context.settings[setting]
                  for key, setting in SETTING_DEFAULTS.items()}
        merged.update(self.options)
        merged.update(request.options or {})
        return merged

    def _option(self, name: str, setting: str) -> int:
        value = self.options.get(name)
        return int(value if value is not None else self.context.settings[setting])

    def keywords(self, request: ModerationRequest) -> dict[str, list[str]]:
        """The request's own keywords win over the ``KEYWORDS`` setting."""
        if "keywords" in request.options:
            return request.options["keywords"] or {}
        return self.context.settings["KEYWORDS"] or {}

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        self.check_media(media)
        if media.kind == IMAGE or (media.kind == FRAMES and media.frames is None):
            return self._image(media, request)  # a frames job given one file: that file
        from . import video  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it

        options = self.settings_for(request)
        common = {"scenes": request.scenes or self.default_scenes,
                  "libraries": request.libraries, "keywords": self.keywords(request),
                  "options": options, "progress": request.report_progress}
        if media.kind == FRAMES:
            from .animation import refuse_animated  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it

            if not media.frames:
                raise MediaError("the frame sequence has no frames", code="no_frames")
            refuse_animated(media.frames, video.MAX_FRAME_IMAGE_BYTES,
                            video.MAX_FRAME_IMAGE_PIXELS)
            return video.analyse_frames(media.frames, **common)
        source = media.path or media.open()
        try:
            return video.analyse_video(source, audio=bool(options.get("audio", True)),
                                       **common)
        finally:
            if not isinstance(source, str):
                source.close()

    def stream(self, media: Media, request: ModerationRequest) -> Iterator[Result]:
        from . import video  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it

        check_remote_url(media.url)
        options = self.settings_for(request)
        return video.stream_live(
            media.url, scenes=list(request.scenes or self.default_scenes),
            audio=bool(options.get("audio", True)), libraries=request.libraries,
            keywords=self.keywords(request), options=options,
            allow_private_addresses=bool(self.context.settings["ALLOW_PRIVATE_ADDRESSES"]),
        )

    def _image(self, media: Media, request: ModerationRequest) -> Result:
        """A still image as one frame at offset 0; an animated one frame by frame."""
        from .animation import analyse_animation, is_animated  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it
        from .decode import decode_opened, make_thumbnail, open_image  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it
        from .engine import get_engine, timed  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it
        from .jobs import engine_options  # noqa: PLC0415 - numpy (local extra); E009 needs this module without it

        max_bytes = self._option("max_image_bytes", "MAX_IMAGE_BYTES")
        working_size = self._option("image_working_size", "IMAGE_WORKING_SIZE")
        timings: dict[str, float] = {}
        with timed(timings, "decode"):
            with media.open() as fh:
                data = fh.read(max_bytes + 1)  # one byte more tells "too large" apart
            image = open_image(
                data,
                max_bytes=max_bytes,
                max_pixels=self._option("max_image_pixels", "MAX_IMAGE_PIXELS"),
            )
            animated = is_animated(image)
            if not animated:
                bgr = decode_opened(image, working_size)
        if animated:
            return analyse_animation(
                image, scenes=list(request.scenes or self.default_scenes),
                libraries=request.libraries, keywords=self.keywords(request),
                options=self.settings_for(request),
            )

        labels, details = get_engine(engine_options(self.settings_for(request))).analyse_image(
            bgr,
            request.scenes or self.default_scenes,
            libraries=request.libraries,
            keywords=self.keywords(request),
        )
        with timed(timings, "thumbnail"):
            thumbnail = make_thumbnail(bgr, self._option("thumbnail_size", "THUMBNAIL_SIZE"))
        details["timings_ms"].update(timings)

        risk = worst_risk(label.risk_level for label in labels)
        pdq = details.get("pdq") or {}
        frame = Frame(offset=0.0, risk_level=risk, labels=list(labels), image=thumbnail,
                      pdq=pdq.get("hash", ""), pdq_quality=pdq.get("quality"),
                      text_boxes=text_boxes(details))
        return Result(
            status="done",
            risk_level=risk,
            labels=list(labels),
            frames=[frame],
            raw={"provider": "local", "media": "image", **details},
        )
