"""GAN objectives as pure functions of discriminator logits.

A loss variant is a `Loss`: the discriminator's loss on (real, fake) logits, the generator's loss
on fake logits, what D's output means, and the names of the regularizer terms and the parameter
constraint the variant brings (WGAN-GP's gradient penalty, WGAN's weight clipping; both live in
ganjax.regularizers). The training loop is the same for all.
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


# --- InfoGAN's mutual-information term (Chen et al. 2016), beside any of the above ---

def info_loss(code_logits, codes):
    """Mean cross-entropy of Q(c | G(z, c)) for the codes G was given: -L_I(G, Q) + H(c), the
    negative of InfoGAN's lower bound on I(c; G(z, c)) up to a constant (eq. 4); G and Q both
    minimize it (ganjax.models.codes)."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(code_logits, codes))


def identity(logits):
    return logits


class Loss(NamedTuple):
    """A loss variant, as data: the steps call its functions and never branch on its name.

    `d_regularizers` names the terms the variant adds to D's objective and `d_constraint` the
    projection of D's parameters after each update; both are built with their weights from the
    config in ganjax.regularizers."""
    d_loss: Callable  # (real_logits, fake_logits) -> scalar
    g_loss: Callable  # fake_logits -> scalar
    d_output: Callable = identity  # logits -> the reported D(x): sigmoid probabilities for gan, critic values otherwise
    d_output_label: str = "critic"  # what d_output is, for plots
    d_regularizers: tuple[str, ...] = ()  # e.g. ("gp",) for wgan-gp
    d_constraint: str | None = None  # e.g. "clip" for wgan


def get_loss(name: str, g_loss: str = "non-saturating") -> Loss:
    """The loss variant called `name` (gan, wgan, wgan-gp, hinge, lsgan)."""
    if name == "gan":
        g = gan_g_loss_non_saturating if g_loss == "non-saturating" else gan_g_loss_minimax
        return Loss(gan_d_loss, g, d_output=jax.nn.sigmoid, d_output_label="D(x)")
    if name == "wgan":
        return Loss(wgan_d_loss, wgan_g_loss, d_constraint="clip")
    if name == "wgan-gp":
        return Loss(wgan_d_loss, wgan_g_loss, d_regularizers=("gp",))
    if name == "hinge":
        return Loss(hinge_d_loss, wgan_g_loss)
    if name == "lsgan":
        return Loss(lsgan_d_loss, lsgan_g_loss)
    raise ValueError(f"unknown loss {name!r}")
