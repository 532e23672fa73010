"""Streaming chunks of batches from the host gives the same run as data on the device."""

import jax
import numpy as np

from ganjax.data.feed import OnDevice, Streamed, fits_on_device
from ganjax.parallel import Placement, place
from ganjax.steps import gather_batch
from ganjax.training import train
from tests.conftest import small_config


def test_streamed_chunks_hold_the_same_batches():
    data = np.arange(50 * 3, dtype=np.uint8).reshape(50, 3)  # 50 examples, batch 4: 12 steps per epoch
    key = jax.random.PRNGKey(3)
    one_device = place(1, 4)
    on_device = OnDevice(data, key, one_device)
    streamed = Streamed(data, key, 4, 5, one_device)
    try:
        for epoch, position, n in [(0, 0, 5), (0, 5, 5), (0, 10, 2), (1, 0, 5), (1, 5, 3), (1, 8, 4), (2, 0, 1)]:
            a, b = on_device.chunk(epoch, position, n), streamed.chunk(epoch, position, n)
            for i in range(n):
                np.testing.assert_array_equal(gather_batch(a[0], a[1], a[2] + i, 4), gather_batch(b[0], b[1], b[2] + i, 4))
    finally:
        streamed.close()


class RecordingArray(np.ndarray):
    """An array that records the rows read from it (by fancy indexing, as Streamed reads)."""

    def __getitem__(self, index):
        if isinstance(index, np.ndarray):
            self.read.extend(index.tolist())
        return np.asarray(self)[index]


def test_each_process_reads_only_its_devices_rows():
    """Process 1 of 2, with 2 devices each, batch 8: its devices are slots 2 and 3 of the pmap
    axis and train on rows 4..7 of every global batch; it reads those and no other."""
    data = np.arange(40 * 2, dtype=np.uint8).reshape(40, 2).view(RecordingArray)
    data.read = []
    key = jax.random.PRNGKey(0)
    devices = (jax.devices()[0],) * 2  # two stand-ins: only the host side is looked at
    streamed = Streamed(data, key, 8, 3, Placement(devices, total_devices=4, process=1))
    try:
        rows = streamed.rows(epoch=1, position=2)  # batches 2, 3, 4 of 5 per epoch
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1), 40))
        for slot, device_rows in zip((2, 3), rows):
            for i, batch in enumerate((2, 3, 4)):
                np.testing.assert_array_equal(device_rows[i], order[batch * 8 + slot * 2: batch * 8 + slot * 2 + 2])
        block = streamed.host_block(epoch=1, position=2)
        assert sorted(data.read) == sorted(rows.reshape(-1).tolist())  # each needed row once, nothing else
        np.testing.assert_array_equal(block, np.asarray(data)[rows.reshape(2, -1)])
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
