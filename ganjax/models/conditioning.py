"""How a class label enters the networks of a conditional GAN: small modules that the models plug in.

A conditional model is the unconditional one with `num_classes > 0` and integer `labels` (n,)
passed to its call; with `num_classes == 0` none of these modules is created, so an
unconditional model has exactly its former parameters and function.

- `concat_embedding` (G of dcgan and mlp): z concatenated with a learned embedding of the label,
  the conditioning of Mirza & Osindero 2014 ("Conditional Generative Adversarial Nets") with a
  learned embedding instead of the one-hot code, of LABEL_EMBED_DIM = 10 entries beside z's 100
  (a wider one makes G ignore z: see LABEL_EMBED_DIM).
- `ConditionalBatchNorm` (G of resnet): batch norm without its own affine, then a per-class
  scale and shift (de Vries et al. 2017, "Modulating early visual processing by language";
  Miyato & Koyama 2018 use it in their conditional ResNet G).
- `projection` (D of every arch, `--cond_d=projection`): D(x, y) = psi(phi(x)) + <embed(y),
  phi(x)>, with phi(x) D's last features and psi its last linear layer (Miyato & Koyama 2018,
  "cGANs with Projection Discriminator", eq. 3).
- `concat_label_maps` / `concat_one_hot` (D of dcgan / mlp, `--cond_d=concat`): the one-hot label
  as constant extra image channels, or beside the flattened input (the cGAN discriminator of
  Mirza & Osindero 2014).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

EMBED_INIT = nn.initializers.normal(1.0)  # the scale of z ~ N(0, I)
# G's label embedding is small beside z (z_dim = 100): 10 entries, the width of Mirza & Osindero's
# one-hot code for the 10 digits. G's first layer (Dense, then batch norm) splits each unit's
# variance between z and the label in proportion to their squared norms, dim : z_dim at init. With
# z_dim entries (half the variance from the label) the default conditional digit run collapsed
# within each class: G keyed on the label and ignored z. Intra-class FD after 8 epochs (seed 0):
# 188 with z_dim entries, 138 with 32, 22 with 10 (lr 1e-3); 186 with z_dim, 41 with 16, 43 with
# 10 (lr 5e-4). README, "Conditional GANs".
LABEL_EMBED_DIM = 10


def concat_embedding(z, labels, num_classes: int, dim: int = LABEL_EMBED_DIM, name: str = "label_embedding"):
    """[z, embed(labels)] (n, z_dim + dim) for a conditional G (call inside a compact module);
    z itself when num_classes == 0. (InfoGAN's code enters G the same way: ganjax.models.codes.)"""
    if not num_classes:
        return z
    embedding = nn.Embed(num_classes, dim, embedding_init=EMBED_INIT, name=name)(labels)
    return jnp.concatenate([z, embedding.astype(z.dtype)], axis=-1)


def projection(features, labels, num_classes: int):
    """<embed(y), phi(x)> per sample (n,) (Miyato & Koyama 2018), the term a projection D adds to
    its unconditional output psi(phi(x)); phi(x) = `features` (n, ...), flattened. The embedding starts at zero, so a conditional D starts as the unconditional
    one (Miyato & Koyama's code starts it small too)."""
    flat = features.reshape(features.shape[0], -1).astype(jnp.float32)
    embedding = nn.Embed(num_classes, flat.shape[-1], embedding_init=nn.initializers.zeros,
                         name="label_projection")(labels)
    return jnp.sum(embedding * flat, axis=-1)


def one_hot(labels, num_classes: int, dtype):
    return jax.nn.one_hot(labels, num_classes, dtype=dtype)


def concat_label_maps(x, labels, num_classes: int):
    """Images (n, H, W, C) with the one-hot label as num_classes constant channels (n, H, W, C + K)."""
    maps = jnp.broadcast_to(one_hot(labels, num_classes, x.dtype)[:, None, None, :],
                            x.shape[:3] + (num_classes,))
    return jnp.concatenate([x, maps], axis=-1)


def concat_one_hot(x, labels, num_classes: int):
    """Flat inputs (n, d) with the one-hot label beside them (n, d + K)."""
    return jnp.concatenate([x, one_hot(labels, num_classes, x.dtype)], axis=-1)


class ConditionalBatchNorm(nn.Module):
    """Batch norm (PyTorch semantics, as ganjax.models.norms' `batch`, without its affine) followed
    by a per-class scale (starting at 1) and shift (starting at 0) looked up from the label
    (de Vries et al. 2017; Miyato & Koyama 2018)."""
    num_classes: int
    train: bool
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, labels):
        from ganjax.models.norms import make_norm

        x = make_norm("batch", self.train, self.axis_name, self.dtype, affine=False)(x)
        width = x.shape[-1]
        scale = nn.Embed(self.num_classes, width, embedding_init=nn.initializers.ones, name="scale")(labels)
        shift = nn.Embed(self.num_classes, width, embedding_init=nn.initializers.zeros, name="shift")(labels)
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (width,)
        return (x * scale.reshape(shape) + shift.reshape(shape)).astype(self.dtype)
