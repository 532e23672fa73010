"""SNGAN against the homework's WGAN-GP on 64x64 faces, scored by Inception FID: a job for a GPU.

    python -m experiments.reproduce.sngan_faces --faces=faces/                 # the homework's anime faces
    python -m experiments.reproduce.sngan_faces --synthetic=20000              # no face set at hand
    python -m experiments.reproduce.sngan_faces --rows=                        # the table of the results so far

Rows (each on `--dataset=folder:FACES --resolution=64`, `--steps` D steps):
- `hw6-wgan-gp`: the homework's WGAN-GP (DCGAN 64x64, instance norm in D, Adam 1e-4), as a baseline;
- `sngan`: `--preset=sngan` (Miyato et al. 2018): hinge loss, the ResNet G and D at 64x64 with
  spectral norm in D, Adam 2e-4 betas (0, 0.9), 5 D steps per G step, G's EMA.
Each run evaluates every --eval_every epochs with ganjax's Inception metrics (pytorch-fid's FID
Inception-v3; `fid`, `inception_kid`, `precision`, `recall`, `inception_score`) on --eval_samples
samples of its (EMA) G against the whole training set. Without the Inception weights the script
stops before training, in one line: on 2 CPU cores Inception scores a few images/s and the 64x64
ResNets take seconds per step, so this needs a GPU and pytorch-fid's weights file.

`--synthetic=N` writes N cartoon faces (experiments.tools.synthetic_faces) into <workdir>/synthetic_faces
and trains on them: the table then says so, and its FIDs say nothing about real faces.

Writes experiments/results/<out>.json (merged with earlier rows), <out>.md and <out>.png (the last
grid of each row's first seed; --out=sngan_faces). A finished run in <workdir>/<row>-seed<k>
is reused; delete it to train again.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

from experiments import RESULTS, keep_last_grid, merge_seeds
from ganjax.errors import UserError, run_command

ROWS: dict[str, list[str]] = {
    "hw6-wgan-gp": ["--preset=hw6-wgan-gp"],
    "sngan": ["--preset=sngan"],
}
INCEPTION_KEYS = ("fid", "inception_kid", "precision", "recall", "inception_score")


def faces_source(args) -> tuple[str, str]:
    """(folder, how the table names it): --faces, or --synthetic faces written once."""
    if args.faces:
        if not os.path.isdir(args.faces):
            raise UserError(f"--faces={args.faces}: no such folder; give a folder of face images, or --synthetic=N")
        return args.faces, f"folder {args.faces}"
    from experiments.tools.synthetic_faces import write_faces

    folder = os.path.join(args.workdir, "synthetic_faces")
    written = [f for f in os.listdir(folder) if f.endswith(".png")] if os.path.isdir(folder) else []
    if len(written) != args.synthetic:  # (the folder also holds the loader's cache, .ganjax-cache)
        shutil.rmtree(folder, ignore_errors=True)
        write_faces(folder, args.synthetic, seed=0)
    return folder, f"synthetic cartoon faces (experiments.tools.synthetic_faces, {args.synthetic:,}, seed 0)"


def require_weights(flag: str | None) -> None:
    """The one-line stop of a run that could not report its FID (weights missing or unreadable)."""
    from ganjax.metrics.inception_weights import weights_problem

    if problem := weights_problem(flag):
        raise UserError(problem)


def run_row(name: str, seed: int, folder: str, args) -> dict:
    import jax

    from ganjax.summaries import read_log
    from ganjax.train import parse_args
    from ganjax.training import train

    workdir = os.path.join(args.workdir, f"{name}-seed{seed}")
    flags = ROWS[name] + [f"--dataset=folder:{folder}", "--resolution=64", f"--steps={args.steps}", f"--seed={seed}",
                          f"--workdir={workdir}", f"--eval_every={args.eval_every}", f"--eval_samples={args.eval_samples}"]
    if args.inception_weights:
        flags.append(f"--inception_weights={args.inception_weights}")
    flags += args.flags.split()
    tic = time.time()
    train(parse_args(flags)[0])
    wall = time.time() - tic
    scores = [r for r in read_log(os.path.join(workdir, "metrics.jsonl")) if "fid" in r]
    if not scores:
        raise UserError(f"{workdir}: the run logged no FID; was --eval_every longer than the run?")
    grid = os.path.join(RESULTS, f"{args.out}_grids", f"{name}-seed{seed}.png")
    keep_last_grid(workdir, grid)
    return {"row": name, "seed": seed, "flags": ROWS[name] + args.flags.split(), "steps": args.steps,
            **{k: scores[-1].get(k) for k in INCEPTION_KEYS},
            "fid_curve": [[r["step"], r["fid"]] for r in scores], "wall_s": wall,
            "device": jax.devices()[0].device_kind, "grid": os.path.relpath(grid, RESULTS)}


def table(results: dict, faces: str) -> str:
    lines = [f"Faces: {faces}", "",
             "| row | flags | D steps | FID (mean ± std) | seeds | inception KID | precision | recall | wall (s) | device |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, runs in results.items():
        fid = np.array([r["fid"] for r in runs])
        std = f" ± {fid.std(ddof=1):.1f}" if len(fid) > 1 else ""
        mean = lambda k: np.mean([r[k] for r in runs if r.get(k) is not None] or [np.nan])
        lines.append(f"| {name} | `{' '.join(runs[0]['flags'])}` | {runs[0]['steps']} | {fid.mean():.1f}{std} | "
                     f"{len(fid)} | {mean('inception_kid'):.4f} | {mean('precision'):.3f} | {mean('recall'):.3f} | "
                     f"{mean('wall_s'):.0f} | {'; '.join(sorted({r['device'] for r in runs}))} |")
    return "\n".join(lines)


def figure(results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 5.4), squeeze=False)
    for ax, (name, runs) in zip(axes.flat, results.items()):
        ax.imshow(Image.open(os.path.join(RESULTS, runs[0]["grid"])))
        ax.set_title(f"{name}: FID {np.mean([r['fid'] for r in runs]):.1f}")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _run(argv: list[str] | None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--faces", help="A folder of face images (the homework's anime faces: faces/).")
    p.add_argument("--synthetic", type=int, default=0, help="Without --faces: train on N synthetic cartoon faces.")
    p.add_argument("--rows", default=",".join(ROWS), help=f"Comma-separated rows of: {', '.join(ROWS)}.")
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, default=100_000, help="D steps per run (sngan: 20,000 G steps).")
    p.add_argument("--eval_every", type=int, default=5, help="Epochs between evaluations.")
    p.add_argument("--eval_samples", type=int, default=10_000)
    p.add_argument("--inception_weights", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth.")
    p.add_argument("--flags", default="", help="Flags added to every row (e.g. '--batch_size=128').")
    p.add_argument("--workdir", default="runs/sngan_faces")
    p.add_argument("--out", default="sngan_faces", help="Name of the result files in experiments/results/.")
    args = p.parse_args(argv)
    rows = list(filter(None, args.rows.split(",")))
    if rows:
        for name in rows:
            if name not in ROWS:
                raise UserError(f"--rows: unknown row {name!r}; the rows are {', '.join(ROWS)}")
        if bool(args.faces) == bool(args.synthetic):
            raise UserError("give one of --faces=FOLDER and --synthetic=N")
        require_weights(args.inception_weights)
    path = os.path.join(RESULTS, f"{args.out}.json")
    results = {"faces": None, "rows": {}}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    if rows:
        folder, faces = faces_source(args)
        if results["faces"] not in (None, faces):
            raise UserError(f"{path} holds rows on {results['faces']}; move it away to start a table on {faces}")
        results["faces"] = faces
        for name in rows:
            runs = [run_row(name, int(seed), folder, args) for seed in args.seeds.split(",")]
            results["rows"][name] = merge_seeds(results["rows"].get(name, []), runs)
            with open(path, "w") as f:
                json.dump(results, f, indent=1)
    if not results["rows"]:
        raise UserError(f"no results yet in {path}: give --rows and --faces or --synthetic")
    with open(os.path.join(RESULTS, f"{args.out}.md"), "w") as f:
        f.write(f"Command: `python -m experiments.reproduce.sngan_faces {' '.join(sys.argv[1:])}`\n\n")
        f.write(table(results["rows"], results["faces"]) + "\n")
    figure(results["rows"], os.path.join(RESULTS, f"{args.out}.png"))
    print(table(results["rows"], results["faces"]))


if __name__ == "__main__":
    sys.exit(run_command("sngan_faces", lambda: _run(None)))
