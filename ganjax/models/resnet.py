"""The SNGAN ResNet generator and discriminator (Miyato et al. 2018, "Spectral Normalization for
Generative Adversarial Networks", appendix B), at 32x32 (their CIFAR-10 / STL-10 networks) and
64x64 (the 64x64 variant of Mimicry's SNGAN, Lee & Town 2020).

G: Dense(z -> 4x4xw0), then upsampling residual blocks (BN, ReLU, nearest 2x upsample, conv3x3,
   BN, ReLU, conv3x3; shortcut: upsample + conv1x1), one per doubling of the side, then BN, ReLU,
   conv3x3 to `channels`, tanh.
D: an optimized first block (conv3x3, ReLU, conv3x3, avgpool2; shortcut: avgpool2 + conv1x1), then
   residual blocks (ReLU, conv3x3, ReLU, conv3x3, [avgpool2]; shortcut conv1x1 [+ avgpool2] when
   the width or the side changes, identity otherwise), then ReLU, global sum pooling, Dense(1).
   (A 1x1 conv commutes with nearest upsampling and with average pooling, so the shortcuts run
   it at the lower resolution: the same functions at a quarter of the cost.)
   With norm "spectral" (the default for this arch) every conv and the Dense are spectrally
   normalized; with "none" they are not. D has no activation normalization.

Widths from the DCGAN width f (`--features`), so that they are the papers' at ganjax's default
f (32 below resolution 64, 64 at 64) and small CPU runs just lower f:
- 32x32: G 8f in every block (256 at f=32, SNGAN's), D blocks down, down, same, same, 4f wide
  (128 at f=32, SNGAN's).
- 64x64: G 16f -> 8f -> 4f -> 2f -> f (1024 ... 64 at f=64, Mimicry's ngf=1024), D five
  downsampling blocks f -> 2f -> 4f -> 8f -> 16f (64 ... 1024 at f=64, Mimicry's ndf=1024); as in
  Mimicry, a D block's first conv keeps the input's width.
Init as in SNGAN / Mimicry: xavier uniform with gain sqrt(2) for the residual convs, 1 for the
shortcut convs, G's Dense and last conv and D's Dense; biases 0 (the original Chainer code's);
batch-norm scale 1, bias 0.

Conditional (`num_classes` > 0, labels passed to the call; ganjax.models.conditioning): every batch
norm of G is a class-conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018), made by
G's `norm` factory; D adds the projection <embed(y), phi(x)> of its sum-pooled features (Miyato &
Koyama 2018).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import jax.numpy as jnp
from flax import linen as nn

from ganjax.models.codes import code_head, code_input
from ganjax.models.conditioning import ConditionalBatchNorm, projection
from ganjax.models.conv import Conv2d
from ganjax.models.norms import make_norm
from ganjax.models.spectral import weight_wrapper

RESOLUTIONS = (32, 64)
D_NORMS = ("spectral", "none")


def xavier(gain: float):
    """PyTorch's xavier_uniform_(w, gain): U(+-gain * sqrt(6 / (fan_in + fan_out)))."""
    return nn.initializers.variance_scaling(gain ** 2, "fan_avg", "uniform")


def generator_widths(resolution: int, features: int) -> list[int]:
    """Channels of the 4x4 input and after each upsampling block."""
    if resolution == 32:
        return [8 * features] * 4
    if resolution == 64:
        return [16 * features, 8 * features, 4 * features, 2 * features, features]
    raise ValueError(f"resnet supports resolution 32 or 64, got {resolution}")


def discriminator_blocks(resolution: int, features: int) -> list[tuple[int, bool]]:
    """(width, downsample) of each block, the optimized first block first."""
    if resolution == 32:
        return [(4 * features, True), (4 * features, True), (4 * features, False), (4 * features, False)]
    if resolution == 64:
        return [(features * 2 ** i, True) for i in range(5)]
    raise ValueError(f"resnet supports resolution 32 or 64, got {resolution}")


def upsample(x):
    """Nearest-neighbour 2x upsampling of NHWC."""
    n, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c)).reshape(n, 2 * h, 2 * w, c)


def avg_pool(x):
    """2x2 average pooling of NHWC, stride 2."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _conv(width: int, kernel: int, gain: float, name: str, impl: str):
    """'Same'-padded stride-1 conv with SNGAN's init."""
    return Conv2d(width, kernel, padding=kernel // 2, kernel_init=xavier(gain), bias_init=nn.initializers.zeros,
                  impl=impl, name=name)


class GBlock(nn.Module):
    """Upsampling residual block of G. `norm()` makes a fresh normalization layer."""
    width: int
    norm: Callable[[], Callable]
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        h = upsample(nn.relu(self.norm()(x)))
        h = _conv(self.width, 3, math.sqrt(2), "conv1", self.conv_impl)(h)
        h = _conv(self.width, 3, math.sqrt(2), "conv2", self.conv_impl)(nn.relu(self.norm()(h)))
        # 1x1 conv, then upsample: SNGAN's upsample-then-conv, as they commute, at 1/4 of the cost
        return h + upsample(_conv(self.width, 1, 1.0, "shortcut", self.conv_impl)(x))


class DBlock(nn.Module):
    """Residual block of D; `first`: SNGAN's optimized first block (no ReLU on the input, its
    first conv already at the block's width)."""
    width: int
    downsample: bool
    first: bool = False
    norm: str = "spectral"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        wrap = weight_wrapper(self.norm, train)
        conv = lambda width, kernel, gain, name: wrap(_conv(width, kernel, gain, name, self.conv_impl))
        pool = avg_pool if self.downsample else (lambda x: x)
        hidden = self.width if self.first else x.shape[-1]
        h = conv(hidden, 3, math.sqrt(2), "conv1")(x if self.first else nn.relu(x))
        h = pool(conv(self.width, 3, math.sqrt(2), "conv2")(nn.relu(h)))
        if self.first or self.downsample or x.shape[-1] != self.width:
            # pool, then 1x1 conv: SNGAN's order in the first block; its other blocks convolve
            # first, which is the same function (the two commute) at 4x the cost
            return h + conv(self.width, 1, 1.0, "shortcut")(pool(x))
        return h + x


class ResNetGenerator(nn.Module):
    resolution: int = 32
    channels: int = 3
    features: int = 32
    axis_name: str | None = None  # pmap axis for cross-device batch norm (set by build_models)
    dtype: Any = jnp.float32  # compute dtype (ganjax.models: mixed precision); params stay float32
    conv_impl: str = "auto"  # ganjax.models.conv: the stride-1 core on CPU, lax's conv elsewhere
    num_classes: int = 0  # > 0: conditional batch norm on `labels` (ganjax.models.conditioning)
    latent_codes: int = 0  # > 0: InfoGAN's categorical code, carried by z (ganjax.models.codes)

    @nn.compact
    def __call__(self, z, train: bool = True, labels=None):
        widths = generator_widths(self.resolution, self.features)
        if self.num_classes:
            norm = lambda: functools.partial(ConditionalBatchNorm(self.num_classes, train, self.axis_name, self.dtype),
                                             labels=labels)
        else:
            norm = lambda: make_norm("batch", train, self.axis_name, self.dtype, scale_init=nn.initializers.ones)
        x = nn.Dense(4 * 4 * widths[0], kernel_init=xavier(1.0), dtype=self.dtype)(code_input(z, self.latent_codes))
        x = x.reshape(z.shape[0], 4, 4, widths[0])
        for width in widths[1:]:
            x = GBlock(width, norm, self.conv_impl)(x)
        x = _conv(self.channels, 3, 1.0, "to_image", self.conv_impl)(nn.relu(norm()(x)))
        return jnp.tanh(x.astype(jnp.float32))


class ResNetDiscriminator(nn.Module):
    resolution: int = 32
    features: int = 32
    norm: str = "spectral"  # or "none"
    dtype: Any = jnp.float32  # compute dtype (ganjax.models: mixed precision); params stay float32
    conv_impl: str = "auto"  # ganjax.models.conv: the stride-1 core on CPU, lax's conv elsewhere
    num_classes: int = 0  # > 0: projection of `labels` (ganjax.models.conditioning)
    latent_codes: int = 0  # > 0: InfoGAN's head Q(c | x) on the pooled features (ganjax.models.codes)

    @nn.compact
    def __call__(self, x, train: bool = True, labels=None):
        if self.norm not in D_NORMS:
            raise ValueError(f"the resnet discriminator supports norm {' or '.join(D_NORMS)}, got {self.norm!r}")
        x = x.astype(self.dtype)
        for i, (width, down) in enumerate(discriminator_blocks(self.resolution, self.features)):
            x = DBlock(width, down, first=i == 0, norm=self.norm, conv_impl=self.conv_impl)(x, train)
        x = jnp.sum(nn.relu(x), axis=(1, 2), dtype=jnp.float32)  # global sum pooling
        out = weight_wrapper(self.norm, train)(nn.Dense(1, kernel_init=xavier(1.0), dtype=self.dtype))(x)
        out = out.reshape(x.shape[0]).astype(jnp.float32)
        code_head(x, self.latent_codes)
        if self.num_classes:
            out = out + projection(x, labels, self.num_classes)
        return out
