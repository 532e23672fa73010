"""Safe stops: the first Ctrl-C or SIGTERM asks the training loop to save and stop at the next
chunk boundary (seconds away); a second Ctrl-C ends the process at once, without saving."""

from __future__ import annotations

import signal
import sys
import threading


class TrainingStopped(Exception):
    """Raised by the trainer after it saved a checkpoint on request; `exit_code` is 128 + signal."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopRequest:
    """Context manager that records the first SIGINT / SIGTERM in `signum` instead of dying.

    Only the main thread can install handlers; elsewhere (a test runner thread) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        self.signum = signum
        # A second Ctrl-C gets the default action: the process ends at once, even inside a compiled
        # chunk (a Python handler would only run after it). An unfinished save is cleaned up later.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        name = signal.Signals(signum).name
        print(f"\nganjax: got {name}; saving a checkpoint at the end of this chunk, then stopping "
              f"(Ctrl-C again to stop at once, without saving)", file=sys.stderr, flush=True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False
