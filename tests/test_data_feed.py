"""Streaming chunks of batches from the host gives the same run as data on the device."""

import jax
import numpy as np

from ganjax.data.feed import OnDevice, Streamed, fits_on_device
from ganjax.steps import gather_batch
from ganjax.trainer import train
from tests.conftest import small_config


def test_streamed_chunks_hold_the_same_batches():
    data = np.arange(50 * 3, dtype=np.uint8).reshape(50, 3)  # 50 examples, batch 4: 12 steps per epoch
    key = jax.random.PRNGKey(3)
    on_device = OnDevice(data, key, 4, 5, jax.device_put)
    streamed = Streamed(data, key, 4, 5, jax.device_put)
    try:
        for epoch, position, n in [(0, 0, 5), (0, 5, 5), (0, 10, 2), (1, 0, 5), (1, 5, 3), (1, 8, 4), (2, 0, 1)]:
            a, b = on_device.chunk(epoch, position, n), streamed.chunk(epoch, position, n)
            for i in range(n):
                np.testing.assert_array_equal(gather_batch(a[0], a[1], a[2] + i, 4), gather_batch(b[0], b[1], b[2] + i, 4))
    finally:
        streamed.close()


def test_streamed_training_equals_training_on_the_device(tmp_path):
    a = train(small_config(steps=10, data_on_device=True, workdir=str(tmp_path / "a")), progress=False)
    b = train(small_config(steps=10, data_on_device=False, workdir=str(tmp_path / "b")), progress=False)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_fits_on_device():
    class Fake:
        def __init__(self, stats):
            self.stats = stats

        def memory_stats(self):
            return self.stats

    assert fits_on_device(10**12, Fake(None))  # CPU: no limit reported
    assert fits_on_device(4 * 2**30, Fake({"bytes_limit": 16 * 2**30}))
    assert not fits_on_device(12 * 2**30, Fake({"bytes_limit": 16 * 2**30}))
