"""Small training runs whose results were recorded before a refactor, to prove it changed nothing.

`python tests/golden_runs.py` records them (metrics.jsonl losses and every leaf of the final train
state, as saved in the checkpoint) into tests/data/golden/; `tests/test_golden.py` reruns them and
compares. Rerecord only for a deliberate change of the training semantics, in a commit of its own.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), "data", "golden")
# EMA, the learning-rate decay and InfoGAN's code: recorded before they existed
_QUIET = ["--eval_every=0", "--tensorboard=false", "--ema=0", "--lr_decay=none",
          "--latent_codes=0"]
_TOY = ["--dataset=toy:ring8", "--arch=mlp", "--mlp_width=16", "--mlp_depth=2", "--z_dim=2", "--batch_size=32",
        "--toy_size=512", "--lr=1e-3", "--steps=12", "--chunk_size=5", "--seed=3"]
_DIGITS = ["--dataset=digits", "--lr=1e-4", "--resolution=8", "--features=8", "--z_dim=8", "--batch_size=16", "--steps=10",
           "--chunk_size=4", "--seed=1"]
RUNS = {
    "toy-wgan-gp": _TOY + ["--loss=wgan-gp", "--n_critic=2"],
    "toy-wgan": _TOY + ["--loss=wgan", "--n_critic=3"],
    "digits-gan": _DIGITS + ["--loss=gan"],
    "digits-wgan-gp": _DIGITS + ["--loss=wgan-gp", "--n_critic=2"],
}


def run(name: str, workdir: str) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Trains run `name` in `workdir`; (the metrics.jsonl records, {leaf path: array} of the
    saved checkpoint's state)."""
    from ganjax import checkpoints
    from ganjax.train import main

    assert main(RUNS[name] + _QUIET + [f"--workdir={workdir}"]) == 0
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    manager = checkpoints.Checkpoints(workdir, read_only=True)
    step = manager.latest_step()
    import orbax.checkpoint as ocp
    restored = manager.manager.restore(step, args=ocp.args.Composite(
        generator=ocp.args.StandardRestore(), train=ocp.args.StandardRestore()))
    manager.close()
    leaves = {}
    for item in ("generator", "train"):
        for path, leaf in _flatten(restored[item], item):
            leaves[path] = np.asarray(leaf)
    return records, leaves


def _flatten(tree, prefix):
    if isinstance(tree, dict):
        for k in sorted(tree):
            yield from _flatten(tree[k], f"{prefix}/{k}")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _flatten(v, f"{prefix}/{i}")
    elif tree is not None and np.asarray(tree).size:
        yield prefix, tree


def machine() -> dict:
    """What decides float rounding: the CPU (its model and vector width) and the jax release."""
    import platform

    import jax

    cpu, flags = platform.processor(), ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            info = f.read()
        cpu = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), cpu)
        flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    return {"cpu": cpu, "avx512f": " avx512f" in flags, "jax": jax.__version__}


LOSS_KEYS = ("loss_D", "loss_G", "D_real", "D_fake", "wasserstein", "gp")


def losses(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("step",) + LOSS_KEYS if k in r} for r in records]


if __name__ == "__main__":
    import tempfile

    os.makedirs(GOLDEN_DIR, exist_ok=True)
    for name in sys.argv[1:] or RUNS:
        with tempfile.TemporaryDirectory() as tmp:
            records, leaves = run(name, os.path.join(tmp, "w"))
        with open(os.path.join(GOLDEN_DIR, f"{name}.json"), "w") as f:
            json.dump(losses(records), f, indent=1)
        np.savez_compressed(os.path.join(GOLDEN_DIR, f"{name}.npz"), **leaves)
        print(name, len(leaves), "leaves")
    with open(os.path.join(GOLDEN_DIR, "machine.json"), "w") as f:
        json.dump(machine(), f, indent=1)
