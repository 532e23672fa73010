"""Fault injection, end to end: kill -9 at random moments, a full disk, two writers, a torn log line.

Marked `faults` (pyproject.toml): a plain `pytest` (and CI) runs them; `-m "not faults"` leaves
them out of a quick local run. Every kill is followed by a resume that must end bitwise equal to
a straight run. The kill times are drawn from seeded generators, so a failure can be replayed.
"""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from ganjax.config import Config, resolve
from ganjax.errors import UserError
from ganjax.training import train
from ganjax.visualize import save_image_grid, written_in_full
from tests.test_checkpoints import assert_same_state, restore_latest
from tests.test_parallel import env as devices_env, free_port
from tests.test_reliability import TOY, TOY_FLAGS, hold_lock, messages

pytestmark = pytest.mark.faults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 48  # 4 toy epochs of 12 steps
IMAGES = dict(resolution=8, arch="mlp", mlp_width=16, mlp_depth=2, z_dim=8, batch_size=8, chunk_size=4, eval_every=0,
              tensorboard=False, steps=8)  # an MLP on flattened 8x8 images: quick to compile


class Run:
    """`python -m ganjax.train` in a subprocess, its stdout collected line by line."""

    def __init__(self, *args, **env):
        self.process = subprocess.Popen([sys.executable, "-m", "ganjax.train", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                        env=dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1", **env))
        self.lines = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()

    def wait_for(self, condition, timeout=120):
        deadline = time.time() + timeout
        while not condition():
            assert self.process.poll() is None, self.process.stderr.read()
            assert time.time() < deadline, "the moment never came"
            time.sleep(0.005)

    def kill(self):
        self.process.kill()
        self.process.wait(timeout=60)
        assert self.process.returncode == -signal.SIGKILL  # it was still running


def resume(config: Config, capsys=None):
    """The same run again, as a user would: a killed run resumes from its last checkpoint; one
    killed before its first checkpoint but after logging a chunk says so, and --restart starts it over."""
    try:
        return train(config, progress=False)
    except UserError as e:
        assert "but no checkpoint to resume from" in str(e)
        return train(config, progress=False, restart=True)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The toy run of STEPS steps in one go."""
    workdir = tmp_path_factory.mktemp("straight")
    train(resolve(Config(**TOY, steps=STEPS, workdir=str(workdir))), progress=False)
    return restore_latest(workdir)


def complete(workdir) -> list[str]:
    folder = workdir / "checkpoints"
    return [n for n in os.listdir(folder) if n.isdigit()] if folder.is_dir() else []


def saving(workdir, after: int) -> bool:
    """Whether a save's temporary folder exists after `after` complete checkpoints."""
    folder = workdir / "checkpoints"
    return len(complete(workdir)) >= after and any("tmp" in n for n in os.listdir(folder))


@pytest.mark.parametrize("moment,seed", [("compile", 0), ("chunk", 0), ("chunk", 1), ("save", 0), ("save", 1)])
def test_kill_9_then_resume_is_bitwise_the_straight_run(straight, tmp_path, moment, seed, capsys):
    rng = np.random.default_rng(seed)
    delay = rng.uniform(0, {"compile": 0.1, "chunk": 0.5, "save": 0.0}[moment])
    extra = {"compile": ["--compile_cache=none"], "chunk": ["--ckpt_every=8"], "save": ["--ckpt_every=4"]}[moment]
    run = Run(*TOY_FLAGS, f"--steps={STEPS}", f"--workdir={tmp_path}", "--keep=100", *extra)
    if moment == "compile":  # the start line comes just before the chunk is compiled
        run.wait_for(lambda: any(line.startswith("ganjax: ") for line in run.lines))
    elif moment == "chunk":  # training, with a checkpoint to resume from
        run.wait_for(lambda: complete(tmp_path))
    else:  # a save's temporary folder exists, after 1 to 3 complete ones
        after = 1 + int(rng.integers(0, 3))
        run.wait_for(lambda: saving(tmp_path, after))
    time.sleep(delay)
    run.kill()
    if moment == "compile":
        assert not any(line.startswith("Compiled") for line in run.lines)
    if moment == "chunk":  # what a full disk can still leave: a torn last line
        with open(tmp_path / "metrics.jsonl", "a") as f:
            f.write('{"step": 1000, "loss_')
    capsys.readouterr()
    state = resume(resolve(Config(**TOY, steps=STEPS, workdir=str(tmp_path))))
    assert_same_state(restore_latest(tmp_path), straight)
    assert_same_state(state, straight)
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if "tmp" in n]
    if moment == "chunk":
        assert sum("dropped 1 unreadable line" in line for line in messages(capsys.readouterr().err)) == 1


def test_kill_9_while_decoding_a_folder_then_resume(tmp_path):
    data = tmp_path / "data"
    os.makedirs(data)
    rng = np.random.default_rng(0)
    for i in range(300):  # enough for the decoding worker processes: a second or two
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    config = lambda workdir, cache: resolve(Config(**{**IMAGES, "dataset": f"folder:{data}"}, cache_dir=str(cache),
                                                   workdir=str(workdir)))
    whole = train(config(tmp_path / "whole", tmp_path / "cache-whole"), progress=False)
    cache = tmp_path / "cache"
    run = Run(*[f"--{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in IMAGES.items()],
              f"--dataset=folder:{data}", f"--cache_dir={cache}", f"--workdir={tmp_path / 'run'}")
    run.wait_for(lambda: cache.is_dir() and any(".tmp-" in name for root, _, names in os.walk(cache) for name in names))
    time.sleep(np.random.default_rng(0).uniform(0, 0.2))
    run.kill()
    assert not [name for _, _, names in os.walk(cache) for name in names if name.endswith(".json")]  # unfinished
    assert_same_state(resume(config(tmp_path / "run", cache)), whole)
    assert not [name for _, _, names in os.walk(cache) for name in names if ".tmp-" in name]


def test_a_second_writer_stops_at_once_and_the_first_run_is_untouched(tmp_path):
    first = Run(*TOY_FLAGS, "--steps=100000", "--ckpt_every=0", "--ckpt_epochs=0", f"--workdir={tmp_path}")
    first.wait_for(lambda: (tmp_path / "metrics.jsonl").exists() and (tmp_path / "metrics.jsonl").stat().st_size)
    second = subprocess.run([sys.executable, "-m", "ganjax.train", *TOY_FLAGS, "--steps=100000",
                             f"--workdir={tmp_path}"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    first.process.send_signal(signal.SIGTERM)
    first.process.wait(timeout=120)
    assert second.returncode == 2
    lines = messages(second.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"ganjax.train: error: {tmp_path} is in use by another run (PID "
                                                   f"{first.process.pid} on host {socket.gethostname()}, since ")
    assert first.process.returncode == 143  # stopped by SIGTERM, after saving
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # one writer: no interleaved records
    assert complete(tmp_path) == [str(steps[-1])]


def test_the_lock_holds_for_a_multi_host_run(tmp_path):
    """Process 0 takes the lock for both; when another run holds it, both stop with one line."""
    holder = hold_lock(tmp_path)
    flags = [*TOY_FLAGS, "--steps=8", f"--workdir={tmp_path}", f"--coordinator=127.0.0.1:{free_port()}",
             "--num_processes=2", "--init_timeout=120"]
    try:
        workers = [subprocess.Popen([sys.executable, "-m", "ganjax.train", *flags, f"--process_id={i}"],
                                    env=devices_env(1), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for i in range(2)]
        errs = [w.communicate(timeout=180)[1] for w in workers]
    finally:
        holder.kill()
        holder.wait()
    assert [w.returncode for w in workers] == [2, 2], errs
    assert messages(errs[0]) == [messages(errs[0])[0]] and f"in use by another run (PID {holder.pid}" in errs[0]
    assert messages(errs[1]) == [f"ganjax.train: error: {tmp_path} is in use by another run (see process 0's message)"]


DISK_FULL = """set -e
mount -t tmpfs -o size=560k tmpfs "$1"  # about 2.5 epochs of checkpoint + grid (~230k each): full between steps 24 and 48
shift
set +e
for run in first next; do
  "$@" > /dev/null 2> "$OUT/$run.err"; echo $? > "$OUT/$run.rc"; ls "$WORKDIR/checkpoints" > "$OUT/$run.checkpoints"
done
cp -r "$WORKDIR" "$OUT/workdir"
"""


def test_a_full_disk_ends_in_one_line_and_keeps_the_last_complete_checkpoint(straight, tmp_path):
    mount = tmp_path / "mnt"
    os.makedirs(mount)
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs {mount}"],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a small tmpfs here (unshare -rm + mount: {probe.stderr.strip() or probe.returncode})")
    workdir = mount / "run"
    result = subprocess.run(["unshare", "-rm", "sh", "-c", DISK_FULL, "sh", str(mount), sys.executable, "-m",
                             "ganjax.train", *TOY_FLAGS, f"--steps={STEPS}", "--keep=100", f"--workdir={workdir}"],
                            capture_output=True, text=True, timeout=600, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=ROOT, OUT=str(tmp_path), WORKDIR=str(workdir)))
    assert result.returncode == 0, result.stderr
    saved = tmp_path / "workdir"
    lasts = []
    # the next start resumes and finds the disk still full; it may first save one more checkpoint
    # in the space that its predecessor's unfinished save and sample grid left when removed
    for run in ("first", "next"):
        assert (tmp_path / f"{run}.rc").read_text().strip() == "1"
        lasts.append(max(int(n) for n in (tmp_path / f"{run}.checkpoints").read_text().split() if n.isdigit()))
        # one line: the save failed ("no space left on W: ...") or the check before it refused to try
        # ("not enough space left on W to save checkpoint N (...), so it was not tried: ..."),
        # whichever the sizes of this run's files lead to; it names the run's last complete checkpoint
        lines = messages((tmp_path / f"{run}.err").read_text())
        assert len(lines) == 1 and lines[0].startswith(("ganjax.train: error: no space left on ",
                                                        "ganjax.train: error: not enough space left on ")), lines
        assert lines[0].endswith(f"the last complete checkpoint is step {lasts[-1]} in {workdir / 'checkpoints'}; "
                                 "free some space, then run the same command to resume"), lines
    assert lasts[0] <= lasts[1] == max(int(n) for n in complete(saved)) < STEPS
    assert not [n for n in os.listdir(saved / "checkpoints") if "tmp" in n]
    for name in os.listdir(saved / "samples"):  # no truncated picture under a final name, no partial file
        assert "partial" not in name
        Image.open(saved / "samples" / name).load()
    # with space again, the same command goes on from the last complete checkpoint to the straight run's state
    shutil.copytree(saved, tmp_path / "freed")
    resume(resolve(Config(**TOY, steps=STEPS, workdir=str(tmp_path / "freed"))))
    assert_same_state(restore_latest(tmp_path / "freed"), straight)


def test_a_picture_replaces_the_old_one_only_once_written_in_full(tmp_path):
    """A write that fails (a full disk) keeps the previous picture and leaves no partial file."""
    path = tmp_path / "grid.png"
    save_image_grid(np.zeros((4, 8, 8, 1), np.float32), str(path))
    before = path.read_bytes()
    with pytest.raises(OSError, match="No space"):
        with written_in_full(str(path)) as tmp:
            with open(tmp, "wb") as f:
                f.write(before[:20])
            raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["grid.png"]
    save_image_grid(np.ones((4, 8, 8, 1), np.float32), str(path))
    assert np.asarray(Image.open(path)).max() == 255 and os.listdir(tmp_path) == ["grid.png"]
