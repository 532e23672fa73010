"""`--dataset=tfds:NAME[:SPLIT]`: the `image` feature of a prepared TFDS dataset, without TensorFlow.

Reads through tensorflow-datasets' random-access data source (array_record files), which never
downloads: a dataset that is not prepared fails within seconds with a message that says where
tfds looks and how to prepare it on a machine with network. Images of side 28 (MNIST-like) are
padded to 32 as in digits.py, then everything is center-cropped and resized like an image
folder (images.py). The decoded array is cached like a folder's (cache.py); a dataset with a
`label` feature (a tfds ClassLabel) keeps every row's label and the class names of tfds' metadata
in the cache's manifest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re

import numpy as np
from PIL import Image
from tqdm import tqdm

from ganjax.data import cache
from ganjax.data.images import fit, pad_28_to_32
from ganjax.errors import UserError

DEFAULT_SPLIT = "train"


def parse(dataset: str) -> tuple[str, str]:
    """'tfds:NAME[:SPLIT]' -> (NAME, SPLIT); SPLIT is anything tfds accepts ('test', 'train[:10%]')."""
    name, _, split = dataset.removeprefix("tfds:").partition(":")
    if not name:
        raise UserError(f"--dataset={dataset} names no TFDS dataset; write tfds:NAME[:SPLIT], as in tfds:mnist "
                        f"or tfds:cifar10:test")
    return name, split or DEFAULT_SPLIT


@contextlib.contextmanager
def _quiet_tfds():
    """Hides tfds' warnings about folders without metadata: a UserError says it in one line."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def builder(name: str, data_dir: str | None = None):
    """tfds' builder of `name`; reads only local metadata (no network)."""
    import tensorflow_datasets as tfds

    try:
        with _quiet_tfds():
            return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise UserError(f"--dataset=tfds:{name}: tensorflow-datasets has no dataset named {name!r} "
                        f"(see https://www.tensorflow.org/datasets/catalog)") from None


def image_channels(dataset: str) -> int:
    """Channels of the dataset's `image` feature (1 for MNIST-like, 3 otherwise); from tfds' code,
    known before the data are prepared."""
    features = builder(parse(dataset)[0]).info.features
    shape = features["image"].shape if "image" in features else None
    return 1 if shape and shape[-1] == 1 else 3


def _not_prepared(b, name: str) -> UserError:
    return UserError(
        f"--dataset=tfds:{name} is not prepared in {b.data_dir} (tfds reads {b.data_dir_root}; set TFDS_DATA_DIR to "
        f"read elsewhere). ganjax never downloads: on a machine with network run `tfds build {name} "
        f"--file_format=array_record` (or in python `tfds.data_source('{name}')`), then copy its "
        f"~/tensorflow_datasets/{name}/ folder to {b.data_dir_root}/")


def data_source(name: str, split: str, data_dir: str | None = None):
    """(builder, random-access source of `split`), or UserError when nothing usable is prepared."""
    b = builder(name, data_dir)
    if "image" not in b.info.features:
        raise UserError(f"--dataset=tfds:{name} has no 'image' feature (it has: {', '.join(b.info.features)})")
    try:
        # Only reads prepared files and fails at once when there are none (download_and_prepare,
        # which tfds.data_source calls, would instead retry the network for minutes). Asking
        # first and diagnosing after keeps tfds.testing.mock_data, which mocks this call, usable.
        return b, b.as_data_source(split=split)
    except (ValueError, KeyError, NotImplementedError, FileNotFoundError, AssertionError) as e:
        with _quiet_tfds():
            prepared = b.is_prepared()
        if not prepared:
            raise _not_prepared(b, name) from None
        if isinstance(e, NotImplementedError):
            raise UserError(f"--dataset=tfds:{name} is prepared in {b.data_dir} without random access "
                            f"(tfrecord); rebuild it with `tfds build {name} --file_format=array_record`") from None
        raise UserError(f"--dataset=tfds:{name}:{split}: {str(e).splitlines()[0]}") from None


def to_square(image: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """One tfds image (H, W, C) -> uint8 (resolution, resolution, channels); side 28 is padded to 32 first."""
    if image.shape[:2] == (28, 28):
        image = pad_28_to_32(image, axes=(0, 1))
    modes = {1: "L", 3: "RGB", 4: "RGBA"}
    if image.dtype != np.uint8 or image.shape[-1] not in modes:
        raise UserError(f"unsupported tfds image: dtype {image.dtype}, shape {image.shape}")
    return fit(Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image, modes[image.shape[-1]]),
               resolution, channels)


def load_tfds(dataset: str, resolution: int, channels: int, cache_dir: str | None = None,
              data_dir: str | None = None) -> np.ndarray:
    """uint8 (N, resolution, resolution, channels) of tfds:NAME[:SPLIT], from the cache when it has it."""
    return load_labelled_tfds(dataset, resolution, channels, cache_dir, data_dir)[0]


def class_names(b) -> tuple[str, ...] | None:
    """The names of the `label` feature's classes (tfds metadata), None without a ClassLabel `label`."""
    features = b.info.features  # a tfds FeaturesDict: no .get
    names = getattr(features["label"], "names", None) if "label" in features else None
    return tuple(str(n) for n in names) if names else None


def load_labelled_tfds(dataset: str, resolution: int, channels: int, cache_dir: str | None = None,
                       data_dir: str | None = None, name: str | None = None):
    """(images as `load_tfds`, int32 labels (N,) or None, class names) of tfds:NAME[:SPLIT], and
    `name` (default `dataset`): the fields of a ganjax.data.Dataset."""
    tfds_name, split = parse(dataset)
    b, source = data_source(tfds_name, split, data_dir)
    names = class_names(b)
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{tfds_name}-{split}")
    folder = cache_dir or cache.user_cache_dir()
    if not cache.writable(folder):
        raise UserError(f"cannot write the dataset cache to {folder}; choose a writable --cache_dir")
    stem = os.path.join(folder, f"tfds-{slug}-{cache.tag(resolution, channels)}")
    key = dict(resolution=resolution, channels=channels, dataset=f"{tfds_name}:{split}",
               fingerprint=f"{os.path.abspath(b.data_dir)} {b.version} {len(source)}")
    hit = cache.read(stem, key)
    if hit is not None and names is not None and "labels" not in hit[1]:
        hit = None  # a cache written before labels were kept: rebuilt once, with them
    if hit is not None:
        tqdm.write(f"ganjax: {len(hit[0])} images of tfds:{tfds_name}:{split} from the cache {stem}.npy")
        array, manifest = hit
    else:
        labels = []
        with cache.Writer(stem, len(source), (resolution, resolution, channels)) as out:
            for i in tqdm(range(len(source)), unit="img", desc=f"Decoding tfds:{tfds_name}:{split}", mininterval=0.5):
                example = source[i]
                out.append(to_square(np.asarray(example["image"]), resolution, channels))
                if names is not None:
                    labels.append(int(example["label"]))
            info = {"source": b.data_dir} | ({"classes": list(names), "labels": labels} if names is not None else {})
            array, manifest = out.commit(info, key), info
    labels = np.asarray(manifest["labels"], np.int32) if "labels" in manifest else None
    return array, name or dataset, labels, tuple(manifest.get("classes", ()))
