"""The latent prior of every generator: z ~ N(0, I) (and, for a conditional one, its labels), drawn in one place.

Training steps, the fixed sample grid, evaluation and generation all draw z here, so that a
change of prior (or of its dtype) is one edit and every draw stays reproducible from its key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sample_z(key, n: int, z_dim: int, dtype=jnp.float32) -> jax.Array:
    """n latent vectors (n, z_dim) from N(0, I), drawn with `key`."""
    return jax.random.normal(key, (n, z_dim), dtype)


def sample_labels(key, n: int, num_classes: int, probs=None) -> jax.Array:
    """n int32 class labels drawn with `key`: uniform over num_classes, or with the class
    probabilities `probs` (a sequence of num_classes floats; --label_dist=data)."""
    if probs is None:
        return jax.random.randint(key, (n,), 0, num_classes, jnp.int32)
    return jax.random.categorical(key, jnp.log(jnp.asarray(probs, jnp.float32)), shape=(n,)).astype(jnp.int32)


def balanced_labels(n: int, num_classes: int, classes=None):
    """int32 labels (n,) cycling through `classes` (all classes by default): as even a share of
    each as n allows, deterministic (evaluation, generation without a key)."""
    import numpy as np

    classes = np.arange(num_classes) if classes is None else np.asarray(classes)
    return classes[np.arange(n) % len(classes)].astype(np.int32)


def class_grid_inputs(key, num_classes: int, z_dim: int, per_row: int = 10, max_rows: int = 10):
    """(z, labels) of a class-by-style grid: one row per class (the first max_rows classes), the
    same `per_row` latent vectors in every row, so that a column shows one z across classes."""
    rows = min(num_classes, max_rows)
    z = jnp.tile(sample_z(key, per_row, z_dim), (rows, 1))
    return z, jnp.repeat(jnp.arange(rows, dtype=jnp.int32), per_row)

