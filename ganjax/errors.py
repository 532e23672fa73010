"""The one exception type for user mistakes.

Command-line entry points catch it (`run_command`), print its message on one line and exit with status 2;
everything else (a bug) keeps its traceback. `warn` is its mild sibling: a counted problem
that the run works around.
"""

import sys


class UserError(Exception):
    """A mistake the user can fix (a flag, a path, a file); the message says what to do."""


def warn(message: str) -> None:
    """A problem the run works around (skipped files, a fallback): one line on stderr, printed
    through tqdm so that it does not break a progress bar."""
    from tqdm import tqdm

    tqdm.write(f"ganjax: warning: {message}", file=sys.stderr)


def run_command(prog: str, body) -> int:
    """Runs a command-line entry point: `body()` returns the exit status (None for 0); a
    UserError prints one line and gives 2, Ctrl-C gives 130, anything else keeps its traceback."""
    try:
        return body() or 0
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
