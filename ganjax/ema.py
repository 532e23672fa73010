"""An exponential moving average (EMA) of the generator, the copy that samples are drawn from.

Averaging G's weights over the last few thousand updates removes much of the step-to-step
oscillation of GAN training (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN
Training"; used by ProGAN, BigGAN, StyleGAN and SNGAN reimplementations for every reported score).

After each G update, with t the number of G updates before it,

    decay_t = min(decay, (1 + t) / (10 + t))
    ema     = decay_t * ema + (1 - decay_t) * G

The warm-up is TensorFlow's `ExponentialMovingAverage(num_updates=t)` rule. Without it, an EMA of
decay 0.999 started at the random initial G would still weight that initialization by
0.999^2340 = 10 % at the end of the default run (2,340 G updates); with it, the average spans
about the last t / 10 updates early on (the first G update gets weight 0.9) and reaches the full
decay after ~9,000 updates.

Batch-norm running statistics are averaged with the same decay as the weights: both are averages
over G's recent trajectory, and for the first layer (linear in the weights, fed the same z) the
averaged statistics are exactly those of the averaged weights' pre-activations in expectation.
The EMA generator thus samples with its own averaged statistics, never the raw G's.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax


def ema_decay(decay: float, t) -> jnp.ndarray:
    """The decay used for the update after `t` earlier G updates: min(decay, (1 + t) / (10 + t))."""
    t = jnp.asarray(t, jnp.float32)
    return jnp.minimum(jnp.float32(decay), (1.0 + t) / (10.0 + t))


def update_ema(ema: dict, variables: dict, decay: float, t) -> dict:
    """The average `ema` (flax variables: params and batch statistics) moved toward G's current
    `variables` by one warmed-up EMA step (optax.incremental_update is the Polyak step)."""
    return optax.incremental_update(variables, ema, 1.0 - ema_decay(decay, t))
