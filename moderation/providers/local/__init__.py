"""The ``local`` provider: moderation on this machine, offline, with no account anywhere.

Images only for now (video and audio come later and will reuse
:meth:`~moderation.providers.local.engine.LocalEngine.analyse_image` per frame).
The heavy imports (onnxruntime, cv2, NudeNet, RapidOCR) happen on first use, not here.

OPTIONS (lowercase keys): ``ocr_width`` (960), ``intra_op_threads`` (1),
``nudenet_resolution`` (320), ``pdq_threshold`` (31), ``max_image_bytes`` and
``max_image_pixels`` (from ``MAX_IMAGE_BYTES`` / ``MAX_IMAGE_PIXELS``),
``thumbnail_size`` (from ``THUMBNAIL_SIZE``).
"""

from __future__ import annotations

from ...conf import moderation_settings
from ...policy import suggestion_for
from ..base import IMAGE, SYNC, Media, ModerationRequest, Provider
from ..result import Frame, Result, worst_risk


class LocalProvider(Provider):
    capabilities = frozenset({IMAGE, SYNC})
    default_scenes = ("porn", "qrcode", "ad")

    def _option(self, name: str, setting: str) -> int:
        value = self.options.get(name)
        return int(value if value is not None else getattr(moderation_settings, setting))

    def keywords(self, request: ModerationRequest) -> dict[str, list[str]]:
        """The request's own keywords win over the ``KEYWORDS`` setting."""
        if "keywords" in request.options:
            return request.options["keywords"] or {}
        return moderation_settings.KEYWORDS or {}

    def submit(self, media: Media, request: ModerationRequest) -> Result:
        from .decode import decode_image, make_thumbnail
        from .engine import get_engine, timed

        self.check_media(media)
        max_bytes = self._option("max_image_bytes", "MAX_IMAGE_BYTES")
        timings: dict[str, float] = {}
        with timed(timings, "decode"):
            with media.open() as fh:
                data = fh.read(max_bytes + 1)  # one byte more tells "too large" apart
            bgr = decode_image(
                data,
                max_bytes=max_bytes,
                max_pixels=self._option("max_image_pixels", "MAX_IMAGE_PIXELS"),
            )

        labels, details = get_engine(self.options).analyse_image(
            bgr,
            request.scenes or self.default_scenes,
            libraries=request.libraries,
            keywords=self.keywords(request),
        )
        with timed(timings, "thumbnail"):
            thumbnail = make_thumbnail(bgr, self._option("thumbnail_size", "THUMBNAIL_SIZE"))
        details["timings_ms"].update(timings)

        risk = worst_risk(label.risk_level for label in labels)
        frame = Frame(offset=0.0, risk_level=risk, labels=list(labels), image=thumbnail)
        return Result(
            status="done",
            suggestion=suggestion_for(risk),
            risk_level=risk,
            labels=list(labels),
            frames=[frame],
            raw={"provider": "local", "media": "image", **details},
        )
