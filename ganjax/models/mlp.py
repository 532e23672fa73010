"""MLP generator and discriminator: the original GAN (Goodfellow et al. 2014) on toy data or
flattened images. ReLU in G, LeakyReLU(0.2) in D, as in the WGAN-GP toy experiments. D's norm
"spectral" (Miyato et al. 2018) normalizes every Dense of D, the last included, by its spectral norm.
Conditional (`num_classes` > 0; ganjax.models.conditioning): G's input is z with a learned label
embedding; D adds the projection of its last hidden layer (Miyato & Koyama 2018), or with
`cond="concat"` takes the one-hot label beside its flattened input."""

import math
from typing import Any, Optional

from flax import linen as nn
import jax.numpy as jnp

from ganjax.models.codes import code_head, code_input
from ganjax.models.conditioning import concat_embedding, concat_one_hot, projection
from ganjax.models.norms import make_norm
from ganjax.models.spectral import weight_wrapper


class MLPGenerator(nn.Module):
    data_shape: tuple  # one sample's shape, e.g. (2,) or (28, 28, 1)
    width: int = 512
    depth: int = 3
    output: Optional[str] = None  # "tanh" for images in [-1, 1], None for unbounded toy data
    dtype: Any = jnp.float32  # compute dtype (ganjax.models: mixed precision); params stay float32
    num_classes: int = 0  # > 0: conditional on `labels` (ganjax.models.conditioning)
    latent_codes: int = 0  # > 0: InfoGAN's categorical code, carried by z (ganjax.models.codes)

    @nn.compact
    def __call__(self, z, train: bool = True, labels=None):
        x = concat_embedding(code_input(z, self.latent_codes), labels, self.num_classes)
        for _ in range(self.depth):
            x = nn.relu(nn.Dense(self.width, dtype=self.dtype)(x))
        x = nn.Dense(math.prod(self.data_shape), dtype=self.dtype)(x).astype(jnp.float32)
        if self.output == "tanh":
            x = jnp.tanh(x)
        return x.reshape((z.shape[0],) + tuple(self.data_shape))


class MLPDiscriminator(nn.Module):
    width: int = 512
    depth: int = 3
    norm: str = "none"
    axis_name: Optional[str] = None  # pmap axis for cross-device batch norm (set by build_models)
    dtype: Any = jnp.float32  # compute dtype (ganjax.models: mixed precision); params stay float32
    num_classes: int = 0  # > 0: conditional on `labels` (ganjax.models.conditioning)
    cond: str = "projection"  # or "concat": how a conditional D takes the label
    latent_codes: int = 0  # > 0: InfoGAN's head Q(c | x) on the last hidden layer (ganjax.models.codes)

    @nn.compact
    def __call__(self, x, train: bool = True, labels=None):
        x = x.reshape(x.shape[0], -1)
        if self.num_classes and self.cond == "concat":
            x = concat_one_hot(x, labels, self.num_classes)
        wrap = weight_wrapper(self.norm, train)  # norm "spectral": every Dense spectrally normalized
        for _ in range(self.depth):
            x = wrap(nn.Dense(self.width, dtype=self.dtype))(x)
            x = nn.leaky_relu(make_norm(self.norm, train, self.axis_name, self.dtype)(x), 0.2)
        out = wrap(nn.Dense(1, dtype=self.dtype))(x).reshape(x.shape[0]).astype(jnp.float32)
        code_head(x, self.latent_codes)
        if self.num_classes and self.cond == "projection":
            out = out + projection(x, labels, self.num_classes)
        return out
