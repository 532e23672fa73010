"""What D's training adds to the adversarial loss: weighted regularizer terms and a constraint.

D's objective is `loss.d_loss(real, fake) + sum(weight * term(...))` over `d_terms(config)`, and
after each optimizer update D's parameters pass through `d_constraint(config)`. Each term is a
pure function `term(critic, real, fake, eps) -> scalar`, reported under its own metric name and
computed every `every` D steps (lazy regularization: scaled by `every` when it is computed):

- `critic(x)`: D on a batch, with its current parameters and statistics, one value per sample;
- `real`, `fake`: this device's slices of the real batch and of the (stop-gradient) fake batch;
- `eps`: one U[0, 1] draw per sample, the same on any number of devices, for terms that interpolate.

A new regularizer is a function here, one line in `d_terms`, and its weight flag in the config.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ganjax.config import Config
from ganjax.losses import get_loss


class Term(NamedTuple):
    """One weighted regularizer of D's objective, logged as metric `name`; computed on the D
    steps where step % every == 0, with weight * every (Karras et al. 2020, StyleGAN2's lazy
    regularization), so that its average contribution is the same."""
    name: str
    fn: Callable  # (critic, real, fake, eps) -> scalar
    weight: float
    every: int = 1


def interpolation_weights(key, n: int, sample_ndim: int, dtype=jnp.float32):
    """eps ~ U[0, 1], one per sample, shaped to broadcast against a batch of n samples."""
    return jax.random.uniform(key, (n,) + (1,) * sample_ndim, dtype)


def gradient_penalty(critic: Callable, real, fake, eps):
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps*x + (1-eps)*G(z), eps ~ U[0, 1] per sample
    (Gulrajani et al. 2017, Algorithm 1).

    `critic` maps a batch to one value per sample, each depending only on its own sample (no
    batch norm), so the gradient of the sum is the stack of per-sample gradients. The norm is
    over all of a sample's values.
    """
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    # The tiny constant keeps the gradient of the norm finite where a sample's gradient is zero.
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def squared_gradient_norm(critic: Callable, x):
    """E||grad_x D(x)||^2 over the batch, the gradient taken per sample with jax.grad of the sum
    (each of D's values depends only on its own sample: no batch norm)."""
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x)
    return jnp.mean(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))


def r1_penalty(critic: Callable, real, fake, eps):
    """R1: E||grad_x D(x)||^2 on real data, the zero-centred penalty of Mescheder et al. 2018
    ("Which Training Methods for GANs do actually Converge?", eq. 9), weighted gamma/2."""
    return squared_gradient_norm(critic, real)


def r2_penalty(critic: Callable, real, fake, eps):
    """R2: E||grad_x D(G(z))||^2 on generated data (Mescheder et al. 2018, eq. 10), weighted gamma/2."""
    return squared_gradient_norm(critic, fake)


def d_terms(config: Config) -> tuple[Term, ...]:
    """D's regularizers for a run, in order: those its loss variant declares, then those switched
    on by their own flags (R1 and R2 with gamma/2, lazy every `reg_every` steps)."""
    declared = get_loss(config.loss, config.g_loss).d_regularizers
    terms = []
    if "gp" in declared:
        terms.append(Term("gp", gradient_penalty, config.gp_weight))
    if config.r1 > 0:
        terms.append(Term("r1", r1_penalty, config.r1 / 2, config.reg_every))
    if config.r2 > 0:
        terms.append(Term("r2", r2_penalty, config.r2 / 2, config.reg_every))
    return tuple(terms)


def clip_weights(params, clip_value: float):
    """WGAN's Lipschitz constraint: every critic parameter projected onto [-c, c] (as the homework's
    `p.data.clamp_` over all of D's parameters)."""
    bound = lambda value: jax.tree.map(lambda _: value, params)
    return optax.projections.projection_box(params, bound(-clip_value), bound(clip_value))


def d_constraint(config: Config) -> Callable:
    """The projection of D's parameters after each update that the loss variant declares
    (identity if none)."""
    if get_loss(config.loss, config.g_loss).d_constraint == "clip":
        return lambda params: clip_weights(params, config.clip_value)
    return lambda params: params
