"""How batches reach the compiled chunk: the whole dataset on the device, or streamed chunks.

The training chunk (`ganjax.steps.train_chunk`) gathers batch `start + i` of an epoch as
`data[perm[(start + i) * B : (start + i + 1) * B]]`. Both feeds hand it `(data, perm, start)`:

- `OnDevice`: the uint8 dataset lives on the device once; per chunk only `start` changes.
- `Streamed`: for data larger than device memory (or `--data_on_device=false`; the default of
  multi-process runs). The host gathers the K batches of the next chunk from its (memory-mapped)
  array in epoch order and sends each device only its slices of them; the chunk reads them
  through a fixed index (`block_order`) from position 0. Each process reads only the rows that
  its own devices train on: the data are sharded over processes and devices. The next chunk is
  gathered and transferred in a background thread while the current one trains (prefetch).
The batches, and so the trained parameters, are the same in both (tested). `arrays` is the
dataset's array, or `Labeled(images, labels)` for a conditional run (ganjax.data): every array of
it is gathered and sent the same way, so each label stays with its image.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.data import epoch_permutation
from ganjax.parallel import Placement

DEVICE_SHARE = 0.5  # stream when the dataset needs more than this share of a device's memory


def fits_on_device(nbytes: int, device=None) -> bool:
    """Whether an array of nbytes fits comfortably on the device; True where the backend does
    not report its memory (CPU: the data are in host memory anyway)."""
    stats = (device or jax.local_devices()[0]).memory_stats() or {}
    limit = stats.get("bytes_limit")
    return limit is None or nbytes <= DEVICE_SHARE * limit


class OnDevice:
    """The whole dataset on the device(s); per epoch one permutation computed there."""

    def __init__(self, arrays, data_key, placement: Placement):
        self.data, self.key, self.n = placement.replicate(arrays), data_key, examples(arrays)
        self._perm = jax.jit(epoch_permutation, static_argnums=2)
        self._epoch, self._epoch_perm = None, None

    def chunk(self, epoch: int, position: int, n: int):
        """(data, perm, start) for batches position .. position+n-1 of epoch."""
        if epoch != self._epoch:
            self._epoch, self._epoch_perm = epoch, self._perm(self.key, epoch, self.n)
        return self.data, self._epoch_perm, jnp.int32(position)

    def close(self) -> None:
        pass


def examples(arrays) -> int:
    """Rows of the dataset's array (or of each array of a Labeled dataset)."""
    return len(jax.tree.leaves(arrays)[0])


def block_order(chunk_size: int, count: int, per_device: int) -> np.ndarray:
    """The index through which the chunk reads a streamed block: the chunk takes slice g (of
    `per_device` rows) of global batch i at positions i*B + g*b .. of the index (ganjax.steps.
    gather_batch), and device g holds its slices of the K batches back to back, so the index maps
    i*B + g*b + j to i*b + j, the same on every device."""
    local = np.arange(chunk_size)[:, None, None] * per_device + np.arange(per_device)[None, None, :]
    return np.broadcast_to(local, (chunk_size, count, per_device)).reshape(-1).astype(np.int32)


class Streamed:
    """Chunks of chunk_size batches gathered on the host, each device's slices only, sent ahead of use."""

    def __init__(self, arrays, data_key, batch_size: int, chunk_size: int, placement: Placement):
        self.arrays, self.key, self.batch, self.k, self.placement = arrays, data_key, batch_size, chunk_size, placement
        self.n = examples(arrays)
        self.steps_per_epoch = self.n // batch_size
        self.per_device = placement.per_device(batch_size)
        self.order = jnp.asarray(block_order(chunk_size, placement.total_devices, self.per_device))
        self._perm = jax.jit(epoch_permutation, static_argnums=2)
        self._perms: dict[int, np.ndarray] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ganjax-prefetch")
        self._next = None  # ((epoch, position), future of the device array)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:  # the same permutation as OnDevice's, computed once per epoch
            self._perms = {epoch: np.asarray(self._perm(self.key, epoch, self.n))}
        return self._perms[epoch]

    def rows(self, epoch: int, position: int) -> np.ndarray:
        """(local devices, K, b) indices into the array of this process's slices of batches
        position .. position+K-1 of epoch; -1 past the end of the epoch's order."""
        order, b = self._epoch_order(epoch), self.per_device
        starts = (position + np.arange(self.k))[None, :] * self.batch + self.placement.local_slots[:, None] * b
        at = starts[..., None] + np.arange(b)
        return np.where(at < len(order), order[np.minimum(at, len(order) - 1)], -1)

    def host_block(self, epoch: int, position: int):
        """(local devices, K*b, ...) of each array: each local device's slices of batches position
        .. position+K-1 of epoch, back to back (zeros past the epoch); reads only those rows."""
        rows = self.rows(epoch, position)
        valid = rows >= 0
        unique, inverse = np.unique(rows[valid], return_inverse=True)  # sorted reads: mmap-friendly

        def gather(array):
            block = np.zeros(rows.shape + array.shape[1:], array.dtype)
            block[valid] = array[unique][inverse]
            return block.reshape((len(rows), -1) + array.shape[1:])

        return jax.tree.map(gather, self.arrays)

    def _gather(self, epoch: int, position: int):
        return jax.tree.map(self.placement.shard, self.host_block(epoch, position))

    def chunk(self, epoch: int, position: int, n: int):
        if self._next is not None and self._next[0] == (epoch, position):
            data = self._next[1].result()
        else:
            data = self._gather(epoch, position)
        following = (epoch, position + n) if position + n < self.steps_per_epoch else (epoch + 1, 0)
        self._next = (following, self._pool.submit(self._gather, *following))
        return data, self.order, jnp.int32(0)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
