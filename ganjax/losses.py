"""GAN objectives as pure functions of discriminator logits.

A loss variant is a `Loss`: the discriminator's loss on (real, fake) logits, the generator's loss
on fake logits, and two switches the train step reads: whether the critic's weights are clipped
(WGAN) and whether a gradient penalty is added (WGAN-GP). The training loop is the same for all.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax


def bce(logits, target: float):
    """Mean binary cross-entropy of sigmoid(logits) against a constant label (PyTorch BCELoss on
    sigmoid outputs, computed stably from logits)."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


# --- the original GAN (Goodfellow et al. 2014), averaged as in the homework ---

def gan_d_loss(real, fake):
    """D minimizes (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2."""
    return (bce(real, 1.0) + bce(fake, 0.0)) / 2


def gan_g_loss_non_saturating(fake):
    """G minimizes -log D(G(z)) = BCE(D(G(z)), 1): strong gradients early in training."""
    return bce(fake, 1.0)


def gan_g_loss_minimax(fake):
    """G minimizes log(1 - D(G(z))) = -BCE(D(G(z)), 0): the paper's saturating objective."""
    return -bce(fake, 0.0)


# --- Wasserstein (Arjovsky et al. 2017; Gulrajani et al. 2017) ---

def wgan_d_loss(real, fake):
    """Critic minimizes -E[D(x)] + E[D(G(z))]; its negative estimates the Wasserstein distance."""
    return -jnp.mean(real) + jnp.mean(fake)


def wgan_g_loss(fake):
    """G minimizes -E[D(G(z))]."""
    return -jnp.mean(fake)


# --- hinge (Lim & Ye 2017; Miyato et al. 2018) ---

def hinge_d_loss(real, fake):
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


# --- least squares (Mao et al. 2017, labels a=0, b=c=1) ---

def lsgan_d_loss(real, fake):
    """(E[(D(x) - 1)^2] + E[D(G(z))^2]) / 2."""
    return 0.5 * jnp.mean((real - 1.0) ** 2) + 0.5 * jnp.mean(fake ** 2)


def lsgan_g_loss(fake):
    """E[(D(G(z)) - 1)^2] / 2."""
    return 0.5 * jnp.mean((fake - 1.0) ** 2)


def interpolation_weights(key, n: int, sample_ndim: int, dtype=jnp.float32):
    """eps ~ U[0, 1], one per sample, shaped to broadcast against a batch of n samples."""
    return jax.random.uniform(key, (n,) + (1,) * sample_ndim, dtype)


def gradient_penalty(critic: Callable, real, fake, key=None, *, eps=None):
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps*x + (1-eps)*G(z), eps ~ U[0, 1] per sample
    (Gulrajani et al. 2017, Algorithm 1).

    `critic` maps a batch to one value per sample, each depending only on its own sample (no
    batch norm), so the gradient of the sum is the stack of per-sample gradients. The norm is
    over all of a sample's values. eps is drawn from `key`, or given (a device's slice of the
    weights of the global batch, ganjax.steps).
    """
    if eps is None:
        eps = interpolation_weights(key, real.shape[0], real.ndim - 1, real.dtype)
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    # The tiny constant keeps the gradient of the norm finite where a sample's gradient is zero.
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def clip_weights(params, clip_value: float):
    """WGAN's Lipschitz constraint: every critic parameter clipped to [-c, c] (as the homework's
    `p.data.clamp_` over all of D's parameters)."""
    return jax.tree.map(lambda p: jnp.clip(p, -clip_value, clip_value), params)


class Loss(NamedTuple):
    d_loss: Callable  # (real_logits, fake_logits) -> scalar
    g_loss: Callable  # fake_logits -> scalar
    clip: bool = False  # clip critic weights after each D update (wgan)
    penalty: bool = False  # add gp_weight * gradient_penalty (wgan-gp)
    probabilities: bool = False  # D outputs are logits of probabilities (report sigmoid means)


def get_loss(name: str, g_loss: str = "non-saturating") -> Loss:
    """The loss variant called `name` (gan, wgan, wgan-gp, hinge, lsgan)."""
    if name == "gan":
        g = gan_g_loss_non_saturating if g_loss == "non-saturating" else gan_g_loss_minimax
        return Loss(gan_d_loss, g, probabilities=True)
    if name == "wgan":
        return Loss(wgan_d_loss, wgan_g_loss, clip=True)
    if name == "wgan-gp":
        return Loss(wgan_d_loss, wgan_g_loss, penalty=True)
    if name == "hinge":
        return Loss(hinge_d_loss, wgan_g_loss)
    if name == "lsgan":
        return Loss(lsgan_d_loss, lsgan_g_loss)
    raise ValueError(f"unknown loss {name!r}")
