"""The 32x32 DCGAN on the embedded MNIST digits with gan, wgan and wgan-gp: FD and KID against steps.

Each loss trains with its homework settings (the default `python -m ganjax.train --loss=...`:
Adam 1e-4 for gan and wgan-gp, RMSprop 5e-5 and clipping for wgan, instance norm in wgan-gp's
critic). After every epoch the run is scored on 2,500 samples by the digit classifier's Frechet
distance and KID (`ganjax.evaluation`), beside the real-vs-real value. The epochs are resumed
checkpoints of one run per loss.

    python experiments/digits_losses.py --epochs=10      # about 10 min per loss on 2 CPU cores
Writes experiments/results/digits_losses.{md,json,png} and samples_<loss>.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganjax.config import Config, resolve  # noqa: E402
from ganjax.evaluation import evaluate  # noqa: E402
from ganjax.generate import generate  # noqa: E402
from ganjax.inference import load_generator  # noqa: E402
from ganjax.trainer import train  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
STEPS_PER_EPOCH = 5000 // 64


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--losses", default="gan,wgan,wgan-gp")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--kid_subsets", type=int, default=20)
    p.add_argument("--workdir", default="/tmp/ganjax-digits-losses")
    args = p.parse_args()

    curves, table = {}, []
    for loss in args.losses.split(","):
        config = resolve(Config(loss=loss, workdir=os.path.join(args.workdir, loss), ckpt_every=0))
        curves[loss], tic = [], time.time()
        for epoch in range(1, args.epochs + 1):
            train(dataclasses.replace(config, steps=epoch * STEPS_PER_EPOCH), progress=False, restart=epoch == 1)
            gen = load_generator(config.workdir)
            m = evaluate(lambda z: generate(gen, z, progress=False), gen.config, seed=0,
                         kid_subsets=args.kid_subsets)
            curves[loss].append({"epoch": epoch, "step": gen.step, **m})
            print(json.dumps({"loss": loss, **curves[loss][-1]}), flush=True)
        last = curves[loss][-1]
        table.append({"loss": loss, "epochs": args.epochs, "fd": last["fd"], "kid": last["kid"], "is": last["is"],
                      "fd_real": last["fd_real"], "kid_real": last["kid_real"], "is_real": last["is_real"],
                      "minutes": (time.time() - tic) / 60})
        shutil.copy(os.path.join(config.workdir, "samples", f"epoch_{args.epochs:03d}.png"),
                    os.path.join(RESULTS, f"samples_{loss}.png"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in zip(axes, ("fd", "kid")):
        for loss, points in curves.items():
            ax.plot([q["step"] for q in points], [q[key] for q in points], marker=".", label=loss)
        ax.axhline(points[-1][f"{key}_real"], color="gray", ls="--", label="real vs real")
        ax.set_yscale("log" if key == "fd" else "linear")
        ax.set_xlabel("step")
        ax.set_title(f"digit-classifier {key.upper()} (2,500 samples)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(RESULTS, exist_ok=True)
    fig.savefig(os.path.join(RESULTS, "digits_losses.png"), dpi=100)
    lines = ["| loss | epochs | FD | KID | IS analogue | minutes |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in table:
        lines.append(f"| {r['loss']} | {r['epochs']} | {r['fd']:.1f} | {r['kid']:.1f} | {r['is']:.2f} | "
                     f"{r['minutes']:.1f} |")
    r = table[-1]
    lines.append(f"| real vs real | | {r['fd_real']:.2f} | {r['kid_real']:.2f} | {r['is_real']:.2f} | |")
    print("\n".join(lines))
    with open(os.path.join(RESULTS, "digits_losses.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(RESULTS, "digits_losses.json"), "w") as f:
        json.dump({"curves": curves, "table": table}, f, indent=2)


if __name__ == "__main__":
    main()
