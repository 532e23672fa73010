"""The exception types for what is not a bug, and the one handler of every command line.

`run_command` runs an entry point and turns what is not a bug into one line on stderr:

- `UserError`: a mistake the user can fix (a flag, a path, a file): exit status 2;
- `EnvironmentFault`: the machine made the run fail (a full disk, an I/O error); the message
  says what is safe on disk: exit status 1;
- an `OSError` the user's environment causes (a missing or unwritable path: 2; no space, an I/O
  error: 1), named by its file;
- Ctrl-C: 130.

Anything else (a bug) keeps its traceback. With `--debug` or `GANJAX_DEBUG=1` the handled ones
print their traceback too, and the library noise of `ganjax.quiet` is let through. `warn` is the
mild sibling: a counted problem that the run works around.
"""

import errno
import os
import sys
import traceback

# A path the user named is wrong: exit 2. The machine ran out of something or failed: exit 1.
USER_ERRNOS = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.EROFS,
               errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTEMPTY}
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EMFILE, errno.ENFILE, errno.EFBIG}

_debug = False


class UserError(Exception):
    """A mistake the user can fix (a flag, a path, a file); the message says what to do."""


class EnvironmentFault(Exception):
    """The machine made the run fail (no space, an I/O error), not the user's input; the message
    says what is safe on disk and how to go on."""


def set_debug(on: bool = True) -> None:
    """Handled errors print their traceback too (the `--debug` flag)."""
    global _debug
    _debug = on


def debug() -> bool:
    return _debug or os.environ.get("GANJAX_DEBUG", "") not in ("", "0")


def describe_os_error(e: OSError) -> str:
    """'<file>: <strerror>' in plain words, as `open` and `os.makedirs` name them."""
    reason = (e.strerror or os.strerror(e.errno)) if e.errno else str(e)
    return f"{e.filename}: {reason}" if e.filename else reason


def warn(message: str) -> None:
    """A problem the run works around (skipped files, a fallback): one line on stderr, printed
    through tqdm so that it does not break a progress bar."""
    from tqdm import tqdm

    tqdm.write(f"ganjax: warning: {message}", file=sys.stderr)


def run_command(prog: str, body) -> int:
    """Runs a command-line entry point: `body()` returns the exit status (None for 0); what is not
    a bug prints one line and gives its status (see the module docstring), anything else keeps
    its traceback."""
    def fail(message: str, status: int) -> int:
        if debug():
            traceback.print_exc()
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return status

    try:
        return body() or 0
    except UserError as e:
        return fail(str(e), 2)
    except EnvironmentFault as e:
        return fail(str(e), 1)
    except OSError as e:
        if e.errno in ENVIRONMENT_ERRNOS:
            return fail(describe_os_error(e), 1)
        if e.errno in USER_ERRNOS:
            return fail(describe_os_error(e), 2)
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
