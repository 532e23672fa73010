"""Checkpoints: exact resume, structural checks, restart, keep, safe stops, kills and damage."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from ganjax.checkpoints import Checkpoints, FORMAT, split_state
from ganjax.config import Config, resolve
from ganjax.errors import UserError
from ganjax.config import config_from_saved
from ganjax.state import create_state, make_spec
from ganjax.train import main
from ganjax.training import train
from tests.conftest import small_config, wait_for_training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = dict(dataset="toy:ring8", toy_size=100, batch_size=8, mlp_width=16, mlp_depth=2, z_dim=2, chunk_size=4, lr=1e-4,
           lr_decay="none")  # constant: runs here stop and resume at other lengths


def restore_latest(workdir):
    """The full state of a workdir's latest checkpoint, built from the config saved with it."""
    checkpoints = Checkpoints(str(workdir))
    _, saved, _ = checkpoints.read_json()
    config = config_from_saved(saved)
    return checkpoints.restore(create_state(make_spec(config), config.seed))


def toy_config(**overrides) -> Config:
    return resolve(Config(**{**TOY, **overrides}))


def assert_same_state(a, b):
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("make,overrides", [
    (small_config, dict(loss="gan", n_critic=2)),
    (small_config, dict(loss="wgan-gp", n_critic=3)),
    (toy_config, dict(loss="wgan", n_critic=2)),     # 12 steps per epoch: the stop crosses epochs
    # EMA (on by default), spectral norm's vectors, lazy R1, DiffAugment's draws and InfoGAN's code, all at once
    (small_config, dict(loss="hinge", d_norm="spectral", r1=1.0, reg_every=3, augment="color,translation,cutout",
                        n_critic=2, latent_codes=3)),
], ids=["gan", "wgan-gp", "toy-wgan", "modern"])
def test_stop_and_resume_is_bitwise_the_same_run(tmp_path, make, overrides):
    n = 30  # not a multiple of the chunk (4) nor of the epoch (12 toy steps, 625 digit steps)
    whole = train(make(**overrides, steps=2 * n, workdir=str(tmp_path / "whole")), progress=False)
    first = train(make(**overrides, steps=n, workdir=str(tmp_path / "split")), progress=False)
    assert int(first.step) == n
    resumed = train(make(**overrides, steps=2 * n, workdir=str(tmp_path / "split")), progress=False)
    assert int(resumed.step) == 2 * n
    assert_same_state(whole, resumed)
    # and what is on disk is that state
    on_disk = Checkpoints(str(tmp_path / "split")).restore(resumed)
    assert_same_state(on_disk, resumed)


def test_structural_change_is_refused_naming_both_values(tmp_path):
    train(toy_config(steps=4, workdir=str(tmp_path)), progress=False)
    for change, words in [(dict(z_dim=3), "--z_dim: 2 in the checkpoint, 3 now"),
                          (dict(loss="wgan"), "--loss: 'gan' in the checkpoint, 'wgan' now"),
                          (dict(dataset="toy:grid25"), "--dataset: 'toy:ring8' in the checkpoint")]:
        with pytest.raises(UserError, match=words.replace("(", r"\(")):
            train(toy_config(steps=8, workdir=str(tmp_path), **change), progress=False)
    assert Checkpoints(str(tmp_path)).steps() == [4]  # nothing lost


def test_safe_change_is_accepted_and_noted(tmp_path, capsys):
    train(toy_config(steps=4, workdir=str(tmp_path)), progress=False)
    state = train(toy_config(steps=10, chunk_size=3, lr=2e-4, dtype="bfloat16", workdir=str(tmp_path)),
                  progress=False)
    out = capsys.readouterr().out
    assert "Resuming from the checkpoint at step 4" in out
    assert "changed --steps: 4 in the checkpoint, 10 now" in out
    assert "changed --lr: 0.0001 in the checkpoint, 0.0002 now" in out
    assert "changed --dtype: 'float32' in the checkpoint, 'bfloat16' now" in out  # weights are float32 either way
    assert int(state.step) == 10


def test_log_keeps_one_record_per_step_after_resume(tmp_path):
    train(toy_config(steps=8, eval_every=1, workdir=str(tmp_path)), progress=False)
    train(toy_config(steps=16, eval_every=1, workdir=str(tmp_path)), progress=False)
    with open(tmp_path / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records if "loss_D" in r] == [4, 8, 12, 16]  # one record per chunk
    assert [r["step"] for r in records if "modes" in r] == [8, 12, 16]  # evaluations: run ends, epoch end


def test_restart_starts_over(tmp_path):
    fresh = train(toy_config(steps=8, workdir=str(tmp_path / "a")), progress=False)
    train(toy_config(steps=12, workdir=str(tmp_path / "b")), progress=False)
    again = train(toy_config(steps=8, workdir=str(tmp_path / "b")), progress=False, restart=True)
    assert_same_state(fresh, again)
    assert Checkpoints(str(tmp_path / "b")).steps() == [8]


def test_finished_run_is_not_trained_further(tmp_path, capsys):
    train(toy_config(steps=8, workdir=str(tmp_path)), progress=False)
    state = train(toy_config(steps=8, workdir=str(tmp_path)), progress=False)
    assert int(state.step) == 8 and "already at step 8 of 8" in capsys.readouterr().out


def test_schedule_and_keep(tmp_path):
    # 12 steps per epoch; every 10 steps, every epoch, the end; keep the last 3
    train(toy_config(steps=40, ckpt_every=10, ckpt_epochs=1, keep=3, workdir=str(tmp_path)), progress=False)
    assert Checkpoints(str(tmp_path)).steps() == [30, 36, 40]
    _, _, meta = Checkpoints(str(tmp_path)).read_json(30)
    assert (meta["epoch"], meta["batch"], meta["steps_per_epoch"]) == (2, 6, 12)


def test_generator_item_alone_holds_g(tmp_path):
    state = train(toy_config(steps=4, workdir=str(tmp_path)), progress=False)
    template = split_state(state)["generator"]
    g = Checkpoints(str(tmp_path)).restore_generator(jax.tree.map(np.zeros_like, template))
    # always a batch_stats entry (as format 1), and G's EMA beside it
    assert_same_state(g, {"params": state.g.params, "batch_stats": {}, **state.g.model_state, "ema": state.g_ema})


# ---------------------------------------------------------------------------------------------
# Damage: corrupt and foreign checkpoints


def test_corrupt_checkpoint_names_an_older_step_which_then_works(tmp_path, capsys):
    train(toy_config(steps=8, workdir=str(tmp_path)), progress=False)
    train(toy_config(steps=12, workdir=str(tmp_path)), progress=False)
    damaged = tmp_path / "checkpoints" / "12" / "train"
    for root, _, files in os.walk(damaged):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"garbage")
    args = ["--dataset=toy:ring8", "--toy_size=100", "--batch_size=8", "--mlp_width=16", "--mlp_depth=2",
            "--z_dim=2", "--chunk_size=4", "--steps=12", f"--workdir={tmp_path}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint 12" in err and "--step=8" in err
    assert main(args + ["--step=8"]) == 0
    assert (tmp_path / "checkpoints-set-aside" / "12").is_dir()  # set aside, not deleted
    assert Checkpoints(str(tmp_path)).steps() == [8, 12]


def test_checkpoint_of_another_format_is_refused(tmp_path):
    train(toy_config(steps=4, workdir=str(tmp_path)), progress=False)
    meta = tmp_path / "checkpoints" / "4" / "meta" / "metadata"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "format": FORMAT + 1}))
    with pytest.raises(UserError, match=f"has format {FORMAT + 1}, this ganjax reads formats 1, {FORMAT}"):
        train(toy_config(steps=8, workdir=str(tmp_path)), progress=False)


def test_changed_dataset_size_is_refused(tmp_path, monkeypatch):
    import ganjax.training as training
    from ganjax.data import Dataset

    train(toy_config(steps=4, workdir=str(tmp_path)), progress=False)
    monkeypatch.setattr(training, "load_dataset", lambda c: Dataset(np.zeros((90, 2), np.float32), c.dataset))
    with pytest.raises(UserError, match="100 examples then, 90 now"):
        train(toy_config(steps=8, workdir=str(tmp_path)), progress=False)


def test_step_that_does_not_exist(tmp_path):
    train(toy_config(steps=4, workdir=str(tmp_path)), progress=False)
    with pytest.raises(UserError, match="no checkpoint at step 3 .* available: 4"):
        train(toy_config(steps=8, workdir=str(tmp_path)), progress=False, resume_step=3)


# ---------------------------------------------------------------------------------------------
# Stops: signals and kill -9, in a subprocess

# constant rates: the stopped run is resumed to another length than it started with
SLOW_TOY = ["--dataset=toy:ring8", "--toy_size=1000", "--batch_size=8", "--mlp_width=64", "--z_dim=2",
            "--chunk_size=5", "--steps=100000", "--ckpt_every=0", "--ckpt_epochs=0", "--lr_decay=none"]


def start(workdir, *extra):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-m", "ganjax.train", *SLOW_TOY, f"--workdir={workdir}", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_at_chunk_boundary_and_resume_is_exact(tmp_path, signum, code):
    process = start(tmp_path)
    wait_for_training(tmp_path, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert "Traceback" not in err
    stopped = Checkpoints(str(tmp_path)).latest_step()
    assert stopped is not None and stopped % 5 == 0 and f"stopped at step {stopped}" in err
    # resuming to a bit further gives the same as going there in one go
    args = [a for a in SLOW_TOY if not a.startswith("--steps")] + [f"--steps={stopped + 7}"]
    assert main(args + [f"--workdir={tmp_path}"]) == 0
    assert main(args + [f"--workdir={tmp_path / 'whole'}"]) == 0
    assert_same_state(restore_latest(tmp_path), restore_latest(tmp_path / "whole"))


def wait_for_words(path, words, process, timeout=120):
    """Waits until the file `path` (a process's output) contains `words`."""
    def text():
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()

    deadline = time.time() + timeout
    while words not in text():
        assert process.poll() is None, text()
        assert time.time() < deadline, f"never saw {words!r}"
        time.sleep(0.05)


@pytest.mark.slow
def test_first_ctrl_c_is_seen_inside_a_chunk_and_a_second_exits_at_once(tmp_path):
    # one chunk of 2,000 steps of a 512-wide MLP at batch 256 takes seconds even on a fast CPU; the
    # first Ctrl-C is acknowledged while it runs (not only after it), and the second ends the
    # process at once, without waiting for the chunk or saving
    log = tmp_path / "stderr.txt"
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    args = [*SLOW_TOY, "--toy_size=1000000", "--batch_size=256", "--mlp_width=512", "--chunk_size=2000"]
    with open(log, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "ganjax.train", *args, f"--workdir={tmp_path}"],
                                   stdout=err, stderr=err, text=True, env=env, cwd=ROOT)
        wait_for_words(log, "training chunk in", process)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        wait_for_words(log, "got SIGINT", process, timeout=2)
        tic = time.time()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGINT and time.time() - tic < 2
    assert not os.path.exists(tmp_path / "metrics.jsonl") or os.path.getsize(tmp_path / "metrics.jsonl") == 0
    assert Checkpoints(str(tmp_path)).steps() == []


@pytest.mark.slow
def test_kill_9_during_a_save_leaves_the_last_complete_checkpoint(tmp_path):
    """Saves every chunk; the process is killed while a save's temporary folder exists."""
    process = start(tmp_path, "--ckpt_every=5", "--keep=100")
    ckpt = tmp_path / "checkpoints"
    deadline, killed_in_save = time.time() + 120, False
    while time.time() < deadline and not killed_in_save:
        names = os.listdir(ckpt) if ckpt.is_dir() else []
        if any("tmp" in name for name in names) and any(name.isdigit() for name in names):
            process.kill()
            killed_in_save = True
        assert process.poll() is None or killed_in_save
    process.communicate(timeout=30)
    assert killed_in_save, "never saw a save in progress"
    half = [n for n in os.listdir(ckpt) if "tmp" in n]
    complete = Checkpoints(str(tmp_path)).steps()  # opening the checkpoints removes the half one
    assert complete and all(s % 5 == 0 for s in complete)
    assert not [n for n in os.listdir(ckpt) if "tmp" in n], f"left over: {half}"
    # and the run goes on from the last complete checkpoint
    args = [a for a in SLOW_TOY if not a.startswith("--steps")] + [f"--steps={complete[-1] + 5}"]
    assert main(args + [f"--workdir={tmp_path}"]) == 0
    assert Checkpoints(str(tmp_path)).latest_step() == complete[-1] + 5


def test_every_field_says_what_a_resume_may_do_and_the_check_follows_it():
    from ganjax.config import FREE, PLACEMENT, STRUCTURAL, resume_kind
    from ganjax.checkpoints import config_changes

    config = toy_config(steps=4)
    saved = dataclasses.asdict(config)
    for name, value in saved.items():
        kind = resume_kind(name)
        assert kind in (STRUCTURAL, FREE, PLACEMENT), name
        structural, other = config_changes({**saved, name: "something else"}, config)
        assert (bool(structural), bool(other)) == {STRUCTURAL: (True, False), FREE: (False, True),
                                                   PLACEMENT: (False, False)}[kind], name


def test_a_save_runs_behind_the_caller_and_its_failure_surfaces_at_the_next_check(tmp_path, monkeypatch):
    """The training loop goes on while orbax writes (a worker thread drives it); a save that fails
    there (a full disk) is raised as one EnvironmentFault by `check` once it has failed, and the
    checkpoints already complete are kept."""
    import threading
    from ganjax.errors import EnvironmentFault

    config = toy_config()
    state = create_state(make_spec(config), config.seed)
    checkpoints = Checkpoints(str(tmp_path))
    checkpoints.save(state, config, {"epoch": 0, "batch": 0})
    checkpoints.wait()
    release, save = threading.Event(), checkpoints.manager.save

    def held_then_full(step, *args, **kwargs):
        assert release.wait(timeout=60)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints.manager, "save", held_then_full)
    checkpoints.save(state.replace(step=state.step + 1), config, {"epoch": 0, "batch": 1})  # returns while held
    checkpoints.check()  # not failed yet: nothing to raise, and no wait
    release.set()
    deadline = time.time() + 60
    with pytest.raises(EnvironmentFault, match=f"no space left on .*the last complete checkpoint is step {int(state.step)}"):
        while time.time() < deadline:
            checkpoints.check()
            time.sleep(0.01)
    monkeypatch.setattr(checkpoints.manager, "save", save)
    checkpoints.close()  # the failure was reported once: closing stays quiet
    assert Checkpoints(str(tmp_path)).steps() == [int(state.step)]
