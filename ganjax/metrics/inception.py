"""The FID Inception-v3 in Flax: the 2048-d pool3 features and the 1008 logits of pytorch-fid's network.

pytorch-fid (`pytorch_fid.inception.InceptionV3([3], use_fid_inception=True)`) is torchvision's
Inception-v3 with the blocks of the TensorFlow graph that the FID of Heusel et al. 2017 was
defined on (inception-2015-12-05): 1008 classes, batch norm with eps 1e-3, average pools that do
not count the zero padding (`count_include_pad=False`, blocks A, C and the first E) and a max
pool in the pool branch of the last E block. This module is the same network with the same
parameter names (torchvision's), NHWC, in inference mode; `ganjax.metrics.inception_weights`
reads pytorch-fid's weights file into it.

Inputs are prepared as pytorch-fid does: uint8 -> [0, 1] (torchvision's ToTensor), a bilinear
resize to 299x299 with PyTorch's `align_corners=False` and no antialiasing (`F.interpolate`,
which `jax.image.resize(..., 'bilinear', antialias=False)` computes: half-pixel centers, edge
pixels repeated), then x -> 2x - 1. Grayscale is repeated to 3 channels, as PIL's
`convert('RGB')` in pytorch-fid's image loader does.
"""

from __future__ import annotations

from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from tqdm.auto import tqdm

from ganjax import xla_options

INPUT_SIZE = 299
POOL3_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3  # torchvision's BasicConv2d (TensorFlow's Inception-v3)
BATCH = 50  # images per network call on accelerators unless told otherwise (pytorch-fid's default)
CPU_BATCH = 10  # on CPU: XLA ran 2.37 images/s at 10, 2.02 at 50 (2 cores; experiments/bench/bench_inception.py)


class BasicConv(nn.Module):
    """torchvision's BasicConv2d: convolution without bias, batch norm (eps 1e-3), ReLU."""
    features: int
    kernel: tuple[int, int]
    strides: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.features, self.kernel, self.strides, padding=[(p, p) for p in self.padding],
                    use_bias=False, name="conv")(x)
        return nn.relu(nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name="bn")(x))


def _avg_pool_3x3(x):
    """3x3 average pool, stride 1, padding 1, over the pixels inside the image only (TensorFlow's
    average pool; pytorch-fid's `count_include_pad=False`)."""
    return nn.avg_pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, strides: int, padding: int):
    return nn.max_pool(x, (3, 3), (strides, strides), padding=((padding, padding), (padding, padding)))


class InceptionA(nn.Module):
    """pytorch-fid's FIDInceptionA (Mixed_5b..5d)."""
    pool_features: int

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(64, (1, 1), name="branch1x1")(x)
        b5 = BasicConv(48, (1, 1), name="branch5x5_1")(x)
        b5 = BasicConv(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
        b3 = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
        b3 = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
        pool = BasicConv(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b5, b3, pool], axis=-1)


class InceptionB(nn.Module):
    """torchvision's InceptionB (Mixed_6a), unchanged in pytorch-fid."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(384, (3, 3), strides=2, name="branch3x3")(x)
        bd = BasicConv(64, (1, 1), name="branch3x3dbl_1")(x)
        bd = BasicConv(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = BasicConv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
        return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionC(nn.Module):
    """pytorch-fid's FIDInceptionC (Mixed_6b..6e)."""
    channels_7x7: int

    @nn.compact
    def __call__(self, x):
        c7 = self.channels_7x7
        b1 = BasicConv(192, (1, 1), name="branch1x1")(x)
        b7 = BasicConv(c7, (1, 1), name="branch7x7_1")(x)
        b7 = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
        bd = BasicConv(c7, (1, 1), name="branch7x7dbl_1")(x)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
        bd = BasicConv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
        bd = BasicConv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
        bd = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
        pool = BasicConv(192, (1, 1), name="branch_pool")(_avg_pool_3x3(x))
        return jnp.concatenate([b1, b7, bd, pool], axis=-1)


class InceptionD(nn.Module):
    """torchvision's InceptionD (Mixed_7a), unchanged in pytorch-fid."""

    @nn.compact
    def __call__(self, x):
        b3 = BasicConv(192, (1, 1), name="branch3x3_1")(x)
        b3 = BasicConv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
        b7 = BasicConv(192, (1, 1), name="branch7x7x3_1")(x)
        b7 = BasicConv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
        b7 = BasicConv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
        b7 = BasicConv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
        return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2, 0)], axis=-1)


class InceptionE(nn.Module):
    """pytorch-fid's FIDInceptionE_1 (Mixed_7b: average pool without the padding) and, with
    `max_pool`, FIDInceptionE_2 (Mixed_7c: a 3x3 max pool in the pool branch)."""
    max_pool: bool = False

    @nn.compact
    def __call__(self, x):
        b1 = BasicConv(320, (1, 1), name="branch1x1")(x)
        b3 = BasicConv(384, (1, 1), name="branch3x3_1")(x)
        b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                              BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
        bd = BasicConv(448, (1, 1), name="branch3x3dbl_1")(x)
        bd = BasicConv(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
        bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                              BasicConv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
        pooled = _max_pool_3x3(x, 1, 1) if self.max_pool else _avg_pool_3x3(x)
        pool = BasicConv(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([b1, b3, bd, pool], axis=-1)


class FIDInceptionV3(nn.Module):
    """x: (N, 299, 299, 3) in [-1, 1] -> (pool3 (N, 2048), logits (N, 1008)), the logits being
    torchvision's fc layer on pool3 (the dropout before it is off in inference)."""

    @nn.compact
    def __call__(self, x):
        x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3")(x)
        x = BasicConv(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3(x, 2, 0)
        x = BasicConv(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3(x, 2, 0)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = InceptionC(c7, name=name)(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        pool3 = x.mean(axis=(1, 2))  # AdaptiveAvgPool2d((1, 1))
        return pool3, nn.Dense(NUM_CLASSES, name="fc")(pool3)


def variable_shapes() -> dict:
    """The network's variables ({"params", "batch_stats"}) as jax.ShapeDtypeStructs, without
    computing anything."""
    x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    return jax.eval_shape(FIDInceptionV3().init, jax.random.PRNGKey(0), x)


@xla_options.jit
def preprocess(images) -> jax.Array:
    """uint8 (N, H, W, 1 or 3) -> float32 (N, 299, 299, 3) in [-1, 1], as pytorch-fid: /255,
    bilinear resize with align_corners=False semantics (no antialiasing, also when shrinking),
    2x - 1."""
    x = images.astype(jnp.float32) / 255.0
    x = jax.image.resize(x, (x.shape[0], INPUT_SIZE, INPUT_SIZE, x.shape[3]), "bilinear", antialias=False)
    x = 2 * x - 1
    return jnp.broadcast_to(x, x.shape[:3] + (3,)) if x.shape[3] == 1 else x


@xla_options.jit
def _network(variables, x):
    """(pool3, logits, logits without the fc bias): Salimans et al.'s Inception-Score code (and
    torch-fidelity's `logits_unbiased`) takes the softmax of pool3 times the fc weights only."""
    pool3, logits = FIDInceptionV3().apply(variables, x)
    return pool3, logits, pool3 @ variables["params"]["fc"]["kernel"]


def as_uint8(images) -> np.ndarray:
    """uint8 pixels as they are; floats in [-1, 1] (a generator's tanh output) quantized to the
    uint8 an image file of them would hold (`ganjax.visualize.to_uint8`), so scoring samples
    directly equals scoring the PNGs `ganjax.generate` writes."""
    from ganjax.visualize import to_uint8

    images = np.asarray(images)
    images = images if images.dtype == np.uint8 else to_uint8(images)
    return images[..., None] if images.ndim == 3 else images


def default_batch_size() -> int:
    """CPU_BATCH on the CPU backend, BATCH elsewhere."""
    return CPU_BATCH if jax.default_backend() == "cpu" else BATCH


def inception_outputs(images: Iterable[np.ndarray], variables: dict, batch_size: int | None = None,
                      total: int | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """{"pool3": float32 (N, 2048), "logits": (N, 1008), "logits_unbiased": (N, 1008)} of images
    given one at a time, (H, W[, 1 or 3]) uint8 or floats in [-1, 1] (`as_uint8`), in their order.

    Images are batched per size; every batch is padded to `batch_size`, so the network compiles
    once (the preprocessing once per input size); `batch_size` defaults to default_batch_size().
    A bar shows progress when `progress`."""
    batch_size = batch_size or default_batch_size()
    pending: dict[tuple, list] = {}  # input shape -> [(index, image)] not yet sent
    in_flight: list = []  # (indices, outputs still on the device): read while the next batch runs
    done: list = []  # (indices, numpy outputs)
    bar = tqdm(total=total, desc="Inception features", unit="img", disable=not progress, dynamic_ncols=True)

    def flush(shape):
        rows = pending.pop(shape)
        batch = np.zeros((batch_size,) + shape, np.uint8)
        batch[:len(rows)] = [image for _, image in rows]
        in_flight.append(([i for i, _ in rows], _network(variables, preprocess(batch))))
        while len(in_flight) > 1:
            indices, outputs = in_flight.pop(0)
            done.append((indices, [np.asarray(v)[:len(indices)] for v in outputs]))
            bar.update(len(indices))

    count = 0
    for count, image in enumerate(images, start=1):
        image = as_uint8(image[None])[0]
        pending.setdefault(image.shape, []).append((count - 1, image))
        if len(pending[image.shape]) == batch_size:
            flush(image.shape)
    for shape in list(pending):
        flush(shape)
    for indices, outputs in in_flight:
        done.append((indices, [np.asarray(v)[:len(indices)] for v in outputs]))
        bar.update(len(indices))
    bar.close()
    out = {name: np.zeros((count, dim), np.float32)
           for name, dim in (("pool3", POOL3_DIM), ("logits", NUM_CLASSES), ("logits_unbiased", NUM_CLASSES))}
    for indices, outputs in done:
        for name, value in zip(out, outputs):
            out[name][indices] = value
    return out
