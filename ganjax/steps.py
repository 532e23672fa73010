"""Pure, jit-able training steps.

    d_step(gan, state, real) -> (state, metrics)     one discriminator / critic update
    g_step(gan, state)       -> (state, metrics)     one generator update
    train_step(gan, state, real)                     D every step, G when step % n_critic == 0
    train_chunk(gan, K, state, data, perm, start, n) K steps in one lax.scan, batches gathered
                                                     on the device from the epoch's permutation

As in the homework's loop, both networks run in training mode in both steps (batch-norm running
statistics of G and D are updated by every forward pass), D sees the real and the fake batch in
two separate forward passes, and the fake batch of the D step is drawn with its own z.
Bind `gan` (static) with functools.partial before jax.jit.

On several devices the same functions run under jax.pmap (`gan.axis_name` set, ganjax.parallel):
every random draw (z, the gradient penalty's eps) and the batch's indices are taken for the global
batch from the same keys as on one device, and each device keeps its slice; gradients and metrics
are averaged over the devices, and batch norm over the global batch. N devices thus follow the
one-device run with the same global batch, up to float rounding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax import lax

from ganjax.data import decode
from ganjax.losses import clip_weights, gradient_penalty, interpolation_weights
from ganjax.parallel import device_mean, device_slice
from ganjax.state import GAN, GANState, NetState


def apply_net(module, params, batch_stats, x, train: bool):
    """module(x) as a pure function; returns (output, updated batch statistics)."""
    variables = {"params": params}
    if batch_stats:
        variables["batch_stats"] = batch_stats
        if train:
            out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
            return out, updates["batch_stats"]
    return module.apply(variables, x, train=train), batch_stats


def _global_batch(gan: GAN, local_batch: int) -> int:
    """Samples in the global batch, of which this device holds `local_batch`."""
    return local_batch * (lax.axis_size(gan.axis_name) if gan.axis_name else 1)


def _update(tx, net: NetState, grads, batch_stats) -> NetState:
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    return NetState(optax.apply_updates(net.params, updates), batch_stats, opt_state)


def d_step(gan: GAN, state: GANState, real):
    """One D update on a real batch and a fresh fake batch; clipping or the gradient penalty as
    the loss asks."""
    key, z_key, eps_key = jax.random.split(state.key, 3)
    n = _global_batch(gan, real.shape[0])
    z = device_slice(jax.random.normal(z_key, (n, gan.z_dim), real.dtype), gan.axis_name)
    eps = device_slice(interpolation_weights(eps_key, n, real.ndim - 1, real.dtype), gan.axis_name)
    fake, g_stats = apply_net(gan.generator, state.g.params, state.g.batch_stats, z, True)
    fake = lax.stop_gradient(fake)

    def loss_fn(d_params):
        real_logits, stats = apply_net(gan.discriminator, d_params, state.d.batch_stats, real, True)
        fake_logits, stats = apply_net(gan.discriminator, d_params, stats, fake, True)
        loss = gan.loss.d_loss(real_logits, fake_logits)
        gp = jnp.zeros((), loss.dtype)
        if gan.loss.penalty:
            critic = lambda x: apply_net(gan.discriminator, d_params, stats, x, True)[0]
            gp = gradient_penalty(critic, real, fake, eps=eps)
            loss = loss + gan.gp_weight * gp
        return loss, (stats, real_logits, fake_logits, gp)

    (loss, (d_stats, real_logits, fake_logits, gp)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.d.params)
    d = _update(gan.d_tx, state.d, device_mean(grads, gan.axis_name), d_stats)
    if gan.loss.clip:
        d = d.replace(params=clip_weights(d.params, gan.clip_value))
    out = jax.nn.sigmoid if gan.loss.probabilities else (lambda v: v)
    metrics = {
        "loss_D": loss,
        "D_real": jnp.mean(out(real_logits)),
        "D_fake": jnp.mean(out(fake_logits)),
        "wasserstein": jnp.mean(real_logits) - jnp.mean(fake_logits),
        "gp": gp,
    }
    return state.replace(g=state.g.replace(batch_stats=g_stats), d=d, key=key), device_mean(metrics, gan.axis_name)


def g_step(gan: GAN, state: GANState):
    """One G update against the current D on a fresh batch of z."""
    key, z_key = jax.random.split(state.key)
    z = device_slice(jax.random.normal(z_key, (gan.batch_size, gan.z_dim), jnp.float32), gan.axis_name)

    def loss_fn(g_params):
        fake, g_stats = apply_net(gan.generator, g_params, state.g.batch_stats, z, True)
        logits, d_stats = apply_net(gan.discriminator, state.d.params, state.d.batch_stats, fake, True)
        return gan.loss.g_loss(logits), (g_stats, d_stats)

    (loss, (g_stats, d_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g.params)
    g = _update(gan.g_tx, state.g, device_mean(grads, gan.axis_name), g_stats)
    d = state.d.replace(batch_stats=d_stats)
    return state.replace(g=g, d=d, key=key), {"loss_G": device_mean(loss, gan.axis_name)}


def train_step(gan: GAN, state: GANState, real):
    """D every step, G when step % n_critic == 0 (the homework's schedule); then step += 1.
    loss_G is NaN on steps without a G update."""
    state, metrics = d_step(gan, state, real)
    if gan.n_critic == 1:
        state, g_metrics = g_step(gan, state)
    else:
        skip = lambda s: (s, {"loss_G": jnp.full((), jnp.nan, jnp.float32)})
        state, g_metrics = lax.cond(state.step % gan.n_critic == 0, lambda s: g_step(gan, s), skip, state)
    return state.replace(step=state.step + 1), {**metrics, **g_metrics}


def gather_batch(data, perm, position, batch_size: int, axis_name: str | None = None):
    """Batch number `position` (of `batch_size`, global) of the epoch whose order is `perm`,
    decoded to float32; under pmap, this device's slice of it."""
    idx = device_slice(lax.dynamic_slice_in_dim(perm, position * batch_size, batch_size), axis_name)
    return decode(jnp.take(data, idx, axis=0))


def train_chunk(gan: GAN, chunk_size: int, state: GANState, data, perm, start, n_valid):
    """`n_valid` (<= chunk_size) train steps over batches start, start+1, ... of one epoch, in one
    lax.scan; the remaining iterations are skipped, so every chunk of a run shares one compiled
    program. Returns the state and per-step metrics (NaN for skipped iterations)."""

    def step(state, i):
        return train_step(gan, state, gather_batch(data, perm, start + i, gan.batch_size, gan.axis_name))

    metric_shapes = jax.eval_shape(lambda s: step(s, 0)[1], state)
    skip = lambda s, i: (s, jax.tree.map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), metric_shapes))

    def body(state, i):
        return lax.cond(i < n_valid, step, skip, state, i)

    return lax.scan(body, state, jnp.arange(chunk_size))
