import os
import tempfile
import time

# One persistent compilation cache for the whole session, subprocesses included (they inherit the
# environment): many tests compile the same tiny programs. Set before jax is imported.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="ganjax-tests-xla-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest

from ganjax.config import Config, resolve


def small_config(**overrides) -> Config:
    """A DCGAN small enough for unit tests: 8x8 digits, width 8, batch 8."""
    base = dict(dataset="digits", resolution=8, features=8, z_dim=8, batch_size=8, chunk_size=4, seed=0)
    base.update(overrides)
    return resolve(Config(**base))


@pytest.fixture
def tiny():
    return small_config


def wait_for_training(workdir, process, timeout=120):
    log = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + timeout
    while not (os.path.exists(log) and os.path.getsize(log) > 0):
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "training did not start"
        time.sleep(0.1)
