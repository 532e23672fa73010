"""One run per workdir: an exclusive `flock(2)` on `<workdir>/ganjax.lock`, held for the whole run.

Two runs writing one workdir interleave `metrics.jsonl` and delete each other's checkpoints, so
the second one must stop before it reads or writes anything. The kernel releases a flock when
its process ends, however it ends (an exception, SIGTERM, `kill -9`): a lock file left behind by
a dead run is free again, so a stale lock is recognized by taking it, and nothing needs cleaning
up. The file names its holder (PID, host, start time) for the message a second run prints.
flock(2): "Since Linux 2.6.12, NFS clients support flock() locks by emulating them as fcntl(2)
byte-range locks on the entire file", so runs on two hosts of a shared workdir exclude each other
too. A file system without locks at all (ENOLCK, EOPNOTSUPP) gets a warning and no lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time

from ganjax.errors import UserError, warn

LOCK_NAME = "ganjax.lock"
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def holder(path: str) -> dict:
    """What the lock file says about the run holding it ({} if it says nothing yet)."""
    try:
        with open(path) as f:
            return json.loads(f.read() or "{}")
    except (OSError, ValueError):
        return {}


def describe_holder(info: dict) -> str:
    if not info.get("pid"):
        return "another run (it has not written its PID yet)"
    since = f", since {info['started']}" if info.get("started") else ""
    return f"another run (PID {info['pid']} on host {info.get('host', '?')}{since})"


class WorkdirLock:
    """The lock of one workdir: `acquire` (idempotent) raises UserError naming the holder if
    another run has it; `release` (also at exit, by the kernel) frees it."""

    def __init__(self, workdir: str):
        self.workdir = os.path.abspath(workdir)
        self.path = os.path.join(self.workdir, LOCK_NAME)
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self) -> None:
        if self.held:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise UserError(f"cannot write to workdir {self.workdir}: {e.strerror or e}; choose another with "
                            f"--workdir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise UserError(f"{self.workdir} is in use by {describe_holder(holder(self.path))}; wait for it "
                                f"to end, stop it, or choose another --workdir") from None
            if e.errno in _NO_LOCKS:
                warn(f"the file system of {self.workdir} has no file locks ({os.strerror(e.errno)}); nothing "
                     f"stops a second run from writing there at the same time")
                return
            raise
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n").encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)  # before unlocking: the next holder writes its own PID
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
