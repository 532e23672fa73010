"""Data parallelism (ganjax.parallel): N devices and N processes follow the one-device run.

jax reads the CPU device count (XLA_FLAGS) at import, so every layout runs in a subprocess
(tests/parallel_run.py), with a timeout: a multi-process run whose peer never arrives would wait.
"""

import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from ganjax.config import Config, resolve
from ganjax.errors import UserError
from tests.conftest import wait_for_training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "tests", "parallel_run.py")


def env(devices: int) -> dict:
    return dict(os.environ, PYTHONPATH=ROOT, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")


def launch(out, flags: str, devices: int = 8):
    return subprocess.Popen([sys.executable, RUN, str(out), flags], env=env(devices), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, timeout=600):
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, err[-3000:]
    return out + err


def run(out, flags: str, devices: int = 8) -> dict:
    finish(launch(out, flags, devices))
    return dict(np.load(out))


def assert_same_run(a: dict, b: dict, rtol=2e-4, atol=2e-5):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=atol, equal_nan=True, err_msg=name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- settings -----------------------------------------------------------------------------------

def test_distributed_flags_are_checked():
    with pytest.raises(UserError, match="--num_processes and --process_id"):
        resolve(Config(coordinator="127.0.0.1:1234"))
    with pytest.raises(UserError, match="HOST:PORT"):
        resolve(Config(coordinator="nohost", num_processes=2, process_id=0))
    with pytest.raises(UserError, match="0 .. 1"):
        resolve(Config(coordinator="127.0.0.1:1234", num_processes=2, process_id=2))
    with pytest.raises(UserError, match="need --coordinator"):
        resolve(Config(process_id=0))


def test_batch_that_does_not_split_over_the_devices_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ganjax.train", "--batch_size=60", "--devices=8",
                             f"--workdir={tmp_path}"], env=env(8), cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "ganjax.train: error: --batch_size=60 does not split over 8 devices; use a multiple of 8 (56 or 64), "
        "or fewer --devices")
    assert "Traceback" not in result.stderr


# --- one host, several devices -----------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("flags,eight_flags", [
    ("--loss=gan --d_norm=batch", ""),  # batch norm in G and D: statistics of the global batch
    # per-sample gradient penalty (global eps), n_critic; data streamed to each device's slice
    ("--loss=wgan-gp --n_critic=2", "--data_on_device=false"),
    # EMA, spectral norm's power iteration, lazy R1, DiffAugment's per-sample draws of the global batch,
    # the learning-rate decay, InfoGAN's code
    ("--loss=hinge --d_norm=spectral --r1=1 --reg_every=2 --augment=color,translation,cutout --n_critic=2 "
     "--lr_decay=linear --latent_codes=3", ""),
], ids=["gan-batchnorm", "wgan-gp-streamed", "modern"])  # (weight clipping is elementwise: the same on every device)
def test_eight_devices_follow_one_device(tmp_path, flags, eight_flags):
    one = launch(tmp_path / "1.npz", f"--steps=8 --devices=1 --workdir={tmp_path}/one {flags}")
    eight = launch(tmp_path / "8.npz", f"--steps=8 --devices=8 --workdir={tmp_path}/eight {flags} {eight_flags}")
    finish(one), finish(eight)
    assert_same_run(dict(np.load(tmp_path / "1.npz")), dict(np.load(tmp_path / "8.npz")))


@pytest.mark.slow
def test_checkpoints_move_between_device_counts(tmp_path):
    """8 devices to step 4, then 1 device to step 8 (and the reverse) == 1 device all along."""
    base = "--loss=gan --d_norm=batch --lr_decay=none"  # the phases have other lengths than the whole run
    runs = {
        "one": f"--steps=8 --devices=1 --workdir={tmp_path}/one {base}",
        "8to1": f"--steps=4 --devices=8 --workdir={tmp_path}/a {base};--steps=8 --devices=1 --workdir={tmp_path}/a {base}",
        "1to8": f"--steps=4 --devices=1 --workdir={tmp_path}/b {base};--steps=8 --devices=8 --workdir={tmp_path}/b {base}",
    }
    processes = {name: launch(tmp_path / f"{name}.npz", flags) for name, flags in runs.items()}
    for process in processes.values():
        finish(process)
    one = dict(np.load(tmp_path / "one.npz"))
    for name in ("8to1", "1to8"):
        assert_same_run(one, dict(np.load(tmp_path / f"{name}.npz")))


# --- several processes -------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("devices_per_process", [2])  # 2 processes x 2 devices: both kinds of split
def test_two_processes_follow_one_process(tmp_path, devices_per_process):
    flags = "--steps=8 --loss=gan --d_norm=batch"
    single = launch(tmp_path / "single.npz", f"{flags} --devices=1 --workdir={tmp_path}/single", devices=1)
    port = free_port()
    workers = [launch(tmp_path / f"p{i}.npz", f"{flags} --workdir={tmp_path}/multi --coordinator=127.0.0.1:{port} "
                      f"--num_processes=2 --process_id={i} --init_timeout=120", devices=devices_per_process)
               for i in range(2)]
    finish(single)
    first, _ = finish(workers[0]), finish(workers[1])
    assert_same_run(dict(np.load(tmp_path / "single.npz")), dict(np.load(tmp_path / "p0.npz")))
    assert not (tmp_path / "p1.npz").exists()  # only process 0 reports
    assert sorted(os.listdir(tmp_path / "multi" / "checkpoints")) == ["4", "8"]
    assert "streamed from the host" in first  # several processes stream: each reads only its devices' rows


@pytest.mark.slow
def test_a_signal_to_one_process_stops_every_process_at_the_same_step(tmp_path):
    """SIGTERM to process 1 only: both save together at one chunk boundary and exit 143 (alone,
    process 0 would wait in the next chunk for a peer that had left)."""
    flags = ["--dataset=toy:ring8", "--toy_size=1000", "--batch_size=8", "--mlp_width=64", "--z_dim=2",
             "--chunk_size=5", "--steps=100000", "--ckpt_every=0", "--ckpt_epochs=0", "--eval_every=0",
             f"--workdir={tmp_path}", f"--coordinator=127.0.0.1:{free_port()}", "--num_processes=2",
             "--init_timeout=120"]
    workers = [subprocess.Popen([sys.executable, "-m", "ganjax.train", *flags, f"--process_id={i}"], env=env(1),
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        wait_for_training(tmp_path, workers[0])  # process 0 logs its first chunk
        workers[1].send_signal(signal.SIGTERM)
        errs = [w.communicate(timeout=120)[1] for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [143, 143], errs
    saved = sorted(os.listdir(tmp_path / "checkpoints"))
    assert len(saved) == 1 and all(f"stopped at step {saved[0]}" in err for err in errs), errs


def test_peer_that_never_arrives_ends_the_process_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ganjax.train", f"--workdir={tmp_path}", "--steps=1",
                             f"--coordinator=127.0.0.1:{free_port()}", "--num_processes=2", "--process_id=0",
                             "--init_timeout=3"], env=env(1), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "ganjax.train: error: not all 2 processes joined 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
