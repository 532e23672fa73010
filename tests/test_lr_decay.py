"""--lr_decay=linear (ganjax.state.lr_scale): the factor by hand, a decayed step equals a step at
the hand-decayed learning rate (plain SGD would hide an Adam mistake: Adam's step is lr times its
normalized update, so both optimizers are checked), and the constant schedule is untouched."""

import dataclasses
import functools
import shutil

import jax
import numpy as np
import pytest

from ganjax.errors import UserError
from ganjax.config import resolve
from ganjax.state import create_state, lr_scale, make_spec
from ganjax.steps import train_step
from ganjax.training import train
from tests.conftest import small_config
from tests.test_checkpoints import assert_same_state


def test_linear_factor_falls_from_one_to_zero_at_the_last_step():
    scale = lr_scale(small_config(lr_decay="linear"), total_steps=40)
    np.testing.assert_allclose([scale(0), scale(10), scale(30), scale(40), scale(55)], [1.0, 0.75, 0.25, 0.0, 0.0])
    assert lr_scale(small_config(lr_decay="none"), total_steps=40) is None  # constant: no factor at all
    np.testing.assert_allclose(lr_scale(small_config(lr_decay="linear", steps=40), None)(10), 0.75)  # --steps
    with pytest.raises(ValueError, match="total steps"):  # epochs count steps only with the data
        lr_scale(small_config(lr_decay="linear"), total_steps=None)


def _state_after(spec, steps: int):
    """The state of `spec` after `steps` train steps on random batches."""
    state = create_state(spec, 0)
    step = jax.jit(functools.partial(train_step, spec))
    for i in range(steps):
        real = jax.random.uniform(jax.random.PRNGKey(i), (8,) + spec.data_shape, minval=-1, maxval=1)
        state, _ = step(state, real)
    return state


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_a_decayed_step_is_a_step_at_the_decayed_learning_rate(optimizer):
    """Step 3 of a 4-step linear decay runs at lr / 4: from the same state after steps 0-2, the
    decayed run's step equals the constant run's step at lr / 4, for both networks."""
    decayed = small_config(optimizer=optimizer, lr=2e-3, lr_g=None, lr_d=None, lr_decay="linear")
    spec = make_spec(decayed, total_steps=4)
    state = _state_after(spec, 3)
    assert int(state.step) == 3
    real = jax.random.uniform(jax.random.PRNGKey(99), (8,) + spec.data_shape, minval=-1, maxval=1)
    after_decayed, _ = jax.jit(functools.partial(train_step, spec))(state, real)
    quarter = resolve(dataclasses.replace(decayed, lr=5e-4, lr_g=None, lr_d=None, lr_decay="none"))
    quarter_spec = make_spec(quarter)
    assert quarter_spec.lr_scale is None
    after_quarter, _ = jax.jit(functools.partial(train_step, quarter_spec))(state, real)
    for net in ("g", "d"):
        moved = jax.tree.leaves(jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)).max(),
                                             getattr(after_decayed, net).params, getattr(state, net).params))
        assert max(moved) > 1e-6  # the step did move the weights
        for got, want in zip(jax.tree.leaves(getattr(after_decayed, net).params),
                             jax.tree.leaves(getattr(after_quarter, net).params)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_the_decay_ends_training_with_steps_of_zero():
    """After the last step of the schedule the factor is 0: a further step leaves the weights."""
    spec = make_spec(small_config(lr_decay="linear"), total_steps=2)
    state = _state_after(spec, 2)
    real = jax.random.uniform(jax.random.PRNGKey(7), (8,) + spec.data_shape, minval=-1, maxval=1)
    after, _ = jax.jit(functools.partial(train_step, spec))(state, real)
    for got, want in zip(jax.tree.leaves(after.g.params), jax.tree.leaves(state.g.params)):
        np.testing.assert_array_equal(got, want)


def test_an_unknown_schedule_is_refused_with_one_line():
    with pytest.raises(UserError, match="unknown --lr_decay=cosine"):
        resolve(dataclasses.replace(small_config(), lr_decay="cosine"))


def test_a_run_resumed_mid_decay_is_bitwise_the_whole_run(tmp_path, capsys):
    """The factor is a function of the step alone: a run stopped at step 28 of a 60-step decay
    (its later checkpoints removed) and resumed ends bitwise where the run trained in one go did,
    with EMA, spectral norm, lazy R1 and DiffAugment on too."""
    config = lambda workdir: small_config(loss="hinge", d_norm="spectral", r1=1.0, reg_every=3, n_critic=2,
                                          augment="color,translation,cutout", lr_decay="linear", steps=60,
                                          ckpt_every=28, keep=5, workdir=str(workdir))
    whole = train(config(tmp_path / "whole"), progress=False)
    shutil.copytree(tmp_path / "whole", tmp_path / "split")
    steps = sorted(int(p.name) for p in (tmp_path / "split" / "checkpoints").iterdir() if p.name.isdigit())
    assert 28 in steps and steps[-1] == 60
    for step in steps:
        if step > 28:
            shutil.rmtree(tmp_path / "split" / "checkpoints" / str(step))
    capsys.readouterr()
    resumed = train(config(tmp_path / "split"), progress=False)
    assert "Resuming from the checkpoint at step 28" in capsys.readouterr().out
    assert int(resumed.step) == 60
    assert_same_state(whole, resumed)
