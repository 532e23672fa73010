"""The train state: one pytree holding both networks, their optimizer states, the step and the key.

Static parts (modules, optimizers, objective, schedule) live in `GANSpec`, so that the state is
only arrays: it can be jitted, scanned, donated, replicated and checkpointed as it is.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from ganjax.augment import parse_policy
from ganjax.config import Config
from ganjax.losses import Loss, get_loss
from ganjax.models import build_models, data_shape
from ganjax.regularizers import Term, d_constraint, d_terms


@flax.struct.dataclass
class NetState:
    """One network: trainable parameters, its other flax variable collections (`model_state`, e.g.
    {"batch_stats": running statistics}; {} if none), and the optimizer state."""
    params: Any
    model_state: Any
    opt_state: Any


    def variables(self) -> dict:
        """The flax variables dict of the network: {"params": ..., <collection>: ...}."""
        return {"params": self.params, **self.model_state}


@flax.struct.dataclass
class GANState:
    g: NetState
    d: NetState
    step: jax.Array  # D steps taken so far (int32)
    key: jax.Array  # PRNG key threaded through the steps (z and interpolation draws)
    g_ema: Any  # the EMA of G's variables (ganjax.ema), {} when the run keeps none

    def sampling_variables(self) -> dict:
        """The variables of the generator that samples come from: the EMA one if the run keeps it."""
        return self.g_ema or self.g.variables()


@dataclasses.dataclass(frozen=True, kw_only=True)
class GANSpec:
    """The static spec of a run, what does not change while it trains: networks, optimizers, the
    objective (loss variant, D's regularizer terms and parameter constraint) and the schedule.
    Built from a config by `make_spec`; its fields have no defaults of their own."""
    generator: nn.Module
    discriminator: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: Loss
    d_terms: tuple[Term, ...]  # weighted regularizers added to D's loss (ganjax.regularizers)
    d_constraint: Callable  # D's params -> projected params, after each D update (identity if none)
    z_dim: int
    batch_size: int  # the global batch, whatever the number of devices
    n_critic: int
    ema_decay: float  # decay of G's EMA (ganjax.ema); 0: none
    augment: tuple[str, ...]  # DiffAugment policy (ganjax.augment); (): none
    data_shape: tuple
    axis_name: str | None  # pmap axis when training on several devices (ganjax.parallel), else None
    lr_scale: Callable | None  # D step count -> factor of both learning rates (--lr_decay); None: constant
    num_classes: int  # > 0: a conditional GAN over that many classes (batches are ganjax.data.Labeled); 0: none
    label_probs: tuple[float, ...] | None  # class probabilities of G's fakes (--label_dist=data); None: uniform
    latent_codes: int  # > 0: InfoGAN's categorical code over that many values (ganjax.models.codes)
    info_weight: float  # weight of Q's cross-entropy in both losses, with latent_codes


def make_optimizer(config: Config, lr: float) -> optax.GradientTransformation:
    """The reference optimizers with PyTorch semantics: Adam(lr, (beta1, beta2), eps 1e-8), or
    RMSprop(lr, alpha=rmsprop_decay, eps 1e-8 outside the square root, no momentum)."""
    if config.optimizer == "adam":
        return optax.adam(lr, b1=config.beta1, b2=config.beta2, eps=1e-8)
    if config.optimizer == "rmsprop":
        return optax.rmsprop(lr, decay=config.rmsprop_decay, eps=1e-8, eps_in_sqrt=False)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def lr_scale(config: Config, total_steps: int | None) -> Callable | None:
    """The factor of the learning rates at a D step count, for --lr_decay: linear is optax's
    linear_schedule from 1 at step 0 to 0 at `total_steps` (the run's last step; --steps when not
    given, ValueError if neither is known: epochs count steps only with the data); None when the
    rates stay constant. Applied to the optimizer's updates (ganjax.steps), which for Adam and
    RMSprop is the same as scaling the rate, so the optimizer states keep their structure and a
    resume may switch the schedule."""
    if config.lr_decay == "none":
        return None
    total_steps = config.steps if total_steps is None else total_steps  # --steps is the total when given
    if total_steps is None:
        raise ValueError(f"--lr_decay={config.lr_decay} needs the run's total steps")
    return optax.linear_schedule(1.0, 0.0, max(total_steps, 1))


def make_spec(config: Config, axis_name: str | None = None, class_counts: tuple[int, ...] = (),
              total_steps: int | None = None) -> GANSpec:
    """The static spec of a run; `axis_name` is the pmap axis of a multi-device run (None: one
    device). `batch_size` stays the global batch either way. A conditional run (config.conditional)
    gives its dataset's examples per class, `class_counts`: their number is the models' class count,
    and with --label_dist=data their frequencies are those of G's fake labels. `total_steps`, the
    run's length, times a learning-rate decay (needed only with one)."""
    num_classes = len(class_counts) if config.conditional else 0
    if config.conditional and not num_classes:
        raise ValueError("a conditional run's spec needs the dataset's class_counts")
    label_probs = None
    if num_classes and config.label_dist == "data":
        label_probs = tuple(float(c) / sum(class_counts) for c in class_counts)
    generator, discriminator = build_models(config, axis_name, num_classes)
    return GANSpec(generator=generator, discriminator=discriminator,
                   g_tx=make_optimizer(config, config.lr_g), d_tx=make_optimizer(config, config.lr_d),
                   loss=get_loss(config.loss, config.g_loss), d_terms=d_terms(config),
                   d_constraint=d_constraint(config), z_dim=config.z_dim, batch_size=config.batch_size,
                   n_critic=config.n_critic, ema_decay=config.ema, augment=parse_policy(config.augment), data_shape=data_shape(config),
                   lr_scale=lr_scale(config, total_steps), axis_name=axis_name, num_classes=num_classes,
                   label_probs=label_probs, latent_codes=config.latent_codes, info_weight=config.info_weight)


def seed_keys(seed: int):
    """Independent keys for (init, training draws, data order, fixed sample z) from one seed."""
    init_key, train_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(seed), 4)
    return init_key, train_key, data_key, sample_key


def example_labels(num_classes: int, n: int = 2):
    """Labels to initialize a conditional network with (None for an unconditional one)."""
    return jnp.zeros((n,), jnp.int32) if num_classes else None


def _init_net(module: nn.Module, tx, key, example, labels) -> NetState:
    variables = dict(module.init(key, example, train=False, labels=labels))
    params = variables.pop("params")
    return NetState(params, variables, tx.init(params))


def create_state(spec: GANSpec, seed: int) -> GANState:
    """Fresh networks (reference init), fresh optimizer states, step 0; G's EMA (if kept) starts
    as a copy of G.

    Built in one compiled call: run op by op, the initializers compile one small program
    each, which took 10 s of a tiny run's 30 s."""

    @jax.jit
    def fresh(init_key, train_key):
        g_key, d_key = jax.random.split(init_key)
        labels = example_labels(spec.num_classes)
        g = _init_net(spec.generator, spec.g_tx, g_key, jnp.zeros((2, spec.z_dim), jnp.float32), labels)
        d = _init_net(spec.discriminator, spec.d_tx, d_key, jnp.zeros((2,) + spec.data_shape, jnp.float32), labels)
        g_ema = g.variables() if spec.ema_decay else {}
        return GANState(g=g, d=d, step=jnp.zeros((), jnp.int32), key=train_key, g_ema=g_ema)

    init_key, train_key, _, _ = seed_keys(seed)
    return fresh(init_key, train_key)
