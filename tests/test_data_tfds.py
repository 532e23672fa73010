"""--dataset=tfds:NAME[:SPLIT] through tfds' data sources (no TensorFlow), on tfds' mock data; and
the fast, explanatory failure when a dataset is not prepared. No test touches the network."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ganjax.config import Config, resolve
from ganjax.data import tfds_source
from ganjax.data.tfds_source import load_tfds, parse
from ganjax.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse():
    assert parse("tfds:mnist") == ("mnist", "train")
    assert parse("tfds:cifar10:test") == ("cifar10", "test")
    assert parse("tfds:mnist:train[:10%]") == ("mnist", "train[:10%]")
    with pytest.raises(UserError, match="names no TFDS dataset"):
        parse("tfds:")


def test_mnist_is_padded_to_32(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        images = load_tfds("tfds:mnist", 32, 1, cache_dir=str(tmp_path))
    assert images.shape == (6, 32, 32, 1) and images.dtype == np.uint8
    assert images[:, :2].max() == 0 and images[:, :, -2:].max() == 0  # the 2-pixel border
    assert images[:, 2:30, 2:30].max() > 0


@pytest.mark.parametrize("dataset,resolution,channels", [
    ("tfds:mnist:test", 64, 3),  # padded, resized, gray repeated
    ("tfds:cifar10", 16, 1),  # resized, to gray
    ("tfds:celeb_a:validation", 32, 3),  # 218x178: center crop and resize
])
def test_resized_to_resolution_and_channels(tmp_path, dataset, resolution, channels):
    with tfds.testing.mock_data(num_examples=3):
        images = load_tfds(dataset, resolution, channels, cache_dir=str(tmp_path))
    assert images.shape == (3, resolution, resolution, channels)


def test_cached_after_the_first_load(tmp_path, monkeypatch):
    with tfds.testing.mock_data(num_examples=4):
        first = load_tfds("tfds:cifar10", 8, 3, cache_dir=str(tmp_path))
        monkeypatch.setattr(tfds_source, "to_square", lambda *a: pytest.fail("decoded again"))
        second = load_tfds("tfds:cifar10", 8, 3, cache_dir=str(tmp_path))
    assert isinstance(second, np.memmap) and np.array_equal(first, second)
    assert sorted(os.listdir(tmp_path)) == ["tfds-cifar10-train-8px-rgb.json", "tfds-cifar10-train-8px-rgb.npy"]


def test_channels_default_to_the_datasets():
    assert resolve(Config(dataset="tfds:mnist")).channels == 1
    assert resolve(Config(dataset="tfds:fashion_mnist:test")).channels == 1
    assert resolve(Config(dataset="tfds:cifar10")).channels == 3
    assert resolve(Config(dataset="tfds:cifar10", channels=1)).channels == 1
    assert resolve(Config(dataset="tfds:cifar10:test")).workdir == "runs/gan-tfds-cifar10-test"
    with pytest.raises(UserError, match="no dataset named 'no_such_set'"):
        resolve(Config(dataset="tfds:no_such_set"))


def test_not_prepared_fails_fast_with_where_and_how(tmp_path):
    tic = time.time()
    with pytest.raises(UserError) as info:
        load_tfds("tfds:mnist", 32, 1, cache_dir=str(tmp_path / "cache"), data_dir=str(tmp_path / "tfds"))
    assert time.time() - tic < 20
    message = str(info.value)
    assert "not prepared" in message and str(tmp_path / "tfds") in message and "\n" not in message
    assert "tfds build mnist" in message and "copy" in message
    assert not (tmp_path / "cache").exists() or not os.listdir(tmp_path / "cache")


def test_cli_not_prepared_exits_2_in_seconds(tmp_path):
    env = dict(os.environ, TFDS_DATA_DIR=str(tmp_path / "tfds"),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    tic = time.time()
    result = subprocess.run([sys.executable, "-m", "ganjax.train", "--dataset=tfds:fashion_mnist",
                             f"--workdir={tmp_path / 'run'}", "--steps=1"],
                            capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert time.time() - tic < 20
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "fashion_mnist is not prepared" in line and str(tmp_path / "tfds") in line
