"""--dtype=bfloat16: the networks compute in bfloat16, everything that is kept or compared (weights,
optimizer states, batch-norm statistics, losses, gradient penalty, gradients) stays float32, and a
training step follows the float32 one to bfloat16 rounding."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax.config import Config, resolve
from ganjax.state import create_state, make_spec
from ganjax.steps import train_step

LR = 1e-3  # plain SGD, so that (old - new) / LR is the gradient itself

CASES = {
    # convolutions, batch norm in G, instance norm in D, the penalty's double backward
    "dcgan-wgan-gp": dict(loss="wgan-gp", resolution=16, features=8, batch_size=8),
    # dense layers (a norm in a 64-wide D loses G's gradient to bfloat16 rounding: README)
    "mlp-gan": dict(loss="gan", dataset="toy:ring8", batch_size=64, mlp_width=64),
}


def one_step(dtype: str, settings: dict):
    """(state before, state after, metrics, D gradient, G gradient) of one train_step under SGD."""
    config = resolve(Config(dtype=dtype, lr_decay="none", **settings))
    gan = dataclasses.replace(make_spec(config), g_tx=optax.sgd(LR), d_tx=optax.sgd(LR))
    state = create_state(gan, 0)
    real = jax.random.uniform(jax.random.PRNGKey(1), (config.batch_size,) + gan.data_shape, minval=-1, maxval=1)
    new, metrics = jax.jit(functools.partial(train_step, gan))(state, real)
    metrics = {**metrics["D"], **metrics["G"]}
    grad = lambda old, updated: np.concatenate(
        [np.ravel(a - b) / LR for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(updated))])
    return state, new, metrics, grad(state.d.params, new.d.params), grad(state.g.params, new.g.params)


@pytest.mark.parametrize("case", CASES)
def test_bfloat16_step_follows_float32(case):
    s32, n32, m32, d32, g32 = one_step("float32", CASES[case])
    s16, n16, m16, d16, g16 = one_step("bfloat16", CASES[case])
    # The initial weights do not depend on the compute dtype, and nothing kept leaves float32.
    for a, b in zip(jax.tree.leaves(s32), jax.tree.leaves(s16)):
        np.testing.assert_array_equal(a, b)
    assert jax.tree.map(lambda x: x.dtype, n16) == jax.tree.map(lambda x: x.dtype, n32)
    assert all(m.dtype == jnp.float32 for m in m16.values())
    # Means of critic values (loss_G, wasserstein) cancel to far below the values themselves, so
    # their rounding error is on the scale of D's outputs, not of the mean: 5 % of that scale
    # (bfloat16 keeps 8 significant bits through every layer, and G's loss follows a D update
    # made with bfloat16 gradients).
    scale = max(abs(float(m32["D_real"])), abs(float(m32["D_fake"])))
    for name in m32:
        np.testing.assert_allclose(m16[name], m32[name], rtol=2e-2, atol=max(1e-3, 5e-2 * scale), err_msg=name)
    for g_16, g_32 in ((d16, d32), (g16, g32)):
        rel = np.linalg.norm(g_16 - g_32) / np.linalg.norm(g_32)
        cos = g_16 @ g_32 / np.linalg.norm(g_16) / np.linalg.norm(g_32)
        assert cos > 0.98 and rel < 0.2, (cos, rel)  # bfloat16 keeps 8 significant bits
        assert rel > 1e-4  # and it did compute in bfloat16: float32 would agree to ~1e-7


def test_bfloat16_models_return_float32():
    for settings in CASES.values():
        gan = make_spec(resolve(Config(dtype="bfloat16", lr_decay="none", **settings)))
        state = create_state(gan, 0)
        z = jnp.ones((2, gan.z_dim))
        variables = {"params": state.g.params, **state.g.model_state}
        images = jax.jit(functools.partial(gan.generator.apply, train=False))(variables, z)
        assert images.dtype == jnp.float32 and images.shape == (2,) + gan.data_shape
        logits = jax.jit(functools.partial(gan.discriminator.apply, train=False))(
            {"params": state.d.params, **state.d.model_state}, images)
        assert logits.dtype == jnp.float32 and logits.shape == (2,)
