"""The train state: one pytree holding both networks, their optimizer states, the step and the key.

Static parts (modules, optimizers, loss, schedule) live in `GAN`, so that the state is only
arrays: it can be jitted, scanned, donated, replicated and checkpointed as it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from ganjax.config import Config
from ganjax.losses import Loss, get_loss
from ganjax.models import build_models, data_shape


@flax.struct.dataclass
class NetState:
    """One network: parameters, batch-norm running statistics ({} if none), optimizer state."""
    params: Any
    batch_stats: Any
    opt_state: Any


@flax.struct.dataclass
class GANState:
    g: NetState
    d: NetState
    step: jax.Array  # D steps taken so far (int32)
    key: jax.Array  # PRNG key threaded through the steps (z and interpolation draws)


@dataclasses.dataclass(frozen=True)
class GAN:
    """What does not change during a run: networks, optimizers, loss variant and step schedule."""
    generator: nn.Module
    discriminator: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: Loss
    z_dim: int
    batch_size: int
    n_critic: int = 1
    clip_value: float = 0.01
    gp_weight: float = 10.0
    data_shape: tuple = ()
    axis_name: str | None = None  # pmap axis when training on several devices (ganjax.parallel)


def make_optimizer(config: Config, lr: float) -> optax.GradientTransformation:
    """The reference optimizers with PyTorch semantics: Adam(lr, (beta1, beta2), eps 1e-8), or
    RMSprop(lr, alpha=rmsprop_decay, eps 1e-8 outside the square root, no momentum)."""
    if config.optimizer == "adam":
        return optax.adam(lr, b1=config.beta1, b2=config.beta2, eps=1e-8)
    if config.optimizer == "rmsprop":
        return optax.rmsprop(lr, decay=config.rmsprop_decay, eps=1e-8, eps_in_sqrt=False)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def make_gan(config: Config, axis_name: str | None = None) -> GAN:
    """The static parts of a run; `axis_name` is the pmap axis of a multi-device run (None: one
    device). `batch_size` stays the global batch either way."""
    generator, discriminator = build_models(config, axis_name)
    return GAN(generator, discriminator, make_optimizer(config, config.lr_g), make_optimizer(config, config.lr_d),
               get_loss(config.loss, config.g_loss), config.z_dim, config.batch_size, config.n_critic,
               config.clip_value, config.gp_weight, data_shape(config), axis_name)


def seed_keys(seed: int):
    """Independent keys for (init, training draws, data order, fixed sample z) from one seed."""
    init_key, train_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(seed), 4)
    return init_key, train_key, data_key, sample_key


def _init_net(module: nn.Module, tx, key, example) -> NetState:
    variables = module.init(key, example, train=False)
    params = variables["params"]
    return NetState(params, variables.get("batch_stats", {}), tx.init(params))


def create_state(gan: GAN, seed: int) -> GANState:
    """Fresh networks (reference init), fresh optimizer states, step 0.

    Built in one compiled call: run op by op, the initializers compile one small program
    each, which took 10 s of a tiny run's 30 s."""

    @jax.jit
    def fresh(init_key, train_key):
        g_key, d_key = jax.random.split(init_key)
        g = _init_net(gan.generator, gan.g_tx, g_key, jnp.zeros((2, gan.z_dim), jnp.float32))
        d = _init_net(gan.discriminator, gan.d_tx, d_key, jnp.zeros((2,) + gan.data_shape, jnp.float32))
        return GANState(g=g, d=d, step=jnp.zeros((), jnp.int32), key=train_key)

    init_key, train_key, _, _ = seed_keys(seed)
    return fresh(init_key, train_key)
