"""How batches reach the compiled chunk: the whole dataset on the device, or streamed chunks.

The training chunk (`ganjax.steps.train_chunk`) gathers batch `start + i` of an epoch as
`data[perm[(start + i) * B : (start + i + 1) * B]]`. Both feeds hand it `(data, perm, start)`:

- `OnDevice`: the uint8 dataset lives on the device once; per chunk only `start` changes.
- `Streamed`: for data larger than device memory (or `--data_on_device=false`). The host gathers
  the K batches of the next chunk from its (memory-mapped) array in epoch order and sends them;
  the chunk then reads them with the identity order from position 0. The next chunk is gathered
  and transferred in a background thread while the current one trains (prefetch).
The batches, and so the trained parameters, are the same in both (tested).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.data import epoch_permutation

DEVICE_SHARE = 0.5  # stream when the dataset needs more than this share of a device's memory


def fits_on_device(nbytes: int, device=None) -> bool:
    """Whether an array of nbytes fits comfortably on the device; True where the backend does
    not report its memory (CPU: the data are in host memory anyway)."""
    stats = (device or jax.local_devices()[0]).memory_stats() or {}
    limit = stats.get("bytes_limit")
    return limit is None or nbytes <= DEVICE_SHARE * limit


class OnDevice:
    """The whole dataset on the device(s); per epoch one permutation computed there."""

    def __init__(self, array: np.ndarray, data_key, batch_size: int, chunk_size: int, put):
        self.data, self.key, self.n = put(array), data_key, len(array)
        self._perm = jax.jit(epoch_permutation, static_argnums=2)
        self._epoch, self._epoch_perm = None, None

    def chunk(self, epoch: int, position: int, n: int):
        """(data, perm, start) for batches position .. position+n-1 of epoch."""
        if epoch != self._epoch:
            self._epoch, self._epoch_perm = epoch, self._perm(self.key, epoch, self.n)
        return self.data, self._epoch_perm, jnp.int32(position)

    def close(self) -> None:
        pass


class Streamed:
    """Chunks of chunk_size batches gathered on the host and sent ahead of use."""

    def __init__(self, array: np.ndarray, data_key, batch_size: int, chunk_size: int, put):
        self.array, self.key, self.batch, self.k, self.put = array, data_key, batch_size, chunk_size, put
        self.steps_per_epoch = len(array) // batch_size
        self.identity = put(np.arange(chunk_size * batch_size, dtype=np.int32))
        self._perm = jax.jit(epoch_permutation, static_argnums=2)
        self._perms: dict[int, np.ndarray] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ganjax-prefetch")
        self._next = None  # ((epoch, position), future of the device array)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:  # the same permutation as OnDevice's, computed once per epoch
            self._perms = {epoch: np.asarray(self._perm(self.key, epoch, len(self.array)))}
        return self._perms[epoch]

    def _gather(self, epoch: int, position: int):
        """The device array of batches position .. position+K-1 of epoch (zeros past the epoch)."""
        rows = self._epoch_order(epoch)[position * self.batch:(position + self.k) * self.batch]
        block = np.zeros((self.k * self.batch,) + self.array.shape[1:], self.array.dtype)
        block[:len(rows)] = self.array[np.sort(rows)][np.argsort(np.argsort(rows))]  # sorted reads: mmap-friendly
        return self.put(block)

    def chunk(self, epoch: int, position: int, n: int):
        if self._next is not None and self._next[0] == (epoch, position):
            data = self._next[1].result()
        else:
            data = self._gather(epoch, position)
        following = (epoch, position + n) if position + n < self.steps_per_epoch else (epoch + 1, 0)
        self._next = (following, self._pool.submit(self._gather, *following))
        return data, self.identity, jnp.int32(0)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
