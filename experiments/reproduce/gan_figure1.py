"""Figure 1 of the GAN paper (Goodfellow et al. 2014, "Generative Adversarial Nets") from a real run.

A 1-D GAN (MLP, z_dim 1) learns N(2, 0.5^2). Four panels at four points of one training run:
the data density (black dots), the generator's density (green), D(x) (blue dashes), and lines
from evenly spaced z (the lower line) to x = G(z). As training goes on p_g moves onto the data
and D flattens towards 1/2. The stages are resumed checkpoints of one run, so the panels are
exactly the states of a run trained in one go.

    python -m experiments.reproduce.gan_figure1            # ~1 min on 2 CPU cores
Writes experiments/results/gan_figure1.png and gan_figure1.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments import RESULTS
from ganjax.config import Config, resolve
from ganjax.data.toy import ONE_D_MEAN, ONE_D_STD
from ganjax.state import create_state, make_spec
from ganjax.steps import apply_net
from ganjax.training import train


def stage_curves(gan, state, xs, n_samples: int = 20000, seed: int = 0):
    """(p_g on xs from a histogram of G's samples, D(xs), z's and G(z)'s for the lines)."""
    g = lambda z: apply_net(gan.generator, state.g.params, state.g.model_state, z, False)[0]
    d = lambda x: jax.nn.sigmoid(apply_net(gan.discriminator, state.d.params, state.d.model_state, x, False)[0])
    samples = np.asarray(g(jax.random.normal(jax.random.PRNGKey(seed), (n_samples, 1))))[:, 0]
    width = xs[1] - xs[0]
    edges = np.append(xs - width / 2, xs[-1] + width / 2)
    p_g = np.histogram(samples, edges, density=True)[0]
    z_lines = np.linspace(-2.0, 2.0, 15, dtype=np.float32)[:, None]
    return p_g, np.asarray(d(jnp.asarray(xs[:, None], jnp.float32))), z_lines[:, 0], np.asarray(g(z_lines))[:, 0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stages", default="0,150,600,4000", help="Steps at which to draw (0: untrained).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default="/tmp/ganjax-gan-figure1")
    args = p.parse_args()
    stages = [int(s) for s in args.stages.split(",")]

    config = resolve(Config(loss="gan", dataset="toy:1d", arch="mlp", z_dim=1, mlp_width=32, mlp_depth=2,
                            batch_size=256, lr=1e-3, lr_decay="none", beta1=0.5, beta2=0.999, seed=args.seed, chunk_size=50,
                            workdir=args.workdir, ckpt_every=0, sample_every=1000))
    gan = make_spec(config)
    xs = np.linspace(-1.0, 5.0, 121, dtype=np.float32)
    data_density = np.exp(-0.5 * ((xs - ONE_D_MEAN) / ONE_D_STD) ** 2) / (ONE_D_STD * np.sqrt(2 * np.pi))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(stages), figsize=(3.6 * len(stages), 3.4), sharey=True)
    table = []
    for i, (ax, step) in enumerate(zip(axes, stages)):
        if step == 0:
            state = create_state(gan, config.seed)
        else:
            state = train(dataclasses.replace(config, steps=step), progress=False, restart=(i == 1 and stages[0] == 0))
        p_g, d_x, z, g_z = stage_curves(gan, state, xs)
        ax.plot(xs[::3], data_density[::3], ".", color="black", ms=3, label="data")
        ax.plot(xs, p_g, "-", color="tab:green", label="$p_g$")
        ax.plot(xs, d_x, "--", color="tab:blue", label="D(x)")
        z_pos = np.interp(z, [-2.0, 2.0], [xs[0] + 0.5, xs[-1] - 0.5])  # the z line, drawn under x
        for zp, gz in zip(z_pos, g_z):
            ax.annotate("", xy=(np.clip(gz, xs[0], xs[-1]), 0.0), xytext=(zp, -0.35),
                        arrowprops=dict(arrowstyle="->", lw=0.6, color="gray"))
        ax.axhline(-0.35, color="black", lw=0.8)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.text(xs[0], -0.33, "z", fontsize=8)
        ax.text(xs[0], 0.02, "x", fontsize=8)
        d_on_data = float(np.sum(d_x * data_density) / np.sum(data_density))
        ax.set_title(f"({'abcd'[i] if i < 4 else i}) step {step}: E_data[D] = {d_on_data:.2f}", fontsize=9)
        ax.set_ylim(-0.45, 1.3)
        table.append({"step": step, "D_on_data": d_on_data, "G_mean": float(np.mean(g_z)),
                      "G_std": float(np.std(g_z))})
        print(json.dumps(table[-1]))
    axes[0].legend(loc="upper left", fontsize=7)
    fig.suptitle("GAN on N(2, 0.5²): data (black dots), generator density (green), D(x) (blue dashes), z -> G(z)",
                 fontsize=9)
    fig.tight_layout()
    os.makedirs(RESULTS, exist_ok=True)
    fig.savefig(os.path.join(RESULTS, "gan_figure1.png"), dpi=110)
    with open(os.path.join(RESULTS, "gan_figure1.json"), "w") as f:
        json.dump({"config": dataclasses.asdict(config), "stages": table}, f, indent=2)
    print(f"wrote {os.path.join(RESULTS, 'gan_figure1.png')}")


if __name__ == "__main__":
    main()
