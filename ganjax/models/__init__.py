"""Generator and discriminator networks, built from the config.

Every model is a Flax module whose `apply(variables, x, train)` is a pure function; `train`
selects batch statistics (True) or running statistics (False) in batch norm.

Mixed precision (`--dtype=bfloat16`, as in Micikevicius et al. 2018, "Mixed Precision Training",
with bfloat16 needing no loss scaling): every model keeps float32 parameters, casts them and its
input to `dtype` for the matmuls and convolutions, normalizes with float32 statistics, and returns
float32 (G's images, D's logits), so the losses, the gradient penalty's interpolates and norms, the
gradients and the optimizer updates are float32.
"""

import jax.numpy as jnp

from ganjax.config import Config, data_kind, toy_dim
from ganjax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganjax.models.mlp import MLPDiscriminator, MLPGenerator
from ganjax.models.resnet import ResNetDiscriminator, ResNetGenerator


def data_shape(config: Config) -> tuple:
    """Shape of one sample: (dim,) for toy data, (H, W, C) for images."""
    if data_kind(config.dataset) == "toy":
        return (toy_dim(config.dataset),)
    return (config.resolution, config.resolution, config.channels)


def build_models(config: Config, axis_name: str | None = None, num_classes: int = 0):
    """(generator, discriminator) modules for a resolved config. `axis_name`: the pmap axis over
    which batch norm averages its statistics when training on several devices (None: one device).
    `num_classes` > 0: the conditional models (config.conditional; ganjax.models.conditioning),
    called with `labels=`; 0: the unconditional ones. With config.latent_codes, G takes InfoGAN's
    code from z and D has the code head (ganjax.models.codes)."""
    dtype = jnp.dtype(config.dtype)
    k, cond, codes = num_classes, config.cond_d, config.latent_codes
    if config.arch == "dcgan":
        return (DCGANGenerator(config.resolution, config.channels, config.features, axis_name, dtype, num_classes=k,
                               latent_codes=codes),
                DCGANDiscriminator(config.resolution, config.features, config.d_norm, axis_name, dtype,
                                   num_classes=k, cond=cond, latent_codes=codes))
    if config.arch == "resnet":
        return (ResNetGenerator(config.resolution, config.channels, config.features, axis_name, dtype, num_classes=k,
                                latent_codes=codes),
                ResNetDiscriminator(config.resolution, config.features, config.d_norm, dtype, num_classes=k,
                                    latent_codes=codes))
    output = "tanh" if data_kind(config.dataset) == "image" else None
    return (MLPGenerator(data_shape(config), config.mlp_width, config.mlp_depth, output, dtype, num_classes=k,
                         latent_codes=codes),
            MLPDiscriminator(config.mlp_width, config.mlp_depth, config.d_norm, axis_name, dtype, num_classes=k,
                             cond=cond, latent_codes=codes))
