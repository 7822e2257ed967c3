"""Image decoding, PDQ hashing and thumbnails for the app's own use (hash libraries,
feedback), as the local engine does them: the one module outside ``providers/`` that
reaches the engine.

Hashing needs the ``local`` extra (numpy, OpenCV, pdqhash), so the engine's modules are
imported when a function is called, never when this module is: the core runs without the
extra, and only the features that hash images need it.
"""

from __future__ import annotations

from typing import Any

from .conf import moderation_settings
from .providers.errors import NotSupported


def image_pdq(data: bytes) -> tuple[str, int, Any]:
    """PDQ hex and quality of an image file, hashed as the local engine hashes it (at its
    working size, EXIF orientation applied), and the decoded BGR array. MediaError when
    the bytes are no usable image; NotSupported (``local_extra_missing``) on a site
    without the ``local`` extra."""
    try:
        from .providers.local.decode import decode_image  # noqa: PLC0415 - heavy, local extra (numpy)
        from .providers.local.engine import pdq_hash  # noqa: PLC0415 - heavy, local extra (pdqhash)
    except ImportError as exc:
        raise NotSupported(
            f"hashing images (hash libraries, feedback) needs the local extra: {exc}; "
            "pip install 'django-media-moderation[local]'", code="local_extra_missing") from exc

    bgr = decode_image(data, max_bytes=int(moderation_settings.MAX_IMAGE_BYTES),
                       max_pixels=int(moderation_settings.MAX_IMAGE_PIXELS),
                       working_size=int(moderation_settings.IMAGE_WORKING_SIZE))
    pdq, quality = pdq_hash(bgr)
    return pdq, int(quality), bgr


def is_animated(data: bytes) -> bool:
    """More than one frame (GIF, WebP, APNG); True when unreadable (let the provider judge)."""
    from .providers.local.decode import frame_count, open_image  # noqa: PLC0415 - heavy, local extra

    try:
        image = open_image(data, max_bytes=len(data), max_pixels=1 << 62)
        return frame_count(image) > 1
    except Exception:  # unreadable now: let the provider judge the whole file
        return True


def thumbnail(bgr: Any) -> bytes:
    """A JPEG thumbnail of a decoded image, ``THUMBNAIL_SIZE`` px on its longest side."""
    from .providers.local.decode import make_thumbnail  # noqa: PLC0415 - heavy, local extra

    return make_thumbnail(bgr, int(moderation_settings.THUMBNAIL_SIZE))


__all__ = ["image_pdq", "is_animated", "thumbnail"]
