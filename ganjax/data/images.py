"""One PIL image -> the model's uint8 square: any mode to L or RGB, center crop, Lanczos resize.

Shared by image folders and TFDS datasets so that both see pixels the same way.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

# Transparent pixels are composited over white, the usual display of transparency (browsers,
# viewers); an alpha channel is never passed on as a color.
BACKGROUND = 255


def to_channels(image: Image.Image, channels: int) -> Image.Image:
    """`image` as 'L' (channels=1) or 'RGB' (channels=3).

    Palette and alpha images are composited over BACKGROUND, CMYK goes through PIL's conversion,
    16-bit integer images (PIL's I;16 and I modes) are scaled by 1/257 (65535 -> 255), not clipped.
    """
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8), "L")
    elif (mode == "P" and "transparency" in image.info) or mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (BACKGROUND,) * 3 + (255,))
        image = Image.alpha_composite(background, image)
    if image.mode not in ("L", "RGB"):  # P, 1, CMYK, YCbCr, F, ...
        image = image.convert("RGB")
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def center_square(image: Image.Image) -> Image.Image:
    """The largest centered square of `image`."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def fit(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """uint8 (resolution, resolution, channels): EXIF rotation applied, channels converted,
    center-cropped to a square and resized with Lanczos (up or down)."""
    image = ImageOps.exif_transpose(image)
    image = center_square(to_channels(image, channels))
    if image.size != (resolution, resolution):
        image = image.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(resolution, resolution, channels)
