"""Mode coverage on the ring of 8 and the grid of 25 Gaussians: gan, wgan, wgan-gp and the modern
stabilizers (EMA of G, R1, spectral norm), several seeds.

MLPs as in the WGAN-GP paper's toy experiments (ReLU G, LeakyReLU D; width 256, 3 layers here to
fit a CPU budget), batch 256, 2,500 samples scored by the VEEGAN definition (Srivastava et al. 2017):
modes covered, share of high-quality samples, reverse KL of the mode histogram. Settings per
loss: Adam 1e-3 betas (0.5, 0.9) for gan and wgan-gp, with lambda 0.1 for wgan-gp (the WGAN-GP
authors' toy script uses 0.1, not the 10 of images); RMSprop 5e-4, clip 0.01 and n_critic 5 for
wgan. The learning rates are 10x the papers' so that 5,000 steps (not 100,000) reach a result.
The three classic rows keep no EMA (as their papers); the others sample from G's EMA
(ganjax.ema), as every evaluation of an EMA run does.

    python -m experiments.reproduce.toy_modes                      # 2 datasets x 3 losses x 5 seeds
    python -m experiments.reproduce.toy_modes --seeds=1 --steps=2000 --datasets=toy:ring8
    python -m experiments.reproduce.toy_modes --settings=gan+ema,gan+ema+r1 --steps=15000 --out=toy_modes_modern
Writes experiments/results/toy_modes.{md,json,png}: the table (mean and std over seeds) and a
figure like the WGAN-GP paper's (seed 0's samples over the data, with D's or the critic's contours).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax
import numpy as np

from experiments import RESULTS
from ganjax.config import Config, resolve
from ganjax.data.toy import make_toy
from ganjax.evaluation import sample_metrics
from ganjax.state import make_spec
from ganjax.training import train
COMMON = dict(arch="mlp", z_dim=2, mlp_width=256, mlp_depth=3, batch_size=256, chunk_size=500,
              sample_every=10_000, eval_every=0, tensorboard=False, ckpt_every=0, ckpt_epochs=0,
              lr_decay="none")  # constant rates unless a setting decays them
GAN = dict(loss="gan", optimizer="adam", lr=1e-3, beta1=0.5, beta2=0.9, n_critic=1)
SETTINGS = {  # a 5,000-step CPU budget: learning rates above the papers' 100,000-step settings
    "gan": dict(GAN, ema=0.0),
    "wgan": dict(loss="wgan", optimizer="rmsprop", lr=5e-4, clip_value=0.01, n_critic=5, ema=0.0),
    "wgan-gp": dict(loss="wgan-gp", optimizer="adam", lr=1e-3, beta1=0.5, beta2=0.9, n_critic=1, gp_weight=0.1,
                    ema=0.0),
    "gan+ema": dict(GAN, ema=0.999),
    # R1 gamma 0.01: on grid25 (seed 0, 5,000 steps) 0.003 / 0.01 / 0.03 / 0.1 gave 76 / 81 / 78 / 60 %
    # high-quality samples, all 25 modes; without the EMA 0.01 gave 46 %
    "gan+ema+r1": dict(GAN, ema=0.999, r1=0.01),
    # and both learning rates decayed linearly to 0 over the run (--lr_decay=linear)
    "gan+ema+r1+decay": dict(GAN, ema=0.999, r1=0.01, lr_decay="linear"),
    "hinge+spectral+ema": dict(GAN, loss="hinge", d_norm="spectral", ema=0.999),
}


def run(dataset: str, setting: str, seed: int, steps: int, workdir: str):
    """Trains one configuration; returns (config, state, metrics of 2,500 samples of its sampling G)."""
    config = resolve(Config(**COMMON, **SETTINGS[setting], dataset=dataset, seed=seed, steps=steps, workdir=workdir))
    state = train(config, progress=False, restart=True)
    gan = make_spec(config)
    z = jax.random.normal(jax.random.PRNGKey(10_000 + seed), (2500, config.z_dim))
    samples = np.asarray(gan.generator.apply(state.sampling_variables(), z, train=False))
    return config, gan, state, samples, sample_metrics(config, samples)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="toy:ring8,toy:grid25")
    p.add_argument("--settings", default=",".join(SETTINGS), help=f"Comma-separated, of: {', '.join(SETTINGS)}.")
    p.add_argument("--out", default="toy_modes", help="Name of the result files in experiments/results/.")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=5000, help="D steps per run (G steps = steps / n_critic).")
    p.add_argument("--workdir", default="/tmp/ganjax-toy-modes")
    args = p.parse_args()
    datasets, losses = args.datasets.split(","), args.settings.split(",")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganjax.visualize import draw_toy

    fig, axes = plt.subplots(len(datasets), len(losses), figsize=(4.6 * len(losses), 4 * len(datasets)),
                             squeeze=False)
    rows, tic = [], time.time()
    for i, dataset in enumerate(datasets):
        for j, loss in enumerate(losses):
            per_seed = []
            for seed in range(args.seeds):
                config, gan, state, samples, m = run(dataset, loss, seed, args.steps,
                                                     os.path.join(args.workdir, f"{dataset[4:]}-{loss}-{seed}"))
                per_seed.append(m)
                print(json.dumps({"dataset": dataset, "loss": loss, "seed": seed, **m}), flush=True)
                if seed == 0:
                    out = gan.loss.d_output
                    critic = lambda x: np.asarray(out(gan.discriminator.apply(state.d.variables(), x, train=False)))
                    draw_toy(axes[i, j], samples, make_toy(dataset, 2500, 0), critic,
                             f"{loss} on {dataset[4:]}: {m['modes']}/{m['modes_total']} modes, "
                             f"{100 * m['high_quality']:.0f}% HQ", gan.loss.d_output_label)
            summary = {"dataset": dataset, "loss": loss, "seeds": args.seeds, "steps": args.steps}
            for key in ("modes", "high_quality", "reverse_kl"):
                values = np.array([m[key] for m in per_seed], float)
                summary[key] = [float(values.mean()), float(values.std())]
            rows.append(summary)
    elapsed = time.time() - tic
    fig.tight_layout()
    os.makedirs(RESULTS, exist_ok=True)
    fig.savefig(os.path.join(RESULTS, f"{args.out}.png"), dpi=90)

    lines = [f"{args.seeds} seeds x {args.steps} D steps each, 2,500 samples; mean ± std over seeds "
             f"({elapsed / 60:.1f} min on this machine)", "",
             "| data | setting | modes covered | high-quality samples | reverse KL |", "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        total = 8 if r["dataset"] == "toy:ring8" else 25
        lines.append(f"| {r['dataset']} | {r['loss']} | {r['modes'][0]:.1f} ± {r['modes'][1]:.1f} / {total} | "
                     f"{100 * r['high_quality'][0]:.1f} ± {100 * r['high_quality'][1]:.1f} % | "
                     f"{r['reverse_kl'][0]:.3f} ± {r['reverse_kl'][1]:.3f} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(RESULTS, f"{args.out}.md"), "w") as f:
        f.write(f"Command: `python -m experiments.reproduce.toy_modes {' '.join(os.sys.argv[1:])}`\n\n" + table + "\n")
    with open(os.path.join(RESULTS, f"{args.out}.json"), "w") as f:
        json.dump({"settings": {"common": COMMON, **{k: SETTINGS[k] for k in losses}}, "rows": rows,
                   "seconds": elapsed}, f, indent=2)


if __name__ == "__main__":
    main()
