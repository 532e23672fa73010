"""Does the EMA generator's batch-norm statistics explain the share of unconfident digits?

Scores a finished digits run's EMA generator (ganjax.ema averages G's running statistics with its
weights) twice on the same z: with the averaged statistics it samples with, and with statistics
recalibrated for the EMA weights (train-mode passes of the EMA G on fresh z, in the spirit of
BigGAN's "standing statistics", Brock et al. 2019). Beside them, the digit classifier's confident
share on real digits: all 5,000, and the 1,000 held out from its training (`digit_split`).

    python -m experiments.reproduce.sampling_statistics --workdir=runs/gan-digits

Writes experiments/results/sampling_statistics.json.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np

from experiments import RESULTS, cpu_description
from ganjax.data.digits import load_digits
from ganjax.evaluation import sample_count, sample_metrics
from ganjax.generation import load_generator, map_in_batches
from ganjax.latent import sample_z
from ganjax.metrics.classifier import digit_features, digit_split, load_digit_labels
from ganjax.metrics.digits import class_balance

KEYS = ("fd", "kid", "confident", "class_min", "class_max")


def recalibrated(gen, batches: int, batch_size: int, seed: int) -> dict:
    """G's variables with batch statistics updated by `batches` train-mode passes on fresh z."""
    variables = {k: v for k, v in gen.variables.items() if v}
    step = jax.jit(lambda v, z: gen.module.apply(v, z, train=True, mutable=["batch_stats"])[1])
    for key in jax.random.split(jax.random.PRNGKey(seed), batches):
        variables = {**variables, **step(variables, sample_z(key, batch_size, gen.z_dim))}
    return variables


def scores(apply, config) -> dict:
    z = np.asarray(sample_z(jax.random.PRNGKey(0), sample_count(config), config.z_dim))
    metrics = sample_metrics(config, map_in_batches(apply, z, 250))
    return {k: round(float(metrics[k]), 4) for k in KEYS}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="runs/gan-digits")
    p.add_argument("--batches", type=int, default=100)
    args = p.parse_args()
    gen = load_generator(args.workdir)
    stats = recalibrated(gen, args.batches, 64, seed=1)
    _, probs = digit_features(load_digits(32, 1))
    _, heldout = digit_split(load_digit_labels())
    result = {
        "workdir": args.workdir, "step": gen.step, "ema": gen.ema, "cpu": cpu_description(),
        "averaged statistics": scores(gen.from_z, gen.config),
        f"recalibrated statistics ({args.batches} x 64)": scores(
            lambda z: gen.module.apply(stats, z, train=False), gen.config),
        "real digits confident": round(class_balance(probs)["confident"], 4),
        "held-out real digits confident": round(class_balance(np.asarray(probs)[heldout])["confident"], 4),
    }
    print(json.dumps(result, indent=1))
    with open(os.path.join(RESULTS, "sampling_statistics.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
