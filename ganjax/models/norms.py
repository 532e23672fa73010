"""Normalization layers selectable by name, with the DCGAN reference init (scale ~ N(1, 0.02), bias 0)."""

import jax
import jax.numpy as jnp
from flax import linen as nn


def scale_init(key, shape, dtype=jnp.float32):
    """BatchNorm weight init of the homework: N(1, 0.02) (its `weights_init`, after Radford et al. 2015)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def make_norm(kind: str, train: bool, axis_name: str | None = None, dtype=jnp.float32, scale_init=scale_init,
              affine: bool = True):
    """A normalization layer by name, over the last (feature) axis.

    - batch: PyTorch BatchNorm semantics (momentum 0.1 = flax 0.9, eps 1e-5); batch statistics
      in training, running statistics in inference. Under pmap, `axis_name` makes the batch
      statistics those of the global batch (cross-replica batch norm), as on one device.
    - instance: per sample and channel over the spatial axes (WGAN-GP's choice of the homework);
      scale starts at 1, as PyTorch's InstanceNorm2d (weights_init only draws BatchNorm weights).
    - layer: per sample over all of its values, per-channel affine (WGAN-GP paper's suggestion).
    - none: identity.
    - spectral: identity too; it normalizes D's weights instead (ganjax.models.spectral).
    `scale_init`: of batch and layer norm (default N(1, 0.02), the DCGAN reference); `affine=False`:
    batch norm without scale and bias (conditional batch norm brings its own, per class).
    `dtype` is the output's dtype; statistics are computed in float32 whatever it is (flax's
    float32 reductions), and running statistics, scale and bias are stored in float32.
    """
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, scale_init=scale_init, dtype=dtype,
                            axis_name=axis_name if train else None, use_scale=affine, use_bias=affine)
    if kind == "instance":
        # PyTorch's InstanceNorm2d: the homework's weights_init does not touch it (scale 1, bias 0)
        return nn.InstanceNorm(epsilon=1e-5, dtype=dtype)
    if kind == "layer":
        return lambda x: nn.LayerNorm(epsilon=1e-5, reduction_axes=tuple(range(1, x.ndim)), feature_axes=-1,
                                      scale_init=scale_init, dtype=dtype)(x)
    if kind in ("none", "spectral"):
        return lambda x: x
    raise ValueError(f"unknown norm {kind!r}")
