"""Command line: `python -m ganjax.evaluate --workdir=W [--step=S]` writes W/eval.json.

The metrics are those of `ganjax.evaluation` for the run's dataset (toy mode coverage, 1-D JSD,
digit-classifier FD / KID / IS beside their real-vs-real values). Only G is loaded.
"""

from __future__ import annotations

import json
import os
import sys

from ganjax.config import Parser
from ganjax.errors import UserError, run_command


def parse_args(argv: list[str] | None):
    p = Parser(prog="python -m ganjax.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True, help="Folder of a training run.")
    p.add_argument("--step", type=int, help="Checkpoint step to evaluate (default: the latest).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the latent draws (default 0).")
    p.add_argument("--kid_subsets", type=int, default=100, help="KID subsets (default 100, as Binkowski et al.).")
    p.add_argument("--out", help="Output JSON (default: <workdir>/eval.json).")
    args = p.parse_args(argv)
    if args.kid_subsets < 1:
        raise UserError(f"--kid_subsets must be positive, got {args.kid_subsets}")
    return args


def _run(argv: list[str] | None) -> int | None:
    args = parse_args(argv)
    from ganjax.evaluation import evaluate, has_metrics
    from ganjax.generation import load_generator

    gen = load_generator(args.workdir, args.step)
    if not has_metrics(gen.config):
        raise UserError(f"no sample-quality metric for --dataset={gen.config.dataset} at "
                        f"{gen.config.resolution}px / {gen.config.channels} channel(s): metrics exist for "
                        f"toy data and 32x32 digits")
    metrics = evaluate(gen.generate, gen.config, args.seed, args.kid_subsets)
    result = {"step": gen.step, "dataset": gen.config.dataset, "loss": gen.config.loss, "seed": args.seed,
              "metrics": metrics}
    out = args.out or os.path.join(args.workdir, "eval.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"step {gen.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()) + f" -> {out}")


def main(argv: list[str] | None = None) -> int:
    return run_command("ganjax.evaluate", lambda: _run(argv))


if __name__ == "__main__":
    sys.exit(main())
