"""JAX's persistent compilation cache: a rerun of the same run (a resume, the same command again,
another test with the same shapes) loads its compiled programs from disk instead of compiling
them again: on 2 CPU cores the default run's training chunk takes 5.6-6.1 s to trace and compile
and 1.5-1.7 s to load, its init program 4.4-5.8 s to compile.

The cache key is XLA's own (the program, the compile options, the jax and jaxlib versions and
the devices), so a stale entry is never used; jax evicts the least recently used entries
beyond `MAX_BYTES`.
"""

from __future__ import annotations

import os

import jax

from ganjax.data.cache import user_cache_dir, writable

MAX_BYTES = 2 << 30
# jax caches only programs that took at least 1 s to compile by default; a run's smaller ones
# (the sample grid's, the code grid's and the evaluation's programs: 0.2-0.5 s each on 2 CPU
# cores, about 1.5 s of the default run) are worth a disk read too.
# $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS wins.
MIN_COMPILE_SECONDS = 0.1


def default_dir() -> str:
    """~/.cache/ganjax/xla (or $XDG_CACHE_HOME/ganjax/xla)."""
    return os.path.join(user_cache_dir(), "xla")


def enable(folder: str | None) -> str | None:
    """Turns the cache on in `folder` ("none": off; None: $JAX_COMPILATION_CACHE_DIR if set,
    else `default_dir()`) and returns the folder in use, or None. An unwritable folder turns it
    off: a cache is an optimization, never a reason to stop. Takes effect only before the
    process's first compilation, so the entry points call it first."""
    if folder == "none":
        return None
    folder = os.path.abspath(os.path.expanduser(folder or jax.config.jax_compilation_cache_dir or default_dir()))
    if not writable(folder):
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if jax.config.jax_compilation_cache_max_size < 0:  # the cap applies to an inherited folder too
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return folder
