"""A training run in its own process, for tests/test_parallel.py (jax reads the CPU device count
from XLA_FLAGS at import, so every device layout needs a fresh process).

    python tests/parallel_run.py OUT.npz --devices=8 --steps=8 [--coordinator=... ] [any Config flag]

Trains a tiny DCGAN on 8x8 digits with the given flags and, on process 0, saves the final state's
leaves and the log's losses to OUT.npz. Flags may be repeated in `;`-separated phases
(`--steps=4;--steps=8 --devices=1`): each phase resumes the run of the phase before.
"""

import json
import os
import sys

import jax
import numpy as np

from ganjax.train import parse_args
from ganjax.training import train

TINY = ["--dataset=digits", "--resolution=8", "--features=8", "--z_dim=8", "--batch_size=16", "--chunk_size=4",
        "--ckpt_every=4", "--seed=0"]


def main(out: str, phases: str) -> None:
    state = None
    for i, phase in enumerate(phases.split(";")):
        config = parse_args(TINY + phase.split())[0]
        state = train(config, progress=False, restart=i == 0)
    if jax.process_index() == 0:
        with open(os.path.join(config.workdir, "metrics.jsonl")) as f:
            records = [json.loads(line) for line in f]
        leaves = {f"leaf{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(state))}
        np.savez(out, loss_D=[r["loss_D"] for r in records], loss_G=[r["loss_G"] for r in records], **leaves)


if __name__ == "__main__":
    main(sys.argv[1], " ".join(sys.argv[2:]))
