"""Keeps off stderr the library noise about failures that ganjax reports itself in one line.

- orbax logs each failed step of an asynchronous save at level ERROR with its traceback (through
  absl's logger, from its background threads), then raises the same error again from
  `wait_until_finished` / `close`, where `ganjax.checkpoints` turns it into one line;
- a failed tensorstore write whose future nobody awaited any more (orbax gave up on the save) is
  logged by asyncio's garbage-collection hook as "Future exception was never retrieved", with
  tensorstore's status text ("RESOURCE_EXHAUSTED: ... No space left on device");
- tensorstore completes the reads and writes that were still in flight when orbax's restore or
  save gave up and closed its asyncio loop; each completion calls `loop.call_soon_threadsafe` on
  the closed loop and reports the `RuntimeError('Event loop is closed')` through
  `sys.unraisablehook`.

- jax warns when it cannot read or write an entry of the persistent compilation cache
  (ganjax.compile_cache): another process sharing the folder evicted it, or the disk is full. The
  cache only saves compile time, and the run goes on either way.

`install` filters exactly these four, once per process; with `--debug` or `GANJAX_DEBUG=1`
(`ganjax.errors.debug`) everything is let through.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings

from ganjax.errors import debug

_installed = False


def _from_orbax(record: logging.LogRecord) -> bool:
    return f"{os.sep}orbax{os.sep}" in (record.pathname or "")


class _OrbaxErrors(logging.Filter):
    """Drops orbax's ERROR records; the error itself reaches ganjax as an exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        return debug() or record.levelno < logging.ERROR or not _from_orbax(record)


class _UnretrievedTensorstoreErrors(logging.Filter):
    """Drops asyncio's report of a tensorstore future that failed after orbax stopped waiting."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        unretrieved = record.getMessage().startswith("Future exception was never retrieved")
        return debug() or not (unretrieved and _TENSORSTORE_STATUS.match(str(error or "")))


# jax._src.compiler's warnings about one entry of the persistent compilation cache
_CACHE_WARNING = r"Error (reading|writing) persistent compilation cache entry"

# tensorstore raises ValueError("<absl status code>: ...") for a failed read or write
_TENSORSTORE_STATUS = re.compile(r"^[A-Z][A-Z_]+: ")


def _closed_loop(unraisable) -> bool:
    return isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"


def install() -> None:
    """Installs the four filters (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    logging.getLogger("absl").addFilter(_OrbaxErrors())
    logging.getLogger("asyncio").addFilter(_UnretrievedTensorstoreErrors())
    if not debug():
        warnings.filterwarnings("ignore", message=_CACHE_WARNING, category=UserWarning)
    previous = sys.unraisablehook

    def hook(unraisable):
        if debug() or not _closed_loop(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook
