"""Faults and hostile input: each ends in one line and the right exit status, and no saved data is lost.

One run per workdir (the lock), a log without checkpoints, a torn log line, a full disk, a garbled
checkpoint, and every bad input of the command lines, each checked for one line on stderr without
a traceback. The end-to-end faults (kill -9, a real full disk, two writers) are in test_faults.py.
"""

import errno
import importlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest

from ganjax import errors, quiet, summaries
from ganjax.checkpoints import Checkpoints
from ganjax.config import Config, resolve
from ganjax.errors import EnvironmentFault, UserError, run_command
from ganjax.summaries import RunLog, read_log
from ganjax.train import main
from ganjax.training import TrainingDiverged, check_finite, divergence_hint, step_masks, take_lock, train
from ganjax.workdir_lock import LOCK_NAME, WorkdirLock
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = dict(dataset="toy:ring8", arch="mlp", mlp_width=16, mlp_depth=2, z_dim=2, batch_size=8, toy_size=100,
           chunk_size=4, eval_every=0, tensorboard=False)
TOY_FLAGS = [f"--{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in TOY.items()]


def flags(workdir, steps, *extra):
    return TOY_FLAGS + [f"--steps={steps}", f"--workdir={workdir}", *extra]


def messages(err: str) -> list[str]:
    """The lines of stderr without the progress bars (tqdm redraws them with carriage returns)."""
    parts = [p.strip() for line in err.split("\n") for p in line.split("\r")]
    return [p for p in parts if p and not p.startswith("Epoch ")]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A finished toy run of 24 steps: checkpoints at 12 and 24 (the epoch ends), 6 log records."""
    workdir = tmp_path_factory.mktemp("toy") / "run"
    train(resolve(Config(**TOY, steps=24, workdir=str(workdir))), progress=False)
    return workdir


def copy_of(run, tmp_path):
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


# ---------------------------------------------------------------------------------------------
# One run per workdir

HOLD = ("import sys, time; from ganjax.workdir_lock import WorkdirLock; WorkdirLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(600)")


def hold_lock(workdir):
    """A process that holds the workdir's lock until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(workdir)], stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=ROOT), cwd=ROOT)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_on_a_workdir_in_use_stops_at_once_naming_the_holder(tmp_path, capsys):
    os.makedirs(tmp_path / "run")
    holder = hold_lock(tmp_path / "run")
    try:
        assert main(flags(tmp_path / "run", 4)) == 2
    finally:
        holder.kill()
        holder.wait()
    lines = messages(capsys.readouterr().err)
    assert len(lines) == 1 and f"is in use by another run (PID {holder.pid} on host {socket.gethostname()}" in lines[0]
    assert os.listdir(tmp_path / "run") == [LOCK_NAME]  # it neither read nor wrote anything


def test_a_lock_left_by_a_killed_run_is_free_and_every_exit_releases_it(toy_run, tmp_path):
    holder = hold_lock(tmp_path)
    holder.kill()  # SIGKILL: the kernel releases its flock; the file still names it
    holder.wait()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid
    lock = WorkdirLock(str(tmp_path))
    lock.acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    with pytest.raises(UserError, match=f"PID {os.getpid()}"):
        WorkdirLock(str(tmp_path)).acquire()  # a second holder, even in the same process
    lock.release()
    # a run that stops with an error releases it too
    workdir = copy_of(toy_run, tmp_path)
    with pytest.raises(UserError, match="--z_dim"):
        train(resolve(Config(**{**TOY, "z_dim": 3}, steps=36, workdir=str(workdir))), progress=False)
    lock = WorkdirLock(str(workdir))
    lock.acquire()
    lock.release()


def test_only_process_0_takes_the_lock(tmp_path):
    lock = WorkdirLock(str(tmp_path))
    take_lock(lock, main=False)  # another process of a multi-host run: process 0 holds it for all
    assert not lock.held and not (tmp_path / LOCK_NAME).exists()
    take_lock(lock, main=True)
    assert lock.held
    lock.release()


# ---------------------------------------------------------------------------------------------
# The log: never lost, never torn

def test_a_log_without_checkpoints_is_kept_unless_restart(toy_run, tmp_path, capsys):
    workdir = copy_of(toy_run, tmp_path)
    shutil.rmtree(workdir / "checkpoints")
    log = (workdir / "metrics.jsonl").read_text()
    assert main(flags(workdir, 24)) == 2
    lines = messages(capsys.readouterr().err)
    assert len(lines) == 1 and "holds a log (metrics.jsonl, 6 records up to step 24) but no checkpoint" in lines[0]
    assert "--restart starts over and keeps that log as metrics.jsonl.old" in lines[0]
    assert (workdir / "metrics.jsonl").read_text() == log
    assert main(flags(workdir, 8, "--restart")) == 0
    assert (workdir / "metrics.jsonl.old").read_text() == log
    assert [r["step"] for r in read_log(str(workdir / "metrics.jsonl"))] == [4, 8]


def test_a_torn_last_line_is_dropped_with_one_warning_on_resume(toy_run, tmp_path, capsys):
    workdir = copy_of(toy_run, tmp_path)
    with open(workdir / "metrics.jsonl", "a") as f:
        f.write('{"step": 28, "epoch": 3, "loss_D": 0.69')  # what kill -9 or a full disk leaves
    assert main(flags(workdir, 28)) == 0
    lines = messages(capsys.readouterr().err)
    assert [line for line in lines if "warning" in line] == [
        f"ganjax: warning: dropped 1 unreadable line of {workdir / 'metrics.jsonl'} (a write cut short, e.g. by "
        f"kill -9 or a full disk)"]
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12, 16, 20, 24, 28]


def test_a_short_write_is_cut_back_off(tmp_path, monkeypatch):
    log = RunLog(str(tmp_path), resume_step=0, tensorboard=False)
    log.write({"step": 1, "loss_D": 0.5})

    class FullDisk:  # os, with a disk that fills in the middle of a line
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def write(fd, data):
            return os.write(fd, data[:7])

    monkeypatch.setattr(summaries, "os", FullDisk())
    with pytest.raises(OSError) as e:
        log.write({"step": 2, "loss_D": 0.4})
    assert e.value.errno == errno.ENOSPC
    monkeypatch.undo()
    log.close()
    assert (tmp_path / "metrics.jsonl").read_text() == '{"step": 1, "loss_D": 0.5}\n'


# ---------------------------------------------------------------------------------------------
# A full disk

def test_a_save_that_would_not_fit_is_not_tried(toy_run, tmp_path, monkeypatch, capsys):
    workdir = copy_of(toy_run, tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(2**30, 2**30 - 1000, 1000))
    assert main(flags(workdir, 36)) == 1
    lines = messages(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ganjax.train: error: not enough space left on {workdir} to save checkpoint 36 (")
    assert (f"MB free), so it was not tried: the last complete checkpoint is step 24 in {workdir / 'checkpoints'}; "
            f"free some space, then run the same command to resume") in lines[0]
    assert sorted(os.listdir(workdir / "checkpoints")) == ["12", "24"]


def test_a_save_that_fails_for_want_of_space_names_the_last_complete_checkpoint(toy_run, tmp_path, monkeypatch,
                                                                               capsys):
    import orbax.checkpoint as ocp

    workdir = copy_of(toy_run, tmp_path)

    def full_disk(manager, step, *args, **kwargs):  # as orbax reports tensorstore's failed write
        os.makedirs(workdir / "checkpoints" / f"{step}.orbax-checkpoint-tmp" / "train.orbax-checkpoint-tmp")
        raise ValueError(f'RESOURCE_EXHAUSTED: Error writing "step/0" in OCDBT database: Failed to write 3078 bytes '
                         f"to file 7: No space left on device [os_error_code='{errno.ENOSPC}']")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk)
    assert main(flags(workdir, 36)) == 1
    lines = messages(capsys.readouterr().err)
    assert lines == [f"ganjax.train: error: no space left on {workdir}: the last complete checkpoint is step 24 in "
                     f"{workdir / 'checkpoints'}; free some space, then run the same command to resume"]
    assert sorted(os.listdir(workdir / "checkpoints")) == ["12", "24"]  # no temporary folder left


def test_a_full_disk_outside_the_checkpoints_is_the_same_line(tmp_path, capsys):
    def body():
        raise EnvironmentFault("no space left on W: the last complete checkpoint is step 4")
    assert run_command("ganjax.train", body) == 1
    assert capsys.readouterr().err == "ganjax.train: error: no space left on W: the last complete checkpoint is step 4\n"


# ---------------------------------------------------------------------------------------------
# The one handler

@pytest.mark.parametrize("error,status,line", [
    (OSError(errno.ENOSPC, "No space left on device", "out/7.jpg"), 1, "out/7.jpg: No space left on device"),
    (PermissionError(errno.EACCES, "Permission denied", "/etc/x"), 2, "/etc/x: Permission denied"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/run"), 2, "/mnt/ro/run: Read-only file system"),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "data/"), 2, "data/: No such file or directory"),
    (UserError("--lr must be positive"), 2, "--lr must be positive"),
])
def test_the_handler_turns_environment_errors_into_one_line(error, status, line, capsys, monkeypatch):
    monkeypatch.delenv("GANJAX_DEBUG", raising=False)

    def body():
        raise error
    assert run_command("prog", body) == status
    assert capsys.readouterr().err == f"prog: error: {line}\n"
    monkeypatch.setenv("GANJAX_DEBUG", "1")  # the traceback too, then the same line
    assert run_command("prog", body) == status
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.endswith(f"prog: error: {line}\n")


def test_a_bug_keeps_its_traceback():
    def body():
        raise OSError("not an errno of the environment")
    with pytest.raises(OSError):
        run_command("prog", body)
    with pytest.raises(ZeroDivisionError):
        run_command("prog", lambda: 1 / 0)


def test_debug_flag(capsys):
    from ganjax.generate import main as generate

    try:
        assert generate(["--debug", "--n=0", "--workdir=x"]) == 2
    finally:
        errors.set_debug(False)
    err = capsys.readouterr().err
    assert "Traceback" in err and err.endswith("--n and --rows must be positive, and --interpolate at least 2 (or 0 for none)\n")


def test_library_noise_about_reported_failures_is_filtered(monkeypatch, capsys):
    monkeypatch.delenv("GANJAX_DEBUG", raising=False)
    shown = []
    monkeypatch.setattr(sys, "unraisablehook", shown.append)
    monkeypatch.setattr(quiet, "_installed", False)
    absl = logging.getLogger("absl")
    monkeypatch.setattr(absl, "filters", [])
    quiet.install()

    class Unraisable:
        def __init__(self, error):
            self.exc_value = error
    closed, other = Unraisable(RuntimeError("Event loop is closed")), Unraisable(RuntimeError("something else"))
    sys.unraisablehook(closed)
    sys.unraisablehook(other)
    assert shown == [other]
    orbax_file = os.path.join(os.sep, "site-packages", "orbax", "checkpoint", "future.py")
    record = lambda level, path: logging.LogRecord("absl", level, path, 1, "failed", None, None)
    assert not absl.filter(record(logging.ERROR, orbax_file))  # re-raised to ganjax, which reports it
    assert bool(absl.filter(record(logging.WARNING, orbax_file)))
    assert bool(absl.filter(record(logging.ERROR, "/site-packages/jax/_src/x.py")))
    asyncio_log = logging.getLogger("asyncio")
    monkeypatch.setattr(asyncio_log, "filters", [])
    quiet._installed = False
    quiet.install()

    def unretrieved(error):
        return logging.LogRecord("asyncio", logging.ERROR, "/lib/asyncio/base_events.py", 1,
                                 "Future exception was never retrieved\nfuture: <Future>", None,
                                 (type(error), error, None))
    full = ValueError('RESOURCE_EXHAUSTED: Error writing "x/.zarray": No space left on device')
    assert not asyncio_log.filter(unretrieved(full))  # ganjax said "no space left on W" itself
    assert bool(asyncio_log.filter(unretrieved(ValueError("a bug of ours"))))
    assert bool(asyncio_log.filter(logging.LogRecord("asyncio", logging.ERROR, "", 1, "Task was destroyed", None, None)))
    with warnings.catch_warnings(record=True) as caught:
        quiet._installed = False
        quiet.install()  # after catch_warnings reset the filters
        warnings.warn("Error writing persistent compilation cache entry for 'jit_f': FileNotFoundError", UserWarning)
        warnings.warn("something else", UserWarning)
    assert [str(w.message) for w in caught] == ["something else"]


# ---------------------------------------------------------------------------------------------
# Every bad input of the command lines: one line, status 2, no traceback, before anything is written

@pytest.fixture(scope="module")
def inputs(toy_run, tmp_path_factory):
    """Workdirs and files for the bad inputs: a toy run with a garbled checkpoint, an image run
    whose OUT.tgz is a folder, and latent arrays of every wrong kind."""
    folder = tmp_path_factory.mktemp("inputs")
    garbled = folder / "garbled"
    shutil.copytree(toy_run, garbled)
    data = garbled / "checkpoints" / "24" / "generator" / "d"
    rng = np.random.default_rng(0)
    for name in os.listdir(data):  # garbled, not truncated: the same size
        path = data / name
        path.write_bytes(rng.integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())
    image = folder / "image"
    train(small_config(steps=2, eval_every=0, tensorboard=False, workdir=str(image)), progress=False)
    os.makedirs(folder / "out.tgz")
    for name, z in [("empty", np.zeros((0, 2), np.float32)), ("wide", np.zeros((0, 100), np.float32)),
                    ("complex", np.ones((3, 2), np.complex64)), ("int", np.ones((3, 2), np.int64))]:
        np.save(folder / f"{name}.npy", z)
    return dict(toy=toy_run, garbled=garbled, image=image, folder=folder)


GARBLED = "checkpoint 24 in {garbled}/checkpoints cannot be read (its files are damaged or incomplete); pass --step=12"

# (command, flags, words, in a subprocess): each command line runs at least once in a subprocess, which
# also sees what library threads print at exit; the others run in this process, which is faster.
BAD_INPUTS = [
    ("train", TOY_FLAGS + ["--batch_size=100000000", "--workdir={folder}/new"],
     "--batch_size=100000000 is larger than the dataset (100 examples)", True),
    ("train", TOY_FLAGS + ["--seed=-1", "--workdir={folder}/new"], "--seed must be an integer in 0 .. 2**63-1, got -1",
     False),
    ("train", TOY_FLAGS + ["--steps=36", "--workdir={garbled}"], GARBLED, True),
    ("evaluate", ["--workdir={garbled}"], GARBLED, True),
    ("generate", ["--workdir={toy}", "--z={folder}/complex.npy", "--out={folder}/new"],
     "--z: {folder}/complex.npy has dtype complex64; latent vectors must be a real floating-point array", True),
    ("generate", ["--workdir={toy}", "--z={folder}/empty.npy", "--out={folder}/new"],
     "--z: {folder}/empty.npy holds no latent vectors (shape (0, 2))", False),
    ("generate", ["--workdir={toy}", "--z={folder}/wide.npy", "--out={folder}/new"],
     "--z: {folder}/wide.npy has shape (0, 100); this generator needs (N, 2)", False),
    ("generate", ["--workdir={toy}", "--z={folder}/int.npy", "--out={folder}/new"], "has dtype int64", False),
    ("generate", ["--workdir={toy}", "--seed=-1", "--out={folder}/new"], "--seed must be an integer in 0 .. 2**63-1",
     False),
    ("generate", ["--workdir={image}", "--n=3", "--tar", "--out={folder}/out"],
     "--tar writes {folder}/out.tgz, which is a folder; move it away or choose another --out", False),
]


@pytest.mark.parametrize("command,args,words,separate", BAD_INPUTS,
                         ids=[f"{c}-{i}" for i, (c, *_) in enumerate(BAD_INPUTS)])
def test_bad_input_is_one_line_and_status_2_without_a_traceback(inputs, command, args, words, separate, capsys,
                                                                 monkeypatch):
    places = {k: str(v) for k, v in inputs.items()}
    args = [a.format(**places) for a in args]
    monkeypatch.delenv("GANJAX_DEBUG", raising=False)
    if separate:
        result = subprocess.run([sys.executable, "-m", f"ganjax.{command}", *args], capture_output=True, text=True,
                                timeout=180, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
        status, err = result.returncode, result.stderr
    else:
        status, err = importlib.import_module(f"ganjax.{command}").main(args), capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and words.format(**places) in err, err
    assert "Traceback" not in err and "Event loop is closed" not in err
    assert not os.path.exists(os.path.join(places["folder"], "new"))  # nothing written
    assert not [n for n in os.listdir(places["folder"]) if n.isdigit() or n.endswith(".jpg")]


# ---------------------------------------------------------------------------------------------
# A NaN: a hint that fits the run

def test_the_divergence_hint_fits_the_run():
    nan = {"D": {"loss_D": np.array([0.5, np.nan])}}
    hints = {loss: divergence_hint(resolve(Config(loss=loss, dataset="toy:ring8", lr=1e-4))) for loss in ("gan", "wgan", "wgan-gp")}
    assert hints["gan"] == "try a lower --lr (now 0.0001) or --loss=wgan-gp"
    assert hints["wgan"] == "try a lower --lr (now 0.0001), a smaller --clip_value (now 0.01) or --loss=wgan-gp"
    assert hints["wgan-gp"] == "try a lower --lr (now 0.0001) or a larger --gp_weight (now 10)"
    bf16 = divergence_hint(resolve(Config(loss="wgan-gp", dataset="toy:ring8", dtype="bfloat16", lr=1e-4)))
    assert "--dtype=float32" in bf16
    with pytest.raises(TrainingDiverged, match=r"loss_D became nan at step 11; .*\(try a lower --lr \(now 0.0001\) "
                                               r"or a larger --gp_weight"):
        check_finite(nan, step_masks(10, 2, {"D": 1}), 10, hints["wgan-gp"])
