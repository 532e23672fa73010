"""Command line: `python -m ganjax.train [--preset=NAME] [--name=value ...]`.

Flags are the fields of `ganjax.config.Config` (see --help). A user mistake prints one line
and exits with status 2; a diverged run exits with status 1.
"""

from __future__ import annotations

import sys

from ganjax.config import parse_config
from ganjax.errors import UserError


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_config(argv)
        from ganjax.trainer import TrainingDiverged, train  # after parsing: --help stays fast

        try:
            train(config)
        except TrainingDiverged as e:
            print(f"ganjax.train: {e}", file=sys.stderr)
            return 1
    except UserError as e:
        print(f"ganjax.train: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ganjax.train: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
