"""InfoGAN's categorical latent code (Chen et al. 2016, "InfoGAN: Interpretable Representation
Learning by Information Maximizing Generative Adversarial Nets"), `--latent_codes=K`.

G(z, c) takes a code c ~ Cat(K) beside z, and a head Q(c | x) on D's last features predicts it;
both minimize the cross-entropy of Q on G's samples (ganjax.losses.info_loss), the variational
lower bound of the mutual information I(c; G(z, c)) up to the constant H(c). Without labels, G is
thus pushed to make K distinguishable kinds of sample: on digits, mostly the classes.

The code is read off z's first coordinate, c = floor(K * Phi(z_0)) with Phi the standard normal
CDF, so that c is uniform over 0 .. K-1 and independent of z_1, z_2, ..., and G stays a function
of z alone: the training steps, sample grids, evaluation and generation draw z ~ N(0, I) as for
any G, and z_0 (`code_z0`) picks a code by hand. G sees z_1.. and a learned embedding of c.

Q's logits leave D through flax's `sow` (collection "intermediates"), so that D's output, and
every function of it (losses, regularizers, the critic of plots), stays one value per sample.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import linen as nn

from ganjax.latent import class_grid_inputs
from ganjax.models.conditioning import concat_embedding

SOW_COLLECTION = "intermediates"
HEAD_NAME = "code_head"


def code_of(z, num_codes: int) -> jax.Array:
    """The code (n,) int32 that z (n, z_dim) carries: floor(K * Phi(z_0)), uniform over 0 .. K-1."""
    u = jax.scipy.special.ndtr(z[:, 0].astype(jnp.float32))
    return jnp.clip(jnp.floor(u * num_codes), 0, num_codes - 1).astype(jnp.int32)


def code_z0(codes, num_codes: int) -> jax.Array:
    """A z_0 that carries each code (the middle of its interval of Phi): code_of inverts it."""
    return jax.scipy.special.ndtri((jnp.asarray(codes, jnp.float32) + 0.5) / num_codes)


def with_codes(z, codes, num_codes: int) -> jax.Array:
    """z with its first coordinate replaced so that it carries `codes` (a code grid's rows)."""
    return z.at[:, 0].set(code_z0(codes, num_codes).astype(z.dtype))


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def code_grid_z(key, num_codes: int, z_dim: int, per_row: int = 10, max_rows: int = 10) -> jax.Array:
    """z of a code-by-style grid: one row per code (the first max_rows), the same `per_row`
    latent vectors in every row but for the coordinate that carries the code. One compiled
    program: op by op, ndtri's many small ops compiled one program each (1.4 s of a run's start)."""
    z, codes = class_grid_inputs(key, num_codes, z_dim, per_row, max_rows)
    return with_codes(z, codes, num_codes)


def code_input(z, num_codes: int):
    """G's input: [z_1.., embed(c)] for a G with a code (call inside a compact module); z if none."""
    if not num_codes:
        return z
    return concat_embedding(z[:, 1:], code_of(z, num_codes), num_codes, name="code_embedding")


class CodeHead(nn.Module):
    """Q(c | x): a linear layer from D's last features (n, ...) to K code logits, sown into
    SOW_COLLECTION; returns nothing, so D's output is unchanged."""
    num_codes: int

    @nn.compact
    def __call__(self, features):
        flat = features.reshape(features.shape[0], -1).astype(jnp.float32)
        self.sow(SOW_COLLECTION, "logits", nn.Dense(self.num_codes)(flat))


def code_head(features, num_codes: int) -> None:
    """Q's head on D's `features` when D has a code (call inside D's compact __call__)."""
    if num_codes:
        CodeHead(num_codes, name=HEAD_NAME)(features)


def sown_code_logits(intermediates: dict) -> jax.Array:
    """Q's logits (n, K) from the intermediates that D's apply(mutable=[..., SOW_COLLECTION]) returned."""
    return intermediates[HEAD_NAME]["logits"][0]
