"""Draw the sample images the demo and the local-engine tests use.

    python demo_project/sample_media/make_samples.py [--out DIR]

Everything is drawn from code (no downloaded photos, no licences to track), with fixed
seeds so that the outputs are the same on every run:

* ``benign.jpg``   a landscape "photo": sky, sun, mountains, a lake, trees. No text.
* ``qrcode.jpg``   the landscape at dusk with a sign carrying a QR code of a URL.
* ``ad_text.png``  a gift-box advert with an English contact line and a Chinese line.

Needs the Debian fonts ``fonts-dejavu-core`` and ``fonts-wqy-microhei`` (Chinese).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
SIZE = (1280, 720)

QR_URL = "https://example.com/promo?ref=demo"
AD_LINE_EN = "Add me on WhatsApp +1 555 010 7788 for cheap deals"
AD_LINE_ZH = "加微信领取免费礼品"

# font file -> the Debian package that installs it
FONTS = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf": "fonts-dejavu-core",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc": "fonts-wqy-microhei",
}
LATIN_FONT, CJK_FONT = FONTS

# Sky (top, horizon) and mountain ranges (far to near) of the two landscapes.
PALETTES = {
    "day": {
        "sky": ((60, 120, 200), (240, 200, 150)),
        "mountains": ((150, 160, 190), (95, 120, 140), (50, 85, 70)),
    },
    "dusk": {
        "sky": ((40, 40, 110), (250, 150, 90)),
        "mountains": ((120, 110, 150), (80, 90, 110), (45, 60, 60)),
    },
}


def font(path: str, size: int) -> ImageFont.FreeTypeFont:
    if not Path(path).exists():
        sys.exit(f"missing font {path}: install it with `apt-get install {FONTS[path]}`")
    return ImageFont.truetype(path, size)


def vertical_gradient(height: int, width: int, top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    rows = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return np.repeat(rows, width, axis=1)


def ridge(rng: np.random.Generator, width: int, base: float, roughness: float) -> np.ndarray:
    """A mountain skyline: a smoothed random walk around ``base`` (y, pixels)."""
    steps = rng.normal(0, roughness, width).cumsum()
    kernel = np.ones(25) / 25
    smooth = np.convolve(steps - np.linspace(0, steps[-1], width), kernel, mode="same")
    return base + smooth


def landscape(seed: int, dusk: bool = False) -> Image.Image:
    """A lake between mountains under a low sun; ``dusk`` shifts the palette."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    horizon = int(height * 0.62)
    palette = PALETTES["dusk" if dusk else "day"]
    sky_top, sky_low = palette["sky"]
    canvas = np.zeros((height, width, 3), float)
    canvas[:horizon] = vertical_gradient(horizon, width, sky_top, sky_low)

    # The sun: a soft glow and a disc.
    sun_x, sun_y = int(width * 0.68), int(horizon * 0.72)
    yy, xx = np.mgrid[0:height, 0:width]
    dist = np.hypot(xx - sun_x, yy - sun_y)
    glow = np.clip(1 - dist / 260, 0, 1)[..., None] ** 2
    canvas = canvas * (1 - 0.6 * glow) + np.array((255, 235, 190)) * 0.6 * glow
    canvas[dist < 38] = (255, 245, 215)

    # Three mountain ranges, paler with distance.
    for i, color in enumerate(palette["mountains"]):
        line = ridge(rng, width, horizon - 150 + i * 55, 6 + i * 2)
        mask = (yy >= line[None, :]) & (yy < horizon)
        shade = vertical_gradient(height, width, color, tuple(c * 0.75 for c in color))
        canvas[mask] = shade[mask]

    # The lake: the sky mirrored, darkened, with ripples.
    lake = canvas[horizon - (height - horizon) : horizon][::-1] * 0.7 + np.array((10, 25, 45)) * 0.3
    ripple = 1 + 0.06 * np.sin(np.arange(height - horizon)[:, None] ** 1.3 * 0.9 + xx[0] * 0.02)
    canvas[horizon:] = lake * ripple[..., None]

    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    # A shore of pine trees (dark triangles), then a little grain and softness.
    # Irregular spacing and sizes: a regular row reads as "wwwww" to OCR.
    x = 0
    while x < width:
        half, tree_h = int(rng.integers(6, 16)), int(rng.integers(25, 90))
        base_y = horizon + int(rng.integers(-4, 8))
        outline = [(x - half, base_y), (x + half, base_y), (x, base_y - tree_h)]
        draw.polygon(outline, fill=(20, 40, 30))
        x += int(rng.integers(4, 22))
    grain = rng.normal(0, 4, (height, width, 3))
    noisy = np.clip(np.asarray(image, float) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(0.6))


def qr_image(text: str, module_px: int) -> Image.Image:
    """A QR code with its quiet zone, ``module_px`` pixels per module (cv2's encoder)."""
    import cv2  # noqa: PLC0415 - heavy, local extra (only this sample needs it)

    matrix = cv2.QRCodeEncoder.create().encode(text)  # 1 px per module, quiet zone included
    image = Image.fromarray(matrix).convert("RGB")
    return image.resize((image.width * module_px, image.height * module_px), Image.NEAREST)


def qrcode_scene() -> Image.Image:
    scene = landscape(seed=2, dusk=True)
    code = qr_image(QR_URL, module_px=7)
    draw = ImageDraw.Draw(scene)
    # A wooden post and a white sign board holding the code.
    left, top = 150, 190
    post_x = left + code.width // 2
    draw.rectangle([post_x - 10, top + code.width, post_x + 10, 690], fill=(90, 60, 35))
    draw.rectangle([left - 16, top - 16, left + code.width + 16, top + code.height + 16],
                   fill=(235, 230, 220), outline=(60, 40, 25), width=6)
    scene.paste(code, (left, top))
    return scene


def ad_scene() -> Image.Image:
    """An advert: a gift box on a gradient, the English line, the Chinese line."""
    width, height = SIZE
    canvas = vertical_gradient(height, width, (255, 244, 214), (250, 196, 160))
    image = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    # The gift box: body, lid, ribbon, bow.
    draw.rectangle([520, 250, 760, 450], fill=(200, 40, 60))
    draw.rectangle([500, 215, 780, 260], fill=(220, 60, 80))
    draw.rectangle([625, 215, 655, 450], fill=(250, 210, 70))
    draw.ellipse([575, 165, 640, 220], outline=(250, 210, 70), width=12)
    draw.ellipse([640, 165, 705, 220], outline=(250, 210, 70), width=12)
    # A few confetti dots.
    rng = np.random.default_rng(3)
    for x, y in rng.integers((0, 0), (width, 150), size=(40, 2)):
        draw.ellipse([x, y, x + 10, y + 10], fill=tuple(int(c) for c in rng.integers(80, 255, 3)))

    english, chinese = font(LATIN_FONT, 36), font(CJK_FONT, 60)
    for text, face, y, color in (
        (AD_LINE_EN, english, 500, (30, 30, 30)),
        (AD_LINE_ZH, chinese, 580, (170, 20, 30)),
    ):
        text_width = draw.textlength(text, font=face)
        draw.text(((width - text_width) / 2, y), text, font=face, fill=color)
    return image


def write_samples(out_dir: Path = HERE) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs = {
        "benign.jpg": (landscape(seed=1), {"quality": 82, "optimize": True}),
        "qrcode.jpg": (qrcode_scene(), {"quality": 85, "optimize": True}),
        "ad_text.png": (ad_scene().quantize(64, dither=Image.Dither.NONE), {"optimize": True}),
    }
    paths = []
    for name, (image, params) in outputs.items():
        path = out_dir / name
        image.save(path, **params)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder")
    for path in write_samples(parser.parse_args().out):
        print(f"{path}  {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
