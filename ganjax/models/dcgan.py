"""DCGAN generator and discriminator as in the homework (ML2022Spring HW6 sample code).

G: Linear(z -> w*4*4, no bias) + BN + ReLU, then transposed convolutions (k5 s2 p2 op1, no bias)
   + BN + ReLU that double the side and halve the width, and a last one to `channels` + tanh.
D: Conv(k4 s2 p1) + LeakyReLU(0.2), then Conv(k4 s2 p1) + norm + LeakyReLU(0.2) blocks that halve
   the side and double the width, and Conv(k4 s1 p0) to one logit (no sigmoid: losses take logits).
   With norm "spectral" (Miyato et al. 2018) there is no activation norm; every conv, the first
   and the last included, is spectrally normalized instead.

The number of blocks follows from the resolution: log2(resolution) - 2 resampling layers
(4 for 64x64 with widths 8f..f, 3 for 32x32 with widths 4f..f).
Conditional (`num_classes` > 0, labels passed to the call; ganjax.models.conditioning): G's input
is z concatenated with a learned label embedding; D adds the projection <embed(y), phi(x)> of its
last 4x4 features (Miyato & Koyama 2018), or with `cond="concat"` takes the one-hot label as extra
input channels. With InfoGAN's code (`latent_codes` > 0, ganjax.models.codes) G takes the code that
z carries, and D's last 4x4 features also feed the code head Q.

Init: conv weights N(0, 0.02), norm scales N(1, 0.02); the Linear and D's conv biases keep
PyTorch's default init, since the homework's weights_init only touches Conv and BatchNorm weights.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.models.codes import code_head, code_input
from ganjax.models.conditioning import concat_embedding, concat_label_maps, projection
from ganjax.models.conv import Conv2d, ConvTranspose2d
from ganjax.models.norms import make_norm
from ganjax.models.spectral import weight_wrapper

conv_init = nn.initializers.normal(0.02)
# PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_conv_bias_init(fan_in: int):
    """PyTorch nn.Conv2d default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * kh * kw."""
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def num_blocks(resolution: int) -> int:
    """Resampling layers between 4x4 and the resolution."""
    return int(math.log2(resolution)) - 2


class DCGANGenerator(nn.Module):
    resolution: int = 64
    channels: int = 3
    features: int = 64
    axis_name: str | None = None  # pmap axis for cross-device batch norm (set by build_models)
    dtype: Any = jnp.float32  # compute dtype (ganjax.models: mixed precision); params stay float32
    conv_impl: str = "auto"  # ganjax.models.conv: the sub-pixel form on CPU, lax's conv elsewhere
    num_classes: int = 0  # > 0: conditional on `labels` (ganjax.models.conditioning)
    latent_codes: int = 0  # > 0: InfoGAN's categorical code, carried by z (ganjax.models.codes)

    @nn.compact
    def __call__(self, z, train: bool = True, labels=None):
        n = num_blocks(self.resolution)
        width = self.features * 2 ** (n - 1)
        x = nn.Dense(width * 4 * 4, use_bias=False, kernel_init=torch_linear_init, dtype=self.dtype)(
            concat_embedding(code_input(z, self.latent_codes), labels, self.num_classes))
        x = nn.relu(make_norm("batch", train, self.axis_name, self.dtype)(x))
        # PyTorch views the Linear output as (C, 4, 4); keep that order so weights map one to one.
        x = x.reshape(z.shape[0], width, 4, 4).transpose(0, 2, 3, 1)
        for _ in range(n - 1):
            width //= 2
            x = ConvTranspose2d(width, 5, stride=2, padding=2, output_padding=1, use_bias=False,
                                kernel_init=conv_init, impl=self.conv_impl)(x)
            x = nn.relu(make_norm("batch", train, self.axis_name, self.dtype)(x))
        x = ConvTranspose2d(self.channels, 5, stride=2, padding=2, output_padding=1, use_bias=False,
                            kernel_init=conv_init, impl=self.conv_impl)(x)
        return jnp.tanh(x.astype(jnp.float32))


class DCGANDiscriminator(nn.Module):
    resolution: int = 64
    features: int = 64
    norm: str = "batch"
    axis_name: str | None = None  # pmap axis for cross-device batch norm (set by build_models)
    dtype: Any = jnp.float32  # compute dtype (ganjax.models: mixed precision); params stay float32
    conv_impl: str = "auto"  # ganjax.models.conv: space-to-depth on CPU, lax's strided conv elsewhere
    num_classes: int = 0  # > 0: conditional on `labels` (ganjax.models.conditioning)
    cond: str = "projection"  # or "concat": how a conditional D takes the label
    latent_codes: int = 0  # > 0: InfoGAN's head Q(c | x) on the last features (ganjax.models.codes)

    @nn.compact
    def __call__(self, x, train: bool = True, labels=None):
        n = num_blocks(self.resolution)
        width = self.features
        x = x.astype(self.dtype)  # the convolutions run in the input's dtype
        if self.num_classes and self.cond == "concat":
            x = concat_label_maps(x, labels, self.num_classes)
        wrap = weight_wrapper(self.norm, train)  # norm "spectral": every conv spectrally normalized
        conv = lambda features, stride, padding, x: wrap(Conv2d(
            features, 4, stride=stride, padding=padding, kernel_init=conv_init,
            bias_init=torch_conv_bias_init(x.shape[-1] * 4 * 4), impl=self.conv_impl))(x)
        x = nn.leaky_relu(conv(width, 2, 1, x), 0.2)
        for _ in range(n - 1):
            width *= 2
            x = conv(width, 2, 1, x)
            x = nn.leaky_relu(make_norm(self.norm, train, self.axis_name, self.dtype)(x), 0.2)
        out = conv(1, 1, 0, x).reshape(x.shape[0]).astype(jnp.float32)
        code_head(x, self.latent_codes)
        if self.num_classes and self.cond == "projection":
            out = out + projection(x, labels, self.num_classes)
        return out
