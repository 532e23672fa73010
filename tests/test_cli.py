"""The command line: user mistakes exit 2 with one line; a short run writes what README promises."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganjax.config import Config, resolve
from ganjax.errors import UserError
from ganjax.train import main, parse_args
from ganjax.training import TrainingDiverged, check_finite, step_masks


def parse_config(argv):
    return parse_args(argv)[0]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "ganjax.train", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("args,words", [
    (["--loss=foo"], "unknown --loss=foo"),
    (["--lr=-1"], "--lr must be a positive number"),
    (["--batch_size=0"], "--batch_size must be a positive integer"),
    (["--loss=wgan-gp", "--d_norm=batch"], "batch norm couples the samples"),
    (["--arch=mlp", "--dataset=toy:ring8", "--d_norm=instance"], "--d_norm=instance"),
    (["--nope=1"], "unrecognized arguments: --nope=1"),
    (["--lr=abc"], "--lr expects float"),
    (["--preset=hw7"], "--preset"),
    (["--arch=dcgan", "--dataset=toy:ring8"], "needs image data"),
    (["--resolution=48"], "power of two"),
    (["--dtype=float16"], "unknown --dtype=float16"),
    (["--latent_codes=10", "--conditional=true"], "--latent_codes is InfoGAN's unsupervised code"),
])
def test_user_mistakes_exit_2_with_one_line(args, words):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag,value", [("none", "none"), ("auto", None), ("/tmp/x", "/tmp/x")])
def test_compile_cache_none_on_the_command_line_turns_the_cache_off(flag, value):
    """'none' is a value of --compile_cache (off), not the 'auto' of other optional settings."""
    assert parse_config([f"--compile_cache={flag}"]).compile_cache == value
    assert parse_config(["--d_norm=none", "--loss=wgan-gp"]).d_norm == "none"


def test_unwritable_workdir_exits_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("--dataset=toy:ring8", f"--workdir={blocker}/run", "--steps=1")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "cannot write to workdir" in result.stderr


def test_help_lists_every_config_field():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in Config.__dataclass_fields__:
        assert f"--{name}" in result.stdout


def test_flags_override_the_preset_and_auto_values_follow_the_loss():
    c = parse_config(["--preset=hw6-wgan-gp", "--lr=3e-4"])
    assert (c.loss, c.resolution, c.lr, c.d_norm, c.optimizer) == ("wgan-gp", 64, 3e-4, "instance", "adam")
    c = parse_config(["--loss=wgan"])
    assert (c.optimizer, c.lr, c.d_norm) == ("rmsprop", 1e-4, "batch")
    c = parse_config(["--preset=wgan-paper"])
    assert (c.optimizer, c.lr, c.n_critic, c.clip_value) == ("rmsprop", 5e-5, 5, 0.01)
    c = parse_config(["--preset=wgan-gp-paper"])
    assert (c.beta1, c.beta2, c.n_critic, c.d_norm) == (0.0, 0.9, 5, "layer")
    c = parse_config(["--dataset=toy:grid25"])
    assert (c.arch, c.d_norm) == ("mlp", "none")


def test_the_default_command_is_the_digits_preset_and_the_homework_keeps_its_constant_rate():
    """README's promise: no flags = --preset=digits (the best digits found); the homework's loop is
    one flag away, with its constant Adam 1e-4 and no EMA."""
    assert parse_config([]) == parse_config(["--preset=digits"])
    assert parse_config(["--preset=digits", "--lr=1e-3"]).lr == 1e-3  # flags still override it
    for preset in ("hw6-gan", "hw6-wgan", "hw6-wgan-gp"):
        c = parse_config([f"--preset={preset}"])
        assert (c.lr, c.lr_decay, c.ema) == (1e-4, "none", 0.0)


def test_batch_larger_than_dataset_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="larger than the dataset"):
        from ganjax.training import train
        train(resolve(Config(dataset="toy:ring8", toy_size=10, batch_size=64, workdir=str(tmp_path))))


def test_divergence_names_the_step_and_the_loss():
    metrics = {"D": {"loss_D": np.array([0.5, 0.4, np.inf, 0.3])}, "G": {"loss_G": np.array([1.0, np.nan, 1.0, np.nan])}}
    # n_critic = 2 from step 10: G updated at steps 10 and 12; NaN loss_G elsewhere is expected.
    with pytest.raises(TrainingDiverged, match="loss_D became inf at step 12"):
        check_finite(metrics, step_masks(10, 4, {"D": 1, "G": 2}), 10)
    metrics["D"]["loss_D"][2] = 0.1
    check_finite(metrics, step_masks(10, 4, {"D": 1, "G": 2}), 10)
    metrics["G"]["loss_G"][2] = np.nan
    with pytest.raises(TrainingDiverged, match="loss_G became nan at step 12"):
        check_finite(metrics, step_masks(10, 4, {"D": 1, "G": 2}), 10)


def test_short_image_run_writes_config_metrics_and_grids(tmp_path):
    workdir = tmp_path / "run"
    code = main(["--dataset=digits", "--resolution=8", "--features=8", "--z_dim=8", "--batch_size=500",
                 "--n_epoch=2", "--chunk_size=4", "--loss=wgan-gp", "--n_critic=2", f"--workdir={workdir}"])
    assert code == 0
    config = json.loads((workdir / "config.json").read_text())
    assert config["loss"] == "wgan-gp" and config["d_norm"] == "instance"
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 10, 14, 18, 20]  # chunks of 4 that stop at epoch ends
    assert {"step", "epoch", "loss_D", "loss_G", "D_real", "D_fake", "wasserstein", "gp", "steps_per_s",
            "wall_time"} <= set(records[0])
    assert all(np.isfinite(r["loss_D"]) and np.isfinite(r["loss_G"]) for r in records)
    for epoch in (1, 2):
        grid = np.asarray(Image.open(workdir / "samples" / f"epoch_{epoch:03d}.png"))
        assert grid.shape == (10 * 8 + 11 * 2, 10 * 8 + 11 * 2)  # 10 x 10 images of 8 px, 2 px padding


def test_short_toy_run_writes_a_plot(tmp_path):
    code = main(["--dataset=toy:1d", "--steps=5", "--toy_size=256", "--batch_size=64", "--mlp_width=16",
                 f"--workdir={tmp_path}"])
    assert code == 0
    assert (tmp_path / "samples" / "epoch_002.png").exists()  # 4 steps per epoch: the run ends in epoch 2


def test_compile_cache_flag_puts_the_compiled_programs_in_that_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # cache even tiny programs
    result = run_cli("--dataset=toy:1d", "--steps=2", "--toy_size=256", "--batch_size=64", "--mlp_width=16",
                     "--eval_every=0", f"--workdir={tmp_path / 'run'}", f"--compile_cache={tmp_path / 'xla'}")
    assert result.returncode == 0, result.stderr
    assert any(name.startswith("jit_") for name in os.listdir(tmp_path / "xla"))  # not $JAX_COMPILATION_CACHE_DIR


@pytest.mark.parametrize("env", [None, "2.5"])
def test_the_compile_cache_keeps_programs_from_a_tenth_of_a_second_unless_the_environment_says(tmp_path, monkeypatch,
                                                                                               env):
    import jax

    from ganjax import compile_cache

    if env is None:
        monkeypatch.delenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", raising=False)
    else:
        monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", env)
    saved = {name: getattr(jax.config, name) for name in
             ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")}
    try:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 2.5 if env else 1.0)
        assert compile_cache.enable(str(tmp_path / "xla")) == str(tmp_path / "xla")
        expected = 2.5 if env else compile_cache.MIN_COMPILE_SECONDS
        assert jax.config.jax_persistent_cache_min_compile_time_secs == expected
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
