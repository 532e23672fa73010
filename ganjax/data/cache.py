"""A decoded dataset on disk: `STEM.npy` (uint8, memory-mapped when read) and `STEM.json`.

The JSON manifest holds a key (cache version, resolution, channels, a fingerprint of the
source); a cache is used only when its key equals the one asked for and the array has the
recorded shape, so changed files, another resolution or an older format mean a rebuild.
Both files are written under temporary names and renamed into place, the manifest last,
so a run killed mid-write never leaves a cache that a later run trusts.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import tempfile

import numpy as np

# Bump when the decoded pixels change for the same source (new crop, filter, color handling).
VERSION = 1


def user_cache_dir() -> str:
    """$XDG_CACHE_HOME/ganjax, by default ~/.cache/ganjax."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "ganjax")


def writable(folder: str) -> bool:
    """Whether files can be created in `folder` (made if missing)."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def tag(resolution: int, channels: int) -> str:
    """The part of a cache's name that says what it holds: '64px-rgb', '32px-gray'."""
    return f"{resolution}px-{'rgb' if channels == 3 else 'gray'}"


def read(stem: str, key: dict) -> tuple[np.ndarray, dict] | None:
    """(memory-mapped array, manifest) when STEM holds a complete cache for `key`, else None."""
    try:
        with open(stem + ".json") as f:
            manifest = json.load(f)
        if manifest.get("key") != dict(key, version=VERSION):
            return None
        array = np.load(stem + ".npy", mmap_mode="r")
    except (OSError, ValueError):  # missing, unreadable, or not JSON / not .npy
        return None
    if list(array.shape) != manifest.get("shape") or array.dtype != np.uint8:
        return None
    return array, manifest


def _remove_abandoned(stem: str) -> None:
    """Deletes temporary files of STEM left by killed runs (their process is gone)."""
    prefix = stem + ".tmp-"  # then PID-RANDOM
    for path in glob.glob(glob.escape(prefix) + "*"):
        pid = path[len(prefix):].split("-")[0]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            os.remove(path)
        except (ValueError, OSError):  # not our name, or a process of another user
            pass


class Writer:
    """Fills a temporary .npy of up to `capacity` rows; `commit` renames it into place.

    Use as a context manager: leaving the block without a commit (an error, Ctrl-C) deletes
    the temporary file and leaves any previous cache as it was.
    """

    def __init__(self, stem: str, capacity: int, row_shape: tuple[int, ...]):
        self.stem, self.count = stem, 0
        os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
        _remove_abandoned(stem)
        self._tmp = f"{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}"  # unique: runs may race
        self._rows = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=np.uint8,
                                               shape=(max(capacity, 1),) + tuple(row_shape))

    def append(self, row: np.ndarray) -> None:
        self._rows[self.count] = row
        self.count += 1

    def commit(self, info: dict, key: dict) -> np.ndarray:
        """Writes the first `count` rows as STEM.npy and the manifest (key + info); returns
        the memory-mapped array."""
        if self.count < len(self._rows):  # skipped rows: keep only the filled ones
            shrunk = self._tmp + ".shrunk"
            np.save(shrunk, self._rows[:self.count], allow_pickle=False)
            os.replace(shrunk + ".npy", self._tmp)
        shape = (self.count,) + self._rows.shape[1:]
        self._rows.flush()
        del self._rows
        manifest = dict(info, key=dict(key, version=VERSION), shape=list(shape))
        tmp_json = self._tmp + ".json"
        with open(tmp_json, "w") as f:
            json.dump(manifest, f, indent=1)
        if os.path.exists(self.stem + ".json"):
            os.remove(self.stem + ".json")  # the old manifest must not vouch for the new array
        os.replace(self._tmp, self.stem + ".npy")
        os.replace(tmp_json, self.stem + ".json")
        return np.load(self.stem + ".npy", mmap_mode="r")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.__dict__.pop("_rows", None)
        for path in (self._tmp, self._tmp + ".json", self._tmp + ".shrunk.npy"):
            if os.path.exists(path):
                os.remove(path)
        return False
