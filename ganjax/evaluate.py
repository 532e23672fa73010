"""Command line: `python -m ganjax.evaluate --workdir=W [--step=S]` writes W/eval.json.

The metrics are those of `ganjax.evaluation` for the run's dataset (toy mode coverage, 1-D JSD,
digit-classifier FD / KID / IS beside their real-vs-real values, Inception FID / KID / precision /
recall / density / coverage / IS for folder: and tfds: images, or any image run given
--inception_weights). Only G is loaded.
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
    p.add_argument("--inception_weights", metavar="FILE",
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth for the Inception metrics (default: the "
                        "run's, else $GANJAX_INCEPTION_WEIGHTS, else the torch hub cache); adds them to digits runs.")
    p.add_argument("--eval_samples", type=int, help="Samples the Inception metrics score (default: the run's).")
    args = p.parse_args(argv)
    if args.kid_subsets < 1 or (args.eval_samples is not None and args.eval_samples < 1):
        raise UserError("--kid_subsets and --eval_samples must be positive")
    return args


def _run(argv: list[str] | None) -> int | None:
    args = parse_args(argv)
    import dataclasses

    from ganjax.evaluation import evaluate, has_metrics, inception_problem
    from ganjax.generation import load_generator

    gen = load_generator(args.workdir, args.step)
    overrides = {k: getattr(args, k) for k in ("inception_weights", "eval_samples") if getattr(args, k) is not None}
    config = dataclasses.replace(gen.config, **overrides)
    problem = inception_problem(config)
    if problem:
        raise UserError(problem)
    if not has_metrics(config):
        raise UserError(f"no sample-quality metric for --dataset={config.dataset} at "
                        f"{config.resolution}px / {config.channels} channel(s): metrics exist for toy data, "
                        f"32x32 digits, and images with the Inception weights (--inception_weights)")
    metrics = evaluate(gen.generate, config, args.seed, args.kid_subsets, gen.num_classes)
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
