"""Pure, jit-able training steps.

    d_step(spec, state, real) -> (state, metrics)     one discriminator / critic update
    g_step(spec, state)       -> (state, metrics)     one generator update
    train_step(spec, state, real) -> (state, {group: metrics})
                                                      D every step, G when step % n_critic == 0;
                                                      metric groups and their periods: metric_periods
    train_chunk(spec, K, state, data, perm, start, n) K steps in one lax.scan, batches gathered
                                                      on the device from the epoch's permutation

As in the homework's loop, both networks run in training mode in both steps (batch-norm running
statistics of G and D are updated by every forward pass), D sees the real and the fake batch in
two separate forward passes, and the fake batch of the D step is drawn with its own z.
With DiffAugment (`spec.augment`, Zhao et al. 2020) D sees augmented real and fake batches, and
G's loss goes through D on augmented fakes; the augmentation's draws come from a stream of the
step's key of their own (`fold_in`), so runs without it draw exactly what they drew before.
After each G update, G's EMA (ganjax.ema) moves toward it.
With InfoGAN's code (`spec.latent_codes`, ganjax.models.codes) D's pass on the fakes also gives its
head Q's code logits (`apply_d`), and both steps add Q's cross-entropy on the codes their z carry,
weighted `spec.info_weight`: D's step trains Q (and D's shared layers) with it, G's step G.

A conditional run (`spec.num_classes` > 0) takes batches `Labeled(images, labels)` (ganjax.data).
D's step generates its fakes with the real batch's labels, as the conditional CIFAR-10 code of
Gulrajani et al. 2017 does: every real sample has a fake of its class beside it, so D's
regularizer terms see D(., y) with those labels, and the gradient penalty interpolates within
each label. G's step draws its labels (uniform, or the data's frequencies: `spec.label_probs`)
from a stream of the step's key of their own (`fold_in`, LABEL_STREAM), so unconditional runs
draw exactly what they drew before.
Bind `spec` (static, a GANSpec) with functools.partial before jax.jit.

On several devices the same functions run under jax.pmap (`spec.axis_name` set, ganjax.parallel):
every random draw (z, the gradient penalty's eps) and the batch's indices are taken for the global
batch from the same keys as on one device, and each device keeps its slice; gradients and metrics
are averaged over the devices, and batch norm over the global batch. N devices thus follow the
one-device run with the same global batch, up to float rounding.
"""

from __future__ import annotations

import jax
import jax.extend.core
import jax.numpy as jnp
import optax
from jax import lax

from ganjax.augment import augment_with, random_words
from ganjax.data import Labeled, decode
from ganjax.ema import update_ema
from ganjax.latent import sample_labels, sample_z
from ganjax.losses import info_loss
from ganjax.models import codes
from ganjax.parallel import device_mean, device_slice
from ganjax.regularizers import interpolation_weights
from ganjax.state import GANSpec, GANState, NetState


def apply_net(module, params, model_state: dict, x, train: bool, labels=None):
    """module(x) (module(x, labels) for a conditional network) as a pure function; returns (output,
    updated model state). In training mode every non-trainable collection (batch-norm statistics,
    ...) is mutable and comes back updated."""
    variables = {"params": params, **model_state}
    if train and model_state:
        out, updates = module.apply(variables, x, train=True, labels=labels, mutable=list(model_state))
        return out, {**model_state, **updates}
    return module.apply(variables, x, train=train, labels=labels), model_state


def apply_d(spec: GANSpec, params, model_state: dict, x, labels=None):
    """D on a batch in training mode, as apply_net, returning (logits, code logits, updated model
    state): the code logits are those of InfoGAN's head Q (spec.latent_codes > 0,
    ganjax.models.codes), None without one."""
    if not spec.latent_codes:
        logits, model_state = apply_net(spec.discriminator, params, model_state, x, True, labels)
        return logits, None, model_state
    # an empty sow collection in the model state makes apply_net return what D sows into it
    logits, model_state = apply_net(spec.discriminator, params, {**model_state, codes.SOW_COLLECTION: {}}, x, True,
                                    labels)
    return logits, codes.sown_code_logits(model_state.pop(codes.SOW_COLLECTION)), model_state


def info_term(spec: GANSpec, code_logits, z):
    """(Q's cross-entropy on the codes that z carries, its weighted contribution to a loss);
    (None, 0) for a run without InfoGAN's code."""
    if code_logits is None:
        return None, 0.0
    value = info_loss(code_logits, codes.code_of(z, spec.latent_codes))
    return value, spec.info_weight * value


def split_batch(batch):
    """(images, labels) of a batch: a Labeled batch's two parts, or (images, None)."""
    return (batch.images, batch.labels) if isinstance(batch, Labeled) else (batch, None)


def _global_batch(spec: GANSpec, local_batch: int) -> int:
    """Samples in the global batch, of which this device holds `local_batch`."""
    return local_batch * (lax.axis_size(spec.axis_name) if spec.axis_name else 1)


AUGMENT_STREAM = 1  # jax.random.fold_in index of the augmentation draws, beside the step's own splits
LABEL_STREAM = 2  # jax.random.fold_in index of the fake labels of G's step


def augment(spec: GANSpec, key, x):
    """DiffAugment of this device's slice `x` of a batch with the spec's policy (identity if none);
    each sample's parameters are drawn for the global batch and sliced, as z is."""
    if not spec.augment:
        return x
    words = random_words(key, _global_batch(spec, x.shape[0]))  # (policies, words, samples)
    words = jnp.moveaxis(device_slice(jnp.moveaxis(words, -1, 0), spec.axis_name), 0, -1)
    return augment_with(words, x, spec.augment)


def metric_periods(spec: GANSpec) -> dict[str, int]:
    """The metric groups of `train_step`, each with the period of the steps that produce it:
    D's every step, G's every n_critic steps (step % n_critic == 0), the lazy regularizers' every
    `every` steps."""
    periods = {"D": 1, "G": spec.n_critic}
    periods.update({_term_group(t): t.every for t in spec.d_terms if t.every > 1})
    return periods


def _term_group(term) -> str:
    return "D" if term.every == 1 else f"D_every_{term.every}"


def _update(spec: GANSpec, tx, net: NetState, grads, model_state, step) -> NetState:
    """The optimizer's update of one network, scaled by the spec's learning-rate factor at `step`."""
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    if spec.lr_scale is not None:
        scale = spec.lr_scale(step)
        updates = jax.tree.map(lambda u: (scale * u).astype(u.dtype), updates)
    return NetState(optax.apply_updates(net.params, updates), model_state, opt_state)


def evaluate_term(term, critic, real, fake, eps, step):
    """(the term's value, its contribution weight * every * value to D's loss). A lazy term
    (every > 1) is computed, and differentiated, only when step % every == 0; on other steps it
    contributes 0 and reports NaN (masked by its group's period, `metric_periods`)."""
    def computed():
        value = term.fn(critic, real, fake, eps)
        return value, term.weight * term.every * value
    if term.every == 1:
        return computed()
    return lax.cond(step % term.every == 0, computed, lambda: (jnp.float32(jnp.nan), jnp.float32(0.0)))


def d_step(spec: GANSpec, state: GANState, real):
    """One D update on a real batch (images, or Labeled images) and a fresh fake batch (of the real
    batch's labels): the adversarial loss plus the spec's regularizer terms, then the spec's
    parameter constraint."""
    real, labels = split_batch(real)
    key, z_key, eps_key = jax.random.split(state.key, 3)
    real_aug_key, fake_aug_key = jax.random.split(jax.random.fold_in(state.key, AUGMENT_STREAM))
    n = _global_batch(spec, real.shape[0])
    z = device_slice(sample_z(z_key, n, spec.z_dim, real.dtype), spec.axis_name)
    eps = device_slice(interpolation_weights(eps_key, n, real.ndim - 1, real.dtype), spec.axis_name)
    fake, g_state = apply_net(spec.generator, state.g.params, state.g.model_state, z, True, labels)
    fake = lax.stop_gradient(fake)
    real, fake = augment(spec, real_aug_key, real), augment(spec, fake_aug_key, fake)

    def loss_fn(d_params):
        real_logits, d_state = apply_net(spec.discriminator, d_params, state.d.model_state, real, True, labels)
        fake_logits, code_logits, d_state = apply_d(spec, d_params, d_state, fake, labels)
        loss = spec.loss.d_loss(real_logits, fake_logits)
        critic = lambda x: apply_net(spec.discriminator, d_params, d_state, x, True, labels)[0]
        info, loss_info = info_term(spec, code_logits, z)
        loss = loss + loss_info
        term_values = {}
        for term in spec.d_terms:
            term_values[term.name], contribution = evaluate_term(term, critic, real, fake, eps, state.step)
            loss = loss + contribution
        return loss, (d_state, real_logits, fake_logits, term_values, info)

    (loss, (d_state, real_logits, fake_logits, term_values, info)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state.d.params)
    d = _update(spec, spec.d_tx, state.d, device_mean(grads, spec.axis_name), d_state, state.step)
    d = d.replace(params=spec.d_constraint(d.params))
    metrics = {"D": {
        "loss_D": loss,
        "D_real": jnp.mean(spec.loss.d_output(real_logits)),
        "D_fake": jnp.mean(spec.loss.d_output(fake_logits)),
        "wasserstein": jnp.mean(real_logits) - jnp.mean(fake_logits),
    }}
    if info is not None:
        metrics["D"]["info_D"] = info
    for term in spec.d_terms:
        metrics.setdefault(_term_group(term), {})[term.name] = term_values[term.name]
    state = state.replace(g=state.g.replace(model_state=g_state), d=d, key=key)
    return state, device_mean(metrics, spec.axis_name)


def g_step(spec: GANSpec, state: GANState):
    """One G update against the current D on a fresh batch of z (augmented before D sees it, if
    the spec augments); then G's EMA, if kept, takes a step toward the new G."""
    key, z_key = jax.random.split(state.key)
    aug_key = jax.random.fold_in(state.key, AUGMENT_STREAM)
    z = device_slice(sample_z(z_key, spec.batch_size, spec.z_dim), spec.axis_name)
    labels = None
    if spec.num_classes:
        labels = device_slice(sample_labels(jax.random.fold_in(state.key, LABEL_STREAM), spec.batch_size,
                                            spec.num_classes, spec.label_probs), spec.axis_name)

    def loss_fn(g_params):
        fake, g_state = apply_net(spec.generator, g_params, state.g.model_state, z, True, labels)
        logits, code_logits, d_state = apply_d(spec, state.d.params, state.d.model_state,
                                               augment(spec, aug_key, fake), labels)
        info, contribution = info_term(spec, code_logits, z)
        return spec.loss.g_loss(logits) + contribution, (g_state, d_state, info)

    (loss, (g_state, d_state, info)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g.params)
    g = _update(spec, spec.g_tx, state.g, device_mean(grads, spec.axis_name), g_state, state.step)
    d = state.d.replace(model_state=d_state)
    g_ema = state.g_ema
    if spec.ema_decay:  # t = the G updates before this one (G updates on steps 0, n_critic, 2 n_critic, ...)
        g_ema = update_ema(g_ema, g.variables(), spec.ema_decay, state.step // spec.n_critic)
    metrics = {"loss_G": loss} if info is None else {"loss_G": loss, "info_G": info}
    return state.replace(g=g, d=d, key=key, g_ema=g_ema), device_mean(metrics, spec.axis_name)


def nan_like(shapes):
    """NaN metrics of the given shapes (jax.eval_shape of a step's metrics): what a skipped step reports."""
    return jax.tree.map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), shapes)


def train_step(spec: GANSpec, state: GANState, real):
    """D every step, G when step % n_critic == 0 (the homework's schedule); then step += 1.
    Metrics come grouped by where they come from (`metric_periods`): {"D": d_step's, "G":
    g_step's, "D_every_N": lazy regularizers'}; a group's metrics are NaN on the steps outside
    its period."""
    state, metrics = d_step(spec, state, real)
    if spec.n_critic == 1:
        state, g_metrics = g_step(spec, state)
    else:
        skip = lambda s: (s, nan_like(jax.eval_shape(lambda s: g_step(spec, s)[1], s)))
        state, g_metrics = lax.cond(state.step % spec.n_critic == 0, lambda s: g_step(spec, s), skip, state)
    return state.replace(step=state.step + 1), {**metrics, "G": g_metrics}


def gather_batch(data, perm, position, batch_size: int, axis_name: str | None = None):
    """Batch number `position` (of `batch_size`, global) of the epoch whose order is `perm`,
    decoded to float32 (the rows of every array of a Labeled dataset); under pmap, this device's
    slice of it."""
    idx = device_slice(lax.dynamic_slice_in_dim(perm, position * batch_size, batch_size), axis_name)
    return decode(jax.tree.map(lambda array: jnp.take(array, idx, axis=0), data))


def train_chunk(spec: GANSpec, chunk_size: int, state: GANState, data, perm, start, n_valid):
    """`n_valid` (<= chunk_size) train steps over batches start, start+1, ... of one epoch, in one
    lax.scan; the remaining iterations are skipped, so every chunk of a run shares one compiled
    program. Returns the state and per-step metrics (NaN for skipped iterations)."""

    def step(state, i):
        return train_step(spec, state, gather_batch(data, perm, start + i, spec.batch_size, spec.axis_name))

    # The step is traced once: its jaxpr is the cond's branch, and its output shapes give the skipped
    # iterations' NaN metrics (tracing it again for those shapes doubled the trace: the default
    # chunk's 0.71 s against 0.37 s, the ResNet's 2.2 against 1.3 s; the lowered program is the same).
    traced, (_, metrics_shape) = jax.make_jaxpr(step, return_shape=True)(state, jnp.int32(0))

    def traced_step(state, i):
        outputs = jax.extend.core.jaxpr_as_fun(traced)(*jax.tree.leaves((state, i)))
        return jax.tree.unflatten(jax.tree.structure((state, metrics_shape)), outputs)

    skip = lambda s, i: (s, nan_like(metrics_shape))

    def body(state, i):
        return lax.cond(i < n_valid, traced_step, skip, state, i)

    return lax.scan(body, state, jnp.arange(chunk_size))
