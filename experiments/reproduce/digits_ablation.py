"""Which technique buys what on the default digits budget: named rows of training flags (on top
of the defaults), each trained over seeds, scored by the shipped digit classifier.

    python -m experiments.reproduce.digits_ablation                       # every row, seeds 0,1,2
    python -m experiments.reproduce.digits_ablation --rows=default --seeds=0 --eval_every=3
    python -m experiments.reproduce.digits_ablation --rows=                # the table and figure of the results so far

Per row and seed: the final digit FD / KID / IS, the FD curve (every --eval_every epochs), the
share of 5,000 samples the classifier labels with confidence > 0.9, the smallest and largest
class share, the worst FD after the first third of the run relative to the final one, and the
wall time. Each run trains in <workdir>/<row>-seed<k> (a finished run is reused: delete it to
train again). Writes experiments/results/digits_ablation.json (merged with earlier rows),
digits_ablation.md (the table), digits_ablation_grids/<row>-seed<k>.png (each run's last EMA grid)
and digits_ablation.png (the grid of each row's first seed).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from experiments import RESULTS, cpu_description, keep_last_grid, merge_seeds
from ganjax.summaries import read_log
from ganjax.train import parse_args
from ganjax.training import train

# The homework's config is the baseline (the default run before EMA: Adam 1e-4 constant, no EMA);
# each technique is added to it alone. Then the default run before the decay (EMA, Adam 1e-3
# constant: CONST) and additions to it, the default run before InfoGAN's code (EMA, Adam 2e-3
# decayed linearly to 0: decay@lr2e-3) and additions to it, the code at that budget (50 epochs),
# and today's default (the same with the code, 60 epochs) with additions to it. Each row names
# every flag that differs from today's defaults: the rows from before the code turn it off and
# keep the 50 epochs they ran.
BEFORE = ["--latent_codes=0", "--n_epoch=50"]
BASE = BEFORE + ["--ema=0", "--lr=1e-4", "--lr_decay=none"]
CONST = BEFORE + ["--lr=1e-3", "--lr_decay=none"]
ROWS: dict[str, list[str]] = {
    "baseline": BASE,
    "+ema": BEFORE + ["--ema=0.999", "--lr=1e-4", "--lr_decay=none"],
    "+lr5e-4": BEFORE + ["--ema=0", "--lr=5e-4", "--lr_decay=none"],
    "+augment": BASE + ["--augment=translation,cutout"],
    "+spectral": BASE + ["--d_norm=spectral"],
    "+r1": BASE + ["--d_norm=none", "--r1=1"],
    "+codes": ["--n_epoch=50", "--ema=0", "--lr=1e-4", "--lr_decay=none"],  # the baseline with the code
    "ema@lr5e-4": BEFORE + ["--lr=5e-4", "--lr_decay=none", "--n_epoch=30"],  # the default before lr 1e-3
    "ema@lr1e-3": CONST,  # the default before the decay
    "ema@lr1e-3+augment": CONST + ["--augment=translation,cutout"],
    "ema@lr1e-3+translation": CONST + ["--augment=translation"],  # cutout erases strokes a digit's class depends on
    "ema@lr1e-3+spectral": CONST + ["--d_norm=spectral"],
    "ema@lr1e-3@f48": CONST + ["--features=48"],  # 2.25x the FLOPs: what more capacity buys, outside the budget
    "decay@lr1e-3": BEFORE + ["--lr=1e-3"],  # the decay at the constant default's rate
    "decay@lr3e-3": BEFORE + ["--lr=3e-3"],
    "decay@lr2e-3": BEFORE,  # the default before InfoGAN's code
    "decay@lr2e-3+augment": BEFORE + ["--augment=translation,cutout"],
    "decay@lr2e-3+spectral": BEFORE + ["--d_norm=spectral"],
    "decay@lr2e-3+r1": BEFORE + ["--d_norm=none", "--r1=1"],
    "codes@50ep": ["--n_epoch=50"],  # the code added at the budget of the default before it
    "codes@50ep@lr3e-3": ["--n_epoch=50", "--lr=3e-3"],
    "codes@50ep@info0.5": ["--n_epoch=50", "--info_weight=0.5"],
    "default": [],
    "default+augment": ["--augment=translation,cutout"],
    "default+spectral": ["--d_norm=spectral"],
    "default+r1": ["--d_norm=none", "--r1=1"],
    # SNGAN at the default run's training time on this CPU (about 360 s in steps): its ResNets at
    # f = 32 take 3.4 s per D step on the 2-core AVX-512 EPYC, so 105 D steps (21 G steps); at f = 8
    # (G 64 wide, D 32) 0.26 s, so 1,380 D steps.
    "sngan": ["--preset=sngan", "--dataset=digits", "--resolution=32", "--steps=105"],
    "sngan@f8": ["--preset=sngan", "--dataset=digits", "--resolution=32", "--features=8", "--steps=1380"],
}


def classifier_shares(workdir: str, n: int = 5000, seed: int = 0) -> dict:
    """Share of n samples of the run's (EMA) generator classified with confidence > 0.9, and the
    smallest and largest share of one class (argmax of the shipped digit classifier)."""
    import jax

    from ganjax.generation import load_generator
    from ganjax.metrics.classifier import digit_features

    gen = load_generator(workdir)
    _, probs = digit_features(gen.generate(np.asarray(jax.random.normal(jax.random.PRNGKey(seed + 7), (n, gen.z_dim)))))
    shares = np.bincount(probs.argmax(axis=1), minlength=10) / n
    return {"confident": float(np.mean(probs.max(axis=1) > 0.9)), "class_min": float(shares.min()),
            "class_max": float(shares.max())}


def run_row(name: str, flags: list[str], seed: int, args) -> dict:
    workdir = os.path.join(args.workdir, f"{name}-seed{seed}")
    extra = [f"--seed={seed}", f"--workdir={workdir}", "--tensorboard=false", f"--eval_every={args.eval_every}"]
    if args.epochs:
        extra.append(f"--n_epoch={args.epochs}")
    config = parse_args(flags + extra + args.flags.split())[0]
    tic = time.time()
    train(config)
    wall = time.time() - tic
    keep_last_grid(workdir, grid_path(name, seed))
    return summarize(name, flags, seed, workdir, wall)


def summarize(name: str, flags: list[str], seed: int, workdir: str, wall: float) -> dict:
    """One finished run's record: its log's scores and the classifier shares of its last G."""
    log = read_log(os.path.join(workdir, "metrics.jsonl"))
    scores = [r for r in log if "fd" in r]
    steps = [r for r in log if "steps_per_s" in r]
    last = scores[-1]
    later = [r["fd"] for r in scores if r["epoch"] > scores[-1]["epoch"] / 3]
    return {"row": name, "seed": seed, "flags": flags, "fd": last["fd"], "kid": last["kid"], "is": last["is"],
            "fd_real": last["fd_real"], "fd_curve": [[r["epoch"], r["fd"]] for r in scores],
            "worst_later_over_final": max(later) / last["fd"], "wall_s": wall,
            "train_wall_s": steps[-1]["wall_time"] if steps else None, "cpu": cpu_description(),
            **classifier_shares(workdir)}


def table(results: dict) -> str:
    """One line per row: FD, confident share and wall time are means over the seeds; the class
    shares are the smallest and largest of any seed, and the later-FD ratio is the worst seed's, as
    the targets of a clean default run hold for every seed."""
    lines = ["| row | flags | epochs | FD (mean ± std) | seeds | confident > 0.9 | class share (any seed) | worst later FD / final (worst seed) | training wall (s) | CPU |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, runs in results.items():
        fd = np.array([r["fd"] for r in runs])
        std = f" ± {fd.std(ddof=1):.1f}" if len(fd) > 1 else ""
        mean = lambda k: np.mean([r[k] for r in runs])
        epochs = "/".join(sorted({str(r["fd_curve"][-1][0]) for r in runs}))  # rows from before a default change differ
        lines.append(f"| {name} | `{' '.join(runs[0]['flags']) or '(defaults)'}` | {epochs} | {fd.mean():.1f}{std} | {len(fd)} | "
                     f"{100 * mean('confident'):.0f} % | {100 * min(r['class_min'] for r in runs):.1f}-"
                     f"{100 * max(r['class_max'] for r in runs):.1f} % | "
                     f"{max(r['worst_later_over_final'] for r in runs):.2f} | {mean('train_wall_s'):.0f} | "
                     f"{'; '.join(sorted({r.get('cpu', 'not recorded') for r in runs}))} |")
    return "\n".join(lines)


def grid_path(row: str, seed: int) -> str:
    """Where a run's last sample grid is kept, so that the figure outlives the run's workdir."""
    return os.path.join(RESULTS, "digits_ablation_grids", f"{row}-seed{seed}.png")


def grids(results: dict, workdir: str, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    names = [name for name in results if os.path.exists(grid_path(name, results[name][0]["seed"]))]
    cols = min(5, len(names))  # rows of at most 5 grids stay readable
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.imshow(Image.open(grid_path(name, results[name][0]["seed"])), cmap="gray")
        fd = np.mean([r["fd"] for r in results[name]])
        ax.set_title(f"{name}\nFD {fd:.1f}", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def load_results(path: str) -> dict:
    """The rows recorded so far ({} before the first)."""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", default=",".join(ROWS), help=f"Comma-separated rows of: {', '.join(ROWS)}.")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="Epochs per run (default: the default run's).")
    p.add_argument("--eval_every", type=int, default=1)
    p.add_argument("--flags", default="", help="Flags added to every row (e.g. '--ema=0.99').")
    p.add_argument("--workdir", default="/tmp/ganjax-ablation")
    p.add_argument("--out", default="digits_ablation", help="Name of the result files in experiments/results/.")
    p.add_argument("--define", action="append", default=[], metavar="NAME=FLAGS",
                   help="A row of your own, e.g. --define='lr2e-4=--lr=2e-4 --augment=translation' (then --rows=NAME).")
    args = p.parse_args()
    for definition in args.define:
        name, flags = definition.split("=", 1)
        ROWS[name] = flags.split()

    path = os.path.join(RESULTS, f"{args.out}.json")
    results = load_results(path)
    for name in filter(None, args.rows.split(",")):  # --rows= (none): only the table and figure again
        runs = [run_row(name, ROWS[name], int(seed), args) for seed in args.seeds.split(",")]
        results = load_results(path)  # read again: runs of other rows in parallel may have written meanwhile
        results[name] = merge_seeds(results.get(name, []), runs)
        for r in runs:
            print(json.dumps({k: v for k, v in r.items() if k != "fd_curve"}), flush=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=1)
    ordered = {name: results[name] for name in ROWS if name in results}
    with open(os.path.join(RESULTS, f"{args.out}.md"), "w") as f:
        f.write(f"Command: `python -m experiments.reproduce.digits_ablation {' '.join(os.sys.argv[1:])}`\n\n")
        f.write(table(ordered) + "\n")
    grids(ordered, args.workdir, os.path.join(RESULTS, f"{args.out}.png"))
    print(table(ordered))


if __name__ == "__main__":
    main()
