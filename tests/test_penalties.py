"""R1 and R2 (Mescheder et al. 2018) against finite differences, and lazy regularization
(StyleGAN2): the term computed on its steps only, scaled by its period, reported in its own group."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.regularizers import r1_penalty, r2_penalty
from ganjax.state import create_state, make_spec
from ganjax.steps import d_step, metric_periods, train_step
from ganjax.training import progress_losses, step_masks, summarize_chunk
from tests.conftest import small_config


def critic_of(params, x):
    """A small nonlinear critic, one value per sample: sum(tanh(x W) v)."""
    w, v = params
    return jnp.tanh(x.reshape(x.shape[0], -1) @ w) @ v


def finite_difference_squared_norms(f, x, h=1e-3):
    """||grad f(x_i)||^2 per sample by central differences, in float64."""
    x = np.asarray(x, np.float64)
    out = []
    for i in range(len(x)):
        grad = np.zeros(x[i].size)
        for j in range(x[i].size):
            step = np.zeros(x[i].size)
            step[j] = h
            plus, minus = x[i].ravel() + step, x[i].ravel() - step
            grad[j] = (f(plus.reshape(1, *x.shape[1:]))[0] - f(minus.reshape(1, *x.shape[1:]))[0]) / (2 * h)
        out.append(np.sum(grad ** 2))
    return np.array(out)


@pytest.mark.parametrize("penalty,which", [(r1_penalty, "real"), (r2_penalty, "fake")])
def test_penalty_is_the_mean_squared_gradient_norm_by_finite_differences(penalty, which):
    with jax.enable_x64():
        keys = jax.random.split(jax.random.PRNGKey(0), 4)
        params = (jax.random.normal(keys[0], (12, 5), jnp.float64), jax.random.normal(keys[1], (5,), jnp.float64))
        real = jax.random.normal(keys[2], (3, 2, 2, 3), jnp.float64)
        fake = jax.random.normal(keys[3], (3, 2, 2, 3), jnp.float64)
        critic = functools.partial(critic_of, params)
        got = penalty(critic, real, fake, None)
        expected = finite_difference_squared_norms(lambda x: np.asarray(critic(jnp.asarray(x))),
                                                   real if which == "real" else fake).mean()
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_lazy_penalty_is_computed_every_n_steps_scaled_by_n():
    base = small_config(loss="hinge", d_norm="none")
    lazy = small_config(loss="hinge", d_norm="none", r1=2.0, reg_every=3)
    eager = small_config(loss="hinge", d_norm="none", r1=2.0 * 3)  # what a lazy step adds: weight 3 * gamma / 2
    state = create_state(make_spec(base), 0)
    real = jax.random.uniform(jax.random.PRNGKey(1), (8,) + make_spec(base).data_shape, minval=-1, maxval=1)
    run = lambda config, s: jax.jit(functools.partial(d_step, make_spec(config)))(s, real)
    assert metric_periods(make_spec(lazy)) == {"D": 1, "G": 1, "D_every_3": 3}
    for step, like in ((0, eager), (1, base), (2, base), (3, eager)):
        s = state.replace(step=jnp.int32(step))
        new, metrics = run(lazy, s)
        expected, expected_metrics = run(like, s)
        np.testing.assert_allclose(metrics["D"]["loss_D"], expected_metrics["D"]["loss_D"], rtol=1e-6)
        for a, b in zip(jax.tree.leaves(new.d.params), jax.tree.leaves(expected.d.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        r1 = metrics["D_every_3"]["r1"]
        if like is eager:
            np.testing.assert_allclose(r1, expected_metrics["D"]["r1"], rtol=1e-6)  # the value itself, unscaled
        else:
            assert np.isnan(r1)


def test_a_lazy_term_is_averaged_over_its_own_steps_only():
    spec = make_spec(small_config(loss="hinge", d_norm="none", r1=1.0, reg_every=2))
    state = create_state(spec, 0)
    real = jax.random.uniform(jax.random.PRNGKey(1), (8,) + spec.data_shape, minval=-1, maxval=1)
    step = jax.jit(functools.partial(train_step, spec))
    per_step = []
    for _ in range(4):
        state, metrics = step(state, real)
        per_step.append(metrics)
    stacked = jax.tree.map(lambda *v: np.stack(v), *per_step)
    summary = summarize_chunk(stacked, step_masks(0, 4, metric_periods(spec)))
    np.testing.assert_allclose(summary["r1"], np.mean(stacked["D_every_2"]["r1"][[0, 2]]), rtol=1e-6)
    assert np.isfinite(summary["r1"]) and np.isfinite(summary["loss_D"])


def test_progress_bar_keeps_the_last_g_loss_over_a_chunk_of_d_steps_only():
    """With n_critic 5, a 2-step chunk from step 1 has no G step: its record's loss_G is NaN (as
    logged), and the progress bar keeps showing the last chunk's value instead."""
    metrics = {"D": {"loss_D": np.array([0.5, 0.7])}, "G": {"loss_G": np.array([np.nan, np.nan])}}
    record = summarize_chunk(metrics, step_masks(1, 2, {"D": 1, "G": 5}))
    assert np.isnan(record["loss_G"]) and record["loss_D"] == pytest.approx(0.6)
    shown = progress_losses({"loss_G": 1.25, "loss_D": 0.9}, record)
    assert shown == {"loss_G": 1.25, "loss_D": pytest.approx(0.6)}
    assert progress_losses({}, record) == {"loss_D": pytest.approx(0.6)}
