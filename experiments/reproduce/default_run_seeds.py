"""The default run (`python -m ganjax.train`: gan, the 32x32 DCGAN with f = 32, G's EMA, Adam
5e-4; before the EMA, the homework's config) over several seeds: the digit classifier's FD / KID / IS after every epoch, per seed.

Used to measure a change of the training semantics before and after, on the same work:

    python -m experiments.reproduce.default_run_seeds --tag=before --epochs=10   # on the old commit
    python -m experiments.reproduce.default_run_seeds --tag=after --epochs=10    # on the new one

Each seed trains in <workdir>/<tag>-seed<k> (a finished run is reused: delete it to train again).
Writes experiments/results/default_run_seeds_<tag>.json: per seed the final scores and the FD
curve, and their mean and standard deviation over seeds.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from experiments import RESULTS
from ganjax.config import Config, resolve
from ganjax.summaries import read_log
from ganjax.training import train


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="Name of this measurement (before, after, ...).")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=30, help="Epochs per seed (30: the recorded results' budget; the default run has 50 now).")
    p.add_argument("--workdir", default="/tmp/ganjax-default-seeds")
    args = p.parse_args()

    per_seed = []
    for seed in (int(s) for s in args.seeds.split(",")):
        config = resolve(Config(seed=seed, n_epoch=args.epochs, eval_every=1, tensorboard=False,
                                workdir=os.path.join(args.workdir, f"{args.tag}-seed{seed}")))
        train(config)  # scores every epoch into metrics.jsonl (ganjax.evaluation)
        scores = [r for r in read_log(os.path.join(config.workdir, "metrics.jsonl")) if "fd" in r]
        last = scores[-1]
        per_seed.append({"seed": seed, "fd": last["fd"], "kid": last["kid"], "is": last["is"],
                         "fd_curve": [r["fd"] for r in scores]})
        print(json.dumps({k: v for k, v in per_seed[-1].items() if k != "fd_curve"}), flush=True)
    summary = {key: {"mean": float(np.mean([r[key] for r in per_seed])),
                     "std": float(np.std([r[key] for r in per_seed], ddof=1)) if len(per_seed) > 1 else 0.0}
               for key in ("fd", "kid", "is")}
    result = {"tag": args.tag, "epochs": args.epochs, "fd_real": last["fd_real"], "summary": summary,
              "seeds": per_seed}
    print(json.dumps(summary))
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"default_run_seeds_{args.tag}.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
