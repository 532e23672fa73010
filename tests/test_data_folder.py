"""--dataset=folder:PATH: decoding of every image kind, the cache, and each kind of bad input."""

import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ganjax.config import Config, resolve
from ganjax.data import cache, folder, load_dataset
from ganjax.data.folder import MAX_BAD_FRACTION, decode_file, list_images, load_folder
from ganjax.errors import UserError


def solid(path, color, size=(8, 8), mode="RGB", **save):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new(mode, size, color).save(path, **save)
    return str(path)


def images(root, n, size=(8, 8)):
    """n small JPEGs of distinct gray levels: 0.jpg ... (n-1).jpg."""
    return [solid(root / f"{i:03d}.jpg", (10 * i,) * 3, size, quality=95) for i in range(n)]


def pixels(path, resolution=4, channels=3):
    array, note = decode_file(str(path), resolution, channels)
    assert array is not None, note
    return array


# --- decoding ------------------------------------------------------------------------------------


def test_every_extension_recursively_in_order(tmp_path):
    solid(tmp_path / "a.jpg", "red")
    solid(tmp_path / "b.PNG", "red")
    solid(tmp_path / "sub" / "c.webp", "red", lossless=True)
    solid(tmp_path / "sub" / "deeper" / "d.bmp", "red")
    solid(tmp_path / "sub" / "e.gif", "red")
    solid(tmp_path / "sub" / "f.jpeg", "red")
    (tmp_path / "notes.txt").write_text("not an image")
    solid(tmp_path / "._a.jpg", "blue")  # macOS metadata twin: hidden, left out
    listing = list_images(str(tmp_path))
    assert listing.files == ["a.jpg", "b.PNG", os.path.join("sub", "c.webp"), os.path.join("sub", "e.gif"),
                             os.path.join("sub", "f.jpeg"), os.path.join("sub", "deeper", "d.bmp")]
    array = load_folder(str(tmp_path), 8, 3)
    assert array.shape == (6, 8, 8, 3) and array.dtype == np.uint8
    assert np.abs(array.astype(int) - [255, 0, 0]).max() <= 3


def test_alpha_and_palette_transparency_become_white(tmp_path):
    assert (pixels(solid(tmp_path / "rgba.png", (255, 0, 0, 0), mode="RGBA")) == 255).all()
    assert (pixels(solid(tmp_path / "la.png", (0, 0), mode="LA")) == 255).all()
    half = pixels(solid(tmp_path / "half.png", (0, 0, 0, 128), mode="RGBA"))
    assert np.abs(half.astype(int) - 127).max() <= 1
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)
    palette.save(tmp_path / "p.gif", transparency=1)
    assert (pixels(tmp_path / "p.gif") == 255).all()
    palette.save(tmp_path / "opaque.png")  # no transparency: the palette color
    assert (pixels(tmp_path / "opaque.png") == [255, 0, 0]).all()


def test_cmyk_16bit_bilevel_and_grayscale(tmp_path):
    cmyk = pixels(solid(tmp_path / "cmyk.jpg", (0, 255, 255, 0), mode="CMYK", quality=95))
    assert np.abs(cmyk.astype(int) - [255, 0, 0]).max() <= 3
    sixteen = Image.fromarray(np.full((8, 8), 257 * 200, np.uint16))
    sixteen.save(tmp_path / "i16.png")
    assert Image.open(tmp_path / "i16.png").mode.startswith("I")
    assert (pixels(tmp_path / "i16.png", channels=1) == 200).all()  # scaled, not clipped to 255
    assert (pixels(solid(tmp_path / "one.bmp", 1, mode="1")) == 255).all()
    gray = pixels(solid(tmp_path / "red.png", (255, 0, 0)), channels=1)
    assert gray.shape == (4, 4, 1) and (gray == 76).all()  # ITU-R 601 luma of red
    assert (pixels(solid(tmp_path / "g.png", 90, mode="L")) == 90).all()  # L to RGB repeats


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in ("blue", "lime")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert (pixels(tmp_path / "anim.gif") == [0, 0, 255]).all()


def test_center_crop_then_resize(tmp_path):
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:, :4] = [255, 0, 0]  # cropped away
    wide[:, 4:12] = [0, 255, 0]
    wide[:, 12:] = [0, 0, 255]  # cropped away
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert (pixels(tmp_path / "wide.png", resolution=4) == [0, 255, 0]).all()
    big = pixels(solid(tmp_path / "big.jpg", (40, 80, 120), size=(300, 200), quality=95), resolution=8)
    assert big.shape == (8, 8, 3) and np.abs(big.astype(int) - [40, 80, 120]).max() <= 3


# --- the cache -----------------------------------------------------------------------------------


def no_decoding(monkeypatch):
    def fail(*args):
        raise AssertionError("decoded although the cache is valid")
    monkeypatch.setattr(folder, "decode_file", fail)


def test_second_load_memory_maps_the_cache(tmp_path, monkeypatch):
    images(tmp_path / "data", 5)
    first = load_folder(str(tmp_path / "data"), 8, 3)
    assert sorted(os.listdir(tmp_path / "data" / ".ganjax-cache")) == ["8px-rgb.json", "8px-rgb.npy"]
    no_decoding(monkeypatch)
    second = load_folder(str(tmp_path / "data"), 8, 3)
    assert isinstance(second, np.memmap) and np.array_equal(first, second)
    assert [int(im.mean()) for im in second] == pytest.approx([0, 10, 20, 30, 40], abs=2)


@pytest.mark.parametrize("change", ["edit", "add", "remove", "version", "truncated npy", "no manifest"])
def test_cache_is_rebuilt_when_stale(tmp_path, change):
    data = tmp_path / "data"
    paths = images(data, 4)
    load_folder(str(data), 8, 3)
    stem = str(data / ".ganjax-cache" / "8px-rgb")
    expected = 4
    if change == "edit":
        solid(paths[0], (250, 250, 250), quality=50)
        os.utime(paths[0], ns=(1, 1))
    elif change == "add":
        solid(data / "new" / "x.png", "white")
        expected = 5
    elif change == "remove":
        os.remove(paths[0])
        expected = 3
    elif change == "version":  # written by an older ganjax
        manifest = json.load(open(stem + ".json"))
        manifest["key"]["version"] = cache.VERSION - 1
        json.dump(manifest, open(stem + ".json", "w"))
    elif change == "truncated npy":
        with open(stem + ".npy", "r+b") as f:
            f.truncate(200)
    elif change == "no manifest":
        os.remove(stem + ".json")
    array = load_folder(str(data), 8, 3)
    assert len(array) == expected
    if change == "edit":
        assert array[0].mean() > 200
    key = {k: v for k, v in json.load(open(stem + ".json"))["key"].items() if k != "version"}
    assert cache.read(stem, key) is not None  # the rebuilt cache is current


def test_other_resolution_or_channels_get_their_own_cache(tmp_path):
    images(tmp_path, 3)
    assert load_folder(str(tmp_path), 8, 3).shape == (3, 8, 8, 3)
    assert load_folder(str(tmp_path), 4, 3).shape == (3, 4, 4, 3)
    assert load_folder(str(tmp_path), 4, 1).shape == (3, 4, 4, 1)
    manifest = json.load(open(tmp_path / ".ganjax-cache" / "4px-gray.json"))
    assert manifest["key"]["resolution"] == 4 and manifest["key"]["channels"] == 1


def test_a_manifest_for_another_resolution_is_not_trusted(tmp_path):
    images(tmp_path, 3)
    load_folder(str(tmp_path), 8, 3)
    stem = str(tmp_path / ".ganjax-cache" / "8px-rgb")
    manifest = json.load(open(stem + ".json"))
    assert cache.read(stem, dict(manifest["key"], resolution=16)) is None


def test_interrupted_build_leaves_no_trusted_cache(tmp_path, monkeypatch):
    images(tmp_path, 6)
    original = folder.decode_file
    calls = []

    def killed_midway(*args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(folder, "decode_file", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        load_folder(str(tmp_path), 8, 3)
    assert os.listdir(tmp_path / ".ganjax-cache") == []  # temporary file removed, nothing committed
    monkeypatch.setattr(folder, "decode_file", original)
    assert len(load_folder(str(tmp_path), 8, 3)) == 6


def test_worker_processes_give_the_same_array(tmp_path):
    images(tmp_path / "a", 10, size=(12, 10))
    images(tmp_path / "b", 10, size=(12, 10))
    serial = load_folder(str(tmp_path / "a"), 8, 3, workers=1)
    parallel = load_folder(str(tmp_path / "b"), 8, 3, workers=2)
    assert np.array_equal(serial, parallel)


def test_cache_dir_flag_and_unwritable_data_folder(tmp_path, monkeypatch, capsys):
    images(tmp_path / "data", 2)
    load_folder(str(tmp_path / "data"), 8, 3, cache_dir=str(tmp_path / "elsewhere"))
    [entry] = os.listdir(tmp_path / "elsewhere")
    assert entry.startswith("data-") and not (tmp_path / "data" / ".ganjax-cache").exists()

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    writable = cache.writable
    monkeypatch.setattr(cache, "writable", lambda d: str(tmp_path / "data") not in d and writable(d))
    assert len(load_folder(str(tmp_path / "data"), 8, 3)) == 2
    assert "cannot write the cache into" in capsys.readouterr().err
    assert len(os.listdir(tmp_path / "xdg" / "ganjax")) == 1


# --- bad input -----------------------------------------------------------------------------------


def text_only(root):
    (root / "readme.txt").write_text("no pictures here")
    return root


@pytest.mark.parametrize("make,words", [
    (lambda root: root / "missing", "no such file or folder"),
    (lambda root: solid(root / "one.png", "red"), "is not a folder"),
    (lambda root: root, "holds no images"),
    (text_only, "holds no images"),
])
def test_no_images_is_a_one_line_user_error(tmp_path, make, words):
    with pytest.raises(UserError, match=words) as info:
        load_folder(str(make(tmp_path)), 8, 3)
    assert "\n" not in str(info.value)


def corrupt_files(root):
    """A garbage file, a truncated JPEG, an empty PNG, and a PNG whose header claims 400M pixels."""
    (root / "garbage.jpg").write_bytes(b"this is not a jpeg")
    full = open(solid(root / "tmp.jpg", "red", size=(64, 64), quality=95), "rb").read()
    os.remove(root / "tmp.jpg")
    (root / "truncated.jpg").write_bytes(full[:len(full) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "bomb.png").write_bytes(png_claiming(20_000, 20_000))
    return 4


def png_claiming(width, height):
    """A tiny PNG whose header claims width x height: what a decompression bomb looks like to PIL."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def test_each_bad_file_kind_is_reported_not_raised(tmp_path):
    corrupt_files(tmp_path)
    (tmp_path / "bomb2.png").write_bytes(png_claiming(10_000, 10_000))  # only over PIL's warning limit
    for name in ("garbage.jpg", "truncated.jpg", "empty.png", "bomb.png", "bomb2.png"):
        array, reason = decode_file(str(tmp_path / name), 8, 3)
        assert array is None and reason and "\n" not in reason, name
    assert "decompression bomb" in decode_file(str(tmp_path / "bomb.png"), 8, 3)[1]
    assert "decompression bomb" in decode_file(str(tmp_path / "bomb2.png"), 8, 3)[1]


def test_a_few_bad_files_are_skipped_with_one_warning(tmp_path, capsys):
    n_bad = corrupt_files(tmp_path)
    images(tmp_path, 40)
    array = load_folder(str(tmp_path), 8, 3)
    assert len(array) == 40
    err = capsys.readouterr().err
    [line] = [l for l in err.splitlines() if "warning" in l]
    assert f"skipped {n_bad} of {40 + n_bad} files" in line and "truncated.jpg" in line and "bomb.png" in line
    load_folder(str(tmp_path), 8, 3)  # the cache remembers the skipped files
    assert f"{n_bad} unreadable files skipped" in capsys.readouterr().out


def test_too_many_bad_files_stop_before_training(tmp_path):
    n_bad = corrupt_files(tmp_path)
    n_good = int(n_bad / MAX_BAD_FRACTION) - n_bad - 1  # just over the limit
    images(tmp_path, n_good)
    with pytest.raises(UserError, match=f"{n_bad} of {n_bad + n_good} image files are unreadable") as info:
        load_folder(str(tmp_path), 8, 3)
    assert "more than 10%" in str(info.value) and "\n" not in str(info.value)
    assert os.listdir(tmp_path / ".ganjax-cache") == []


def test_only_bad_files(tmp_path):
    corrupt_files(tmp_path)
    with pytest.raises(UserError, match="none of its 4 image files could be read"):
        load_folder(str(tmp_path), 8, 3)


def test_small_images_are_upscaled_and_counted(tmp_path, capsys):
    images(tmp_path, 3, size=(4, 6))
    images(tmp_path / "big", 2, size=(16, 16))
    assert load_folder(str(tmp_path), 8, 3).shape == (5, 8, 8, 3)
    err = capsys.readouterr().err
    assert "3 images under" in err and "smaller than 8x8 and were upscaled" in err and "000.jpg (4x6)" in err


def test_dangling_symlink_and_symlink_loops(tmp_path, capsys):
    images(tmp_path / "sub", 3)
    os.symlink(tmp_path, tmp_path / "sub" / "up")  # loop back to the root
    os.symlink(tmp_path / "sub", tmp_path / "again")  # the same folder twice
    os.symlink(tmp_path / "self", tmp_path / "self")  # a link to itself
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    images(tmp_path, 30)
    listing = list_images(str(tmp_path))
    assert len(listing.files) == 33 and [p for p, _ in listing.unreadable] == ["dangling.jpg"]
    assert len(load_folder(str(tmp_path), 8, 3)) == 33
    assert "dangling.jpg" in capsys.readouterr().err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files without permission")
def test_unreadable_file_and_folder(tmp_path, capsys):
    images(tmp_path, 30)
    solid(tmp_path / "locked.jpg", "red")
    images(tmp_path / "closed", 1)
    os.chmod(tmp_path / "locked.jpg", 0)
    os.chmod(tmp_path / "closed", 0)
    try:
        assert len(load_folder(str(tmp_path), 8, 3)) == 30
    finally:
        os.chmod(tmp_path / "closed", 0o755)
    err = capsys.readouterr().err
    assert "locked.jpg (Permission denied)" in err and "closed" in err


def test_through_config_and_load_dataset(tmp_path):
    images(tmp_path / "faces", 3)
    config = resolve(Config(dataset=f"folder:{tmp_path / 'faces'}/", resolution=8))
    assert config.channels == 3 and config.workdir.endswith("folder-faces")
    dataset = load_dataset(config)
    assert dataset.array.shape == (3, 8, 8, 3) and dataset.kind == "image"
    with pytest.raises(UserError, match="needs a path"):
        resolve(Config(dataset="folder:"))
    with pytest.raises(UserError, match="folder:PATH"):
        resolve(Config(dataset="faces/"))


def test_temporary_files_of_killed_runs_are_removed(tmp_path):
    images(tmp_path, 2)
    (tmp_path / ".ganjax-cache").mkdir()
    abandoned = tmp_path / ".ganjax-cache" / "8px-rgb.tmp-999999999-0123abcd"  # no such process
    abandoned.write_bytes(b"\0" * 100)
    load_folder(str(tmp_path), 8, 3)
    assert sorted(os.listdir(tmp_path / ".ganjax-cache")) == ["8px-rgb.json", "8px-rgb.npy"]
