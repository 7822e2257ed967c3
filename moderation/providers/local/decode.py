"""Safe image decoding: bytes in, a BGR ``uint8`` array out, or a :class:`MediaError`.

Uploads are untrusted. Limits are checked in order of cost: byte count first, then the
header's pixel count before any pixel is decoded (a 50 KB PNG can claim 100 000 x 100 000
pixels). Pillow's process-wide settings (``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``)
are left alone; its bomb error and warning are caught and mapped instead.

Working size. Pictures are analysed at most ``working_size`` pixels on their longest side
(4096 by default, ``IMAGE_WORKING_SIZE``): a JPEG is decoded already reduced by its
decoder (``draft``: 1/2, 1/4 or 1/8 scale, never below the working size), any other
format is decoded once and reduced at once, so that at most one full-size copy exists and
nothing downstream (PDQ, NudeNet, QR, OCR, thumbnails) sees more. A 36-megapixel PNG took
a worker to 1.1 GB before (full-size RGB copies, and PDQ's float buffers), about 0.55 GB
now (bench/big_images.py). OCR reads at ``ocr_width`` (960) and NudeNet at 320 anyway.

No OpenCV here: decoding may run in a process that must stay free of cv2 threads (P2).
"""

from __future__ import annotations

import io
import math
import struct
import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MediaError

BgrImage = NDArray[np.uint8]

# Transparent pixels become white: most transparent uploads are logos or text on a page.
BACKGROUND = (255, 255, 255)
ORIENTATION = 0x0112  # the EXIF tag
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# Modes Pillow converts to RGB well enough on its own.
SIMPLE_MODES = frozenset({"RGB", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV"})
# Leading bytes of JPEG and TIFF: a file starting so is an image, maybe a broken one.
SIGNATURES = (b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")
# Longest side, in pixels, that the engine analyses (IMAGE_WORKING_SIZE).
WORKING_SIZE = 4096
# Pillow's errors for broken pixel data.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError)
# Modes Pillow resamples well (others are converted first: "P" would resample NEAREST).
RESIZABLE_MODES = frozenset({"RGB", "RGBA", "L", "LA", "CMYK", "YCbCr"})


def decode_image(
    data: bytes, *, max_bytes: int, max_pixels: int, working_size: int = WORKING_SIZE
) -> BgrImage:
    """Decode an image file into a contiguous BGR ``uint8`` array (first frame only), at
    most ``working_size`` pixels on its longest side.

    EXIF orientation is applied, so the array looks as the uploader saw the picture.
    """
    image = open_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    return decode_opened(image, working_size)


def decode_opened(image: Image.Image, working_size: int = WORKING_SIZE) -> BgrImage:
    """The first frame of an image from :func:`open_image`, as :func:`decode_image` does."""
    try:
        draft_for(image, working_size)
        image.load()
        return to_bgr(reduce_to(image, working_size))
    except DECODE_ERRORS as exc:
        message = f"the image is truncated or corrupt ({exc})"
        raise MediaError(message, code="corrupt_image") from exc


def open_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The image with its header read and checked (bytes, pixels); no pixel decoded yet."""
    if not data:
        raise MediaError("the file is empty", code="empty_file")
    if len(data) > max_bytes:
        raise MediaError(
            f"the file has {len(data)} bytes, more than the limit of {max_bytes}",
            code="file_too_large",
        )
    try:
        image = _open(data, max_pixels)
        _check_size(image.size, max_pixels)
    except MediaError:
        raise
    except DECODE_ERRORS as exc:
        message = f"the image is truncated or corrupt ({exc})"
        raise MediaError(message, code="corrupt_image") from exc
    return image


def frame_count(image: Image.Image) -> int:
    """Frames in the file (GIF: counted by skipping through the file, nothing decoded)."""
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except DECODE_ERRORS as exc:
        raise MediaError(f"the animation is corrupt ({exc})", code="corrupt_image") from exc


def draft_for(image: Image.Image, working_size: int) -> None:
    """Ask a JPEG decoder for the smallest DCT scale that stays >= the working size."""
    width, height = image.size
    scale = working_size / max(width, height)
    if image.format == "JPEG" and scale < 1:
        image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))


def reduce_to(image: Image.Image, working_size: int) -> Image.Image:
    """The loaded image, its longest side brought down to ``working_size`` (LANCZOS after
    an integer box reduction, which keeps the cost and the copies small)."""
    width, height = image.size
    scale = working_size / max(width, height)
    if scale >= 1:
        return image
    if image.mode not in RESIZABLE_MODES:
        image = image.convert("RGBA" if _has_alpha(image) else "RGB")
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    reduced = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    reduced.info = dict(image.info)  # keeps the EXIF orientation for _upright
    return reduced


def to_bgr(image: Image.Image) -> BgrImage:
    """A contiguous BGR ``uint8`` array of a loaded image, EXIF orientation applied."""
    rgb = _to_rgb(_upright(image))
    return np.ascontiguousarray(rgb[..., ::-1])


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ALPHA_MODES or "transparency" in image.info


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only. Pillow's own bomb limit applies too, whichever is lower."""
    try:
        with warnings.catch_warnings():
            # Pillow warns between its MAX_IMAGE_PIXELS and twice that: an error here.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        # Pillow refuses 0x0 images and broken headers alike; tell them apart ourselves.
        size = _declared_size(data)
        if size is not None:
            _check_size(size, max_pixels)
        if size is not None or data.startswith(SIGNATURES) or data[8:12] == b"WEBP":
            raise MediaError("the image header is corrupt", code="corrupt_image") from exc
        raise MediaError("the file is not an image in a known format", code="not_an_image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"the image is too large ({exc})", code="image_too_large") from exc


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF or BMP header, read without Pillow."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)  # a negative height means top-down rows
    return None


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise MediaError(f"the image has no pixels ({width}x{height})", code="empty_image")
    if width * height > max_pixels:
        raise MediaError(
            f"the image has {width}x{height} pixels, more than the limit of {max_pixels}",
            code="image_too_large",
        )


def _upright(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a broken EXIF block is ignored, not fatal. An upright
    image is returned as it is (exif_transpose would copy it)."""
    try:
        if image.getexif().get(ORIENTATION, 1) in (1, None):
            return image
        return ImageOps.exif_transpose(image) or image
    except Exception:  # any EXIF parsing error leaves the image as stored
        return image


def _to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    """An RGB ``uint8`` array for any Pillow mode (palette, alpha, 16-bit, float, CMYK)."""
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ALPHA_MODES:
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        if rgba.getchannel("A").getextrema() == (255, 255):  # opaque: nothing to paste
            return np.asarray(rgba.convert("RGB"))
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return np.asarray(canvas)
    if mode == "RGB":
        return np.asarray(image)  # no convert: one copy fewer
    if mode in SIMPLE_MODES:
        return np.asarray(image.convert("RGB"))
    if mode.startswith(("I", "F")):
        gray = _scale_to_uint8(np.asarray(image))
        return np.repeat(gray[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def _scale_to_uint8(values: NDArray) -> NDArray[np.uint8]:
    """Map 16/32-bit integer or float luminance onto 0..255 (Pillow's own convert clips)."""
    top = float(values.max()) if values.size else 0.0
    if np.issubdtype(values.dtype, np.floating) and top <= 1.0:
        scale = 255.0  # float images are usually 0..1
    elif top > 255:
        scale = 255.0 / max(top, 65535.0)
    else:
        scale = 1.0
    return np.clip(values.astype(np.float64) * scale, 0, 255).astype(np.uint8)


def make_thumbnail(bgr: BgrImage, size: int, quality: int = 80) -> bytes:
    """JPEG bytes of the image with its longest side ``size`` (never enlarged)."""
    image = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
