"""Command line: `python -m ganjax.train [--preset=NAME] [--name=value ...] [--restart | --step=S]`.

Flags are the fields of `ganjax.config.Config` (see --help). Running the same command again
resumes from the workdir's latest checkpoint. A user mistake prints one line and exits with
status 2; a diverged run, or one the machine failed (a full disk), exits with 1 after one line;
a run stopped by Ctrl-C / SIGTERM saves, then exits with 130 / 143.
"""

from __future__ import annotations

import sys

from ganjax.config import build_parser, config_from_args
from ganjax.errors import UserError, run_command


def parse_args(argv: list[str] | None):
    """(config, restart, resume_step) from the command line."""
    parser = build_parser("python -m ganjax.train", "Train a GAN (gan, wgan, wgan-gp, hinge, lsgan) with JAX.")
    resume = parser.add_argument_group("resume")
    resume.add_argument("--restart", action="store_true",
                        help="Delete the workdir's checkpoints and start over, keeping the old log as "
                             "metrics.jsonl.old (default: resume from the latest checkpoint if there is one).")
    resume.add_argument("--step", type=int, default=None, metavar="STEP",
                        help="Resume from the checkpoint at this step instead of the latest (the later ones "
                             "are moved to <workdir>/checkpoints-set-aside).")
    args = parser.parse_args(argv)
    if args.restart and args.step is not None:
        raise UserError("--restart and --step contradict each other; use one")
    return config_from_args(args), args.restart, args.step


def _run(argv: list[str] | None) -> int | None:
    config, restart, step = parse_args(argv)
    from ganjax.stopping import TrainingStopped  # after parsing: --help stays fast
    from ganjax.training import TrainingDiverged, train

    try:
        train(config, restart=restart, resume_step=step)
    except TrainingDiverged as e:
        print(f"ganjax.train: {e}", file=sys.stderr)
        return 1
    except TrainingStopped as e:
        print(f"ganjax.train: {e}", file=sys.stderr)
        return e.exit_code


def main(argv: list[str] | None = None) -> int:
    return run_command("ganjax.train", lambda: _run(argv))


if __name__ == "__main__":
    sys.exit(main())
