"""The train step: schedule, clipping, which network each step changes, scan == loop, determinism."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.data import epoch_permutation, load_dataset
from ganjax.state import create_state, make_spec
from ganjax.steps import d_step, g_step, gather_batch, train_chunk, train_step
from tests.conftest import small_config


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def setup(**overrides):
    cfg = small_config(**overrides)
    spec = make_spec(cfg)
    data = jnp.asarray(load_dataset(cfg).array[:64])
    perm = epoch_permutation(jax.random.PRNGKey(1), 0, 64)
    return cfg, spec, create_state(spec, cfg.seed), data, perm


def test_d_step_changes_only_d_params_and_g_step_only_g_params():
    cfg, spec, state, data, perm = setup()
    real = gather_batch(data, perm, 0, cfg.batch_size)
    after_d, metrics = jax.jit(functools.partial(d_step, spec))(state, real)
    assert leaves_equal(after_d.g.params, state.g.params)
    assert not leaves_equal(after_d.d.params, state.d.params)
    assert not leaves_equal(after_d.g.model_state, state.g.model_state)  # G ran in training mode
    assert set(metrics["D"]) == {"loss_D", "D_real", "D_fake", "wasserstein"}  # no regularizer term for gan
    assert set(metrics) == {"D"}  # no lazy term either
    after_g, metrics = jax.jit(functools.partial(g_step, spec))(after_d)
    assert leaves_equal(after_g.d.params, after_d.d.params)
    assert not leaves_equal(after_g.g.params, after_d.g.params)
    assert not np.array_equal(after_g.key, after_d.key)
    assert np.isfinite(metrics["loss_G"])


def test_n_critic_schedule_updates_g_when_step_mod_n_critic_is_zero():
    cfg, spec, state, data, perm = setup(n_critic=3)
    step = jax.jit(functools.partial(train_step, spec))
    updated = []
    for i in range(7):
        new, metrics = step(state, gather_batch(data, perm, i, cfg.batch_size))
        updated.append(not leaves_equal(new.g.params, state.g.params))
        assert np.isnan(metrics["G"]["loss_G"]) != updated[-1]
        assert not leaves_equal(new.d.params, state.d.params)  # D every step
        state = new
    assert updated == [True, False, False, True, False, False, True]
    assert int(state.step) == 7


def test_wgan_clips_every_critic_weight_after_each_d_update():
    cfg, spec, state, data, perm = setup(loss="wgan", clip_value=0.01)
    assert not spec.d_terms
    before = max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.d.params))
    assert before > 0.01  # the init is outside the box, so the test can fail
    state, _ = jax.jit(functools.partial(train_step, spec))(state, gather_batch(data, perm, 0, cfg.batch_size))
    assert max(float(jnp.abs(p).max()) for p in jax.tree.leaves(state.d.params)) <= 0.01


def test_wgan_gp_reports_a_positive_penalty():
    cfg, spec, state, data, perm = setup(loss="wgan-gp")
    _, metrics = jax.jit(functools.partial(d_step, spec))(state, gather_batch(data, perm, 0, cfg.batch_size))
    assert float(metrics["D"]["gp"]) > 0


@pytest.mark.parametrize("loss,n_critic", [("gan", 1), ("wgan-gp", 2), ("wgan", 3)])
def test_scan_chunk_equals_step_by_step_loop(loss, n_critic):
    cfg, spec, state, data, perm = setup(loss=loss, n_critic=n_critic)
    chunk = jax.jit(functools.partial(train_chunk, spec, 6))
    scanned, metrics = chunk(state, data, perm, 1, 5)  # batches 1..5; the sixth iteration is skipped

    step = jax.jit(functools.partial(train_step, spec))
    looped = state
    for i in range(1, 6):
        looped, m = step(looped, gather_batch(data, perm, i, cfg.batch_size))
    assert int(scanned.step) == int(looped.step) == 5
    for a, b in zip(jax.tree.leaves(scanned), jax.tree.leaves(looped)):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(metrics["D"]["loss_D"][4], m["D"]["loss_D"], rtol=1e-5)
    assert np.isnan(metrics["D"]["loss_D"][5])  # skipped iteration
    assert all(np.isnan(v[5]) for group in metrics.values() for v in group.values())


def test_a_chunk_traces_its_step_once(monkeypatch):
    """The skipped iterations' NaN metrics take their shapes from the one trace of the step, not a
    second trace (which doubled the chunk's start-up)."""
    import ganjax.steps

    cfg, spec, state, data, perm = setup()
    traces = []
    monkeypatch.setattr(ganjax.steps, "train_step", lambda *a: traces.append(1) or train_step(*a))
    jax.jit(functools.partial(train_chunk, spec, 3)).lower(state, data, perm, 0, 2)
    assert len(traces) == 1


def test_same_seed_gives_bitwise_same_parameters():
    results = []
    for _ in range(2):
        cfg, spec, state, data, perm = setup(loss="wgan-gp", n_critic=2)
        state, _ = jax.jit(functools.partial(train_chunk, spec, 4))(state, data, perm, 0, 4)
        results.append(state)
    assert leaves_equal(results[0], results[1])
    _, spec, state, data, perm = setup(loss="wgan-gp", n_critic=2, seed=1)
    other, _ = jax.jit(functools.partial(train_chunk, spec, 4))(state, data, perm, 0, 4)
    assert not leaves_equal(results[0].g.params, other.g.params)


def test_a_new_regularizer_term_plugs_into_d_step_without_touching_it():
    """The seam of the objective: a term is a pure function in the spec's list; d_step adds it
    with its weight and reports it under its own name."""
    from ganjax.regularizers import Term

    cfg, spec, state, data, perm = setup(loss="wgan-gp", d_norm="none")
    real = gather_batch(data, perm, 0, cfg.batch_size)
    squared_real = lambda critic, real, fake, eps: jnp.mean(critic(real) ** 2)
    extended = dataclasses.replace(spec, d_terms=spec.d_terms + (Term("squared_real", squared_real, 0.5),))
    _, base = jax.jit(functools.partial(d_step, spec))(state, real)
    _, metrics = jax.jit(functools.partial(d_step, extended))(state, real)
    base, metrics = base["D"], metrics["D"]
    assert set(metrics) == set(base) | {"squared_real"}
    expected = jnp.mean(spec.discriminator.apply({"params": state.d.params}, real, train=True) ** 2)
    np.testing.assert_allclose(metrics["squared_real"], expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["loss_D"], base["loss_D"] + 0.5 * expected, rtol=1e-5)
    np.testing.assert_allclose(metrics["gp"], base["gp"], rtol=1e-6)
