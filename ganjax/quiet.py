"""Keeps off stderr the library noise about failures that ganjax reports itself in one line.

- orbax logs each failed step of an asynchronous save at level ERROR with its traceback (through
  absl's logger, from its background threads), then raises the same error again from
  `wait_until_finished` / `close`, where `ganjax.checkpoints` turns it into one line;
- tensorstore completes the reads and writes that were still in flight when orbax's restore or
  save gave up and closed its asyncio loop; each completion calls `loop.call_soon_threadsafe` on
  the closed loop and reports the `RuntimeError('Event loop is closed')` through
  `sys.unraisablehook`.

`install` filters exactly these two, once per process; with `--debug` or `GANJAX_DEBUG=1`
(`ganjax.errors.debug`) everything is let through.
"""

from __future__ import annotations

import logging
import os
import sys

from ganjax.errors import debug

_installed = False


def _from_orbax(record: logging.LogRecord) -> bool:
    return f"{os.sep}orbax{os.sep}" in (record.pathname or "")


class _OrbaxErrors(logging.Filter):
    """Drops orbax's ERROR records; the error itself reaches ganjax as an exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        return debug() or record.levelno < logging.ERROR or not _from_orbax(record)


def _closed_loop(unraisable) -> bool:
    return isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"


def install() -> None:
    """Installs both filters (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    logging.getLogger("absl").addFilter(_OrbaxErrors())
    previous = sys.unraisablehook

    def hook(unraisable):
        if debug() or not _closed_loop(unraisable):
            previous(unraisable)

    sys.unraisablehook = hook
