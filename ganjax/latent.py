"""The latent prior of every generator: z ~ N(0, I), drawn in one place.

Training steps, the fixed sample grid, evaluation and generation all draw z here, so that a
change of prior (or of its dtype) is one edit and every draw stays reproducible from its key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sample_z(key, n: int, z_dim: int, dtype=jnp.float32) -> jax.Array:
    """n latent vectors (n, z_dim) from N(0, I), drawn with `key`."""
    return jax.random.normal(key, (n, z_dim), dtype)
