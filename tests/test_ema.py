"""G's exponential moving average (ganjax.ema): the warmed-up rule, by hand over a few steps; the
batch statistics averaged with the weights; samples, checkpoints and generation use it."""

import functools
import os
import shutil

import jax
import numpy as np
import pytest

from ganjax.ema import ema_decay
from ganjax.generation import load_generator
from ganjax.generate import main as generate_main
from ganjax.state import create_state, make_spec
from ganjax.steps import train_step
from ganjax.training import Samples, train
from tests.conftest import small_config

FORMAT1 = os.path.join(os.path.dirname(__file__), "data", "checkpoint_format1")


def test_decay_warms_up_to_its_value():
    np.testing.assert_allclose(ema_decay(0.999, 0), 0.1)  # (1 + 0) / (10 + 0)
    np.testing.assert_allclose(ema_decay(0.999, 90), 91 / 100)
    np.testing.assert_allclose(ema_decay(0.999, 10 ** 6), 0.999)
    np.testing.assert_allclose(ema_decay(0.5, 3), 4 / 13)  # min(0.5, 4 / 13)
    np.testing.assert_allclose(ema_decay(0.5, 30), 0.5)  # min(0.5, 31 / 40)


@pytest.mark.parametrize("n_critic", [1, 2])
def test_ema_is_the_hand_computed_average_of_g_and_its_batch_statistics(n_critic):
    config = small_config(ema=0.6, n_critic=n_critic)  # 0.6: the warm-up (t + 1) / (t + 10) is reached at t = 12.5
    spec = make_spec(config)
    state = create_state(spec, 0)
    assert set(state.g_ema) == {"params", "batch_stats"}  # the DCGAN G has batch norm
    step = jax.jit(functools.partial(train_step, spec))
    average = jax.tree.map(np.asarray, state.g.variables())
    g_updates = 0
    for i in range(6):
        real = jax.random.uniform(jax.random.PRNGKey(i), (8,) + spec.data_shape, minval=-1, maxval=1)
        state, _ = step(state, real)
        if i % n_critic == 0:  # G updated: the average takes a step with t = the G updates before it
            d = min(0.6, (1 + g_updates) / (10 + g_updates))
            average = jax.tree.map(lambda e, g: d * e + (1 - d) * np.asarray(g), average, state.g.variables())
            g_updates += 1
        leaves = zip(jax.tree.leaves(state.g_ema), jax.tree.leaves(average))
        for got, want in leaves:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # the average is not the raw G (nor its statistics)
    assert not np.allclose(state.g_ema["batch_stats"]["BatchNorm_0"]["mean"],
                           state.g.model_state["batch_stats"]["BatchNorm_0"]["mean"])


def test_without_ema_the_state_keeps_none_and_samples_come_from_g():
    state = create_state(make_spec(small_config(ema=0.0)), 0)
    assert state.g_ema == {}
    assert state.sampling_variables() == state.g.variables()


def test_samples_checkpoints_and_generation_use_the_ema(tmp_path, capsys):
    config = small_config(steps=6, workdir=str(tmp_path), eval_every=0, tensorboard=False, compile_cache="none")
    state = train(config, progress=False)
    from ganjax.data import load_dataset
    samples = Samples(make_spec(config), config, load_dataset(config), str(tmp_path))
    apply = lambda variables: make_spec(config).generator.apply(variables, samples.z[:4], train=False)
    close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)  # jitted or not, batch 100 or 4
    close(samples.generate(state)[:4], apply(state.g_ema))
    assert not np.allclose(apply(state.g_ema), apply(state.g.variables()))
    averaged, raw = load_generator(str(tmp_path)), load_generator(str(tmp_path), ema=False)
    assert averaged.ema and not raw.ema
    close(averaged.from_z(samples.z[:4]), apply(state.g_ema))
    close(raw.from_z(samples.z[:4]), apply(state.g.variables()))
    for flag, word in (("true", "(EMA)"), ("false", "step 6:")):
        out = tmp_path / f"gen-{flag}"
        assert generate_main([f"--workdir={tmp_path}", "--n=3", f"--out={out}", f"--ema_samples={flag}"]) == 0
        assert word in capsys.readouterr().out
    assert generate_main([f"--workdir={tmp_path}", "--ema_samples=perhaps"]) == 2
    assert "--ema_samples expects true or false" in capsys.readouterr().err


def test_a_checkpoint_from_before_ema_loads_without_it(tmp_path, capsys):
    workdir = tmp_path / "w"
    shutil.copytree(FORMAT1, workdir)
    gen = load_generator(str(workdir))
    assert not gen.ema and gen.config.ema == 0.0 and "ema" not in gen.variables
    assert gen.sample(jax.random.PRNGKey(0), 3).shape[0] == 3
    # resuming it under the new default (EMA on) would change the state's structure: one line
    from ganjax.train import main
    import json
    with open(workdir / "config.json") as f:
        saved = json.load(f)
    flags = [f"--{k}={v}" for k, v in saved.items() if k in ("dataset", "arch", "mlp_width", "mlp_depth", "z_dim",
                                                             "batch_size", "toy_size", "loss", "seed", "lr")]
    assert main(flags + [f"--workdir={workdir}", "--steps=12", "--compile_cache=none"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ema: 0.0 in the checkpoint, 0.999 now" in err
