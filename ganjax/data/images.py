"""Pixels as the models see them: one PIL image -> the model's uint8 square (any mode to L or
RGB, center crop, Lanczos resize), MNIST's 28x28 padded to 32x32, and uint8 -> [-1, 1].

Shared by every image source (digits, folders, TFDS) and by the metrics, so that all see pixels
the same way.
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


def pad_28_to_32(images: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    """28x28 digits padded with 2 pixels of background on each side of the two spatial `axes`, to
    32x32, as is usual for DCGAN on MNIST (and as LeNet-5 took them): four halvings reach 2x2."""
    pad = [(0, 0)] * images.ndim
    for axis in axes:
        pad[axis] = (2, 2)
    return np.pad(images, pad)


def to_unit_range(pixels):
    """uint8 pixels -> float32 in [-1, 1] (x / 127.5 - 1), for numpy or jax arrays alike."""
    return pixels.astype("float32") / 127.5 - 1.0
