"""`--dataset=folder:PATH`: every image under PATH, decoded once into a memory-mapped uint8 cache.

The first run decodes in parallel worker processes (to L or RGB, center crop, Lanczos resize;
see images.py) and writes the cache (cache.py); later runs only list the folder, compare its
fingerprint (paths, sizes, mtimes) and memory-map the array. Bad files never stop a run
mid-training: they are skipped and counted here, and the run stops before training only when
more than MAX_BAD_FRACTION of the files are bad.

Classes follow torchvision's ImageFolder convention: when every image lies in a subfolder of PATH,
each subfolder directly under PATH is a class (images deeper down belong to it), classes in sorted
name order; the class of every cached row is saved in the cache's manifest. A folder with images
directly under PATH has no classes.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import multiprocessing
import os
import signal
import warnings
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from ganjax.data import cache
from ganjax.data.images import fit
from ganjax.errors import UserError, warn

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
MAX_BAD_FRACTION = 0.10  # more bad files than this share stops the run before training
CACHE_SUBDIR = ".ganjax-cache"  # cache next to the data: PATH/.ganjax-cache/
SHOW = 5  # file names quoted in a warning
PARALLEL_MIN_FILES = 256  # fewer files decode in this process: starting workers would cost more
CHUNK = 64  # files per task sent to a worker


class Listing(NamedTuple):
    root: str
    files: list[str]  # paths relative to root, sorted
    unreadable: list[tuple[str, str]]  # (relative path, reason) for files or folders that cannot be read
    fingerprint: str  # sha256 of (path, size, mtime) of every file


def list_images(root: str) -> Listing:
    """Image files under `root`, recursively, following symlinks (each real folder once, so a
    symlink loop ends). Hidden files and folders (macOS '._*' twins, our cache) are left out."""
    if not os.path.exists(root):
        raise UserError(f"--dataset=folder:{root}: no such file or folder")
    if not os.path.isdir(root):
        raise UserError(f"--dataset=folder:{root} is not a folder; give the folder that holds the images")
    files, unreadable, digest = [], [], hashlib.sha256()
    visited = {os.path.realpath(root)}

    def on_error(e: OSError):
        unreadable.append((os.path.relpath(e.filename, root) + os.sep, e.strerror or str(e)))

    for folder, subfolders, names in os.walk(root, onerror=on_error, followlinks=True):
        subfolders.sort()
        kept = []
        for name in subfolders:
            real = os.path.realpath(os.path.join(folder, name))
            if not name.startswith(".") and real not in visited:
                visited.add(real)
                kept.append(name)
        subfolders[:] = kept
        prefix = os.path.relpath(folder, root) + os.sep if folder != root else ""
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(EXTENSIONS):
                continue
            path = prefix + name
            try:
                st = os.stat(os.path.join(folder, name))
            except OSError as e:  # a dangling symlink
                unreadable.append((path, e.strerror or str(e)))
                continue
            files.append(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    for path, _ in unreadable:
        digest.update(f"{path}\0unreadable\n".encode())
    return Listing(root, files, unreadable, digest.hexdigest())


def folder_classes(files: list[str]) -> tuple[tuple[str, ...], np.ndarray] | None:
    """(class names in sorted order, int32 class of each file) by the ImageFolder convention: the
    first folder of each relative path; None when some image lies directly in the root."""
    if not files or any(os.sep not in path for path in files):
        return None
    tops = [path.split(os.sep, 1)[0] for path in files]
    names = tuple(sorted(set(tops)))
    index = {name: i for i, name in enumerate(names)}
    return names, np.array([index[top] for top in tops], np.int32)


def decode_file(path: str, resolution: int, channels: int) -> tuple[np.ndarray | None, str]:
    """(pixels, '') for a good image, (pixels, 'WxH') for one smaller than the resolution (upscaled),
    (None, reason) for a file that cannot be used; never raises for a bad file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size
                image.draft(None, (2 * resolution, 2 * resolution))  # JPEG: decode at 1/2..1/8 scale if still >= 2x
                pixels = fit(image, resolution, channels)  # reads the pixels: truncation shows here
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        return None, f"more than {Image.MAX_IMAGE_PIXELS} pixels: a decompression bomb?"
    except Image.UnidentifiedImageError:
        return None, "not an image"
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:  # PIL's errors for broken files
        return None, (getattr(e, "strerror", None) or str(e) or type(e).__name__).splitlines()[0]
    return pixels, f"{size[0]}x{size[1]}" if min(size) < resolution else ""


def _decode_chunk(paths: list[str], resolution: int, channels: int) -> list[tuple[np.ndarray | None, str]]:
    return [decode_file(p, resolution, channels) for p in paths]


def _decoded(listing: Listing, resolution: int, channels: int, workers: int):
    """decode_file over the listing, in order, in `workers` spawned processes (1: this one)."""
    paths = [os.path.join(listing.root, p) for p in listing.files]
    if workers <= 1:
        yield from (decode_file(p, resolution, channels) for p in paths)
        return
    # spawn, not fork: the parent runs JAX's threads, which a forked child must not inherit.
    # Workers ignore Ctrl-C: the parent stops them, and no worker prints a traceback.
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    try:
        chunks = [paths[i:i + CHUNK] for i in range(0, len(paths), CHUNK)]
        for results in pool.map(_decode_chunk, chunks, [resolution] * len(chunks), [channels] * len(chunks)):
            yield from results
    except concurrent.futures.process.BrokenProcessPool:
        raise UserError("an image-decoding worker process died (out of memory? or a script that loads a folder "
                        "without `if __name__ == '__main__':`, which spawned workers need)") from None
    finally:
        pool.shutdown(cancel_futures=True)  # on an error or Ctrl-C, drop the chunks not started


def default_workers(n_files: int) -> int:
    if n_files < PARALLEL_MIN_FILES:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _quote(items: list[tuple[str, str]]) -> str:
    shown = ", ".join(f"{p} ({why})" if why else p for p, why in items[:SHOW])
    return shown + (", ..." if len(items) > SHOW else "")


def cache_key(listing: Listing, resolution: int, channels: int) -> dict:
    return dict(resolution=resolution, channels=channels, fingerprint=listing.fingerprint)


def build(listing: Listing, resolution: int, channels: int, stem: str, workers: int | None = None) -> np.ndarray:
    """Decodes every listed file into the cache at `stem`; UserError if too many are bad. The
    manifest keeps the class of every row kept (`folder_classes`), when the folder has classes."""
    n = len(listing.files) + len(listing.unreadable)
    workers = default_workers(len(listing.files)) if workers is None else workers
    bad, small, kept = list(listing.unreadable), [], []
    with cache.Writer(stem, len(listing.files), (resolution, resolution, channels)) as out:
        results = _decoded(listing, resolution, channels, workers)
        bar = tqdm(zip(listing.files, results), total=len(listing.files), unit="img", mininterval=0.5,
                   desc=f"Decoding {listing.root} ({workers} process{'es' if workers > 1 else ''})")
        for i, (path, (pixels, note)) in enumerate(bar):
            if pixels is None:
                bad.append((path, note))
                continue
            out.append(pixels)
            kept.append(i)
            if note:
                small.append((path, note))
        if out.count == 0:
            raise UserError(f"--dataset=folder:{listing.root}: none of its {n} image files could be read: "
                            f"{_quote(bad)}")
        if len(bad) > MAX_BAD_FRACTION * n:
            raise UserError(f"--dataset=folder:{listing.root}: {len(bad)} of {n} image files are unreadable or "
                            f"corrupt ({len(bad) / n:.0%}, more than {MAX_BAD_FRACTION:.0%}): {_quote(bad)}; "
                            f"fix or remove them")
        info = dict(source=os.path.abspath(listing.root), bad=len(bad), bad_files=bad[:SHOW], upscaled=len(small))
        classes = folder_classes(listing.files)
        if classes is not None:
            info.update(classes=list(classes[0]), labels=classes[1][kept].tolist())
        array = out.commit(info, cache_key(listing, resolution, channels))
    if bad:
        warn(f"skipped {len(bad)} of {n} files under {listing.root} that could not be read as images: "
             f"{_quote(bad)}")
    if small:
        warn(f"{len(small)} images under {listing.root} are smaller than {resolution}x{resolution} and were "
             f"upscaled: {_quote(small)}")
    return array


def cache_stem(root: str, resolution: int, channels: int, cache_dir: str | None) -> str:
    """Where the cache of `root` lives: PATH/.ganjax-cache/, or under --cache_dir, or under the user
    cache folder when PATH cannot be written (said once)."""
    name = cache.tag(resolution, channels)
    if cache_dir is None:
        folder = os.path.join(root, CACHE_SUBDIR)
        if cache.writable(folder):
            return os.path.join(folder, name)
        cache_dir = cache.user_cache_dir()
        warn(f"cannot write the cache into {root}; using {cache_dir} (choose another place with --cache_dir)")
    real = os.path.realpath(root)
    tag = hashlib.sha256(real.encode()).hexdigest()[:10]
    folder = os.path.join(cache_dir, f"{os.path.basename(real) or 'root'}-{tag}")
    if not cache.writable(folder):
        raise UserError(f"cannot write the dataset cache to {folder}; choose a writable --cache_dir")
    return os.path.join(folder, name)


def load_folder(root: str, resolution: int, channels: int, cache_dir: str | None = None,
                workers: int | None = None) -> np.ndarray:
    """uint8 (N, resolution, resolution, channels), memory-mapped from the cache (built if needed)."""
    return load_labelled_folder(root, resolution, channels, cache_dir, workers)[0]


def load_labelled_folder(root: str, resolution: int, channels: int, cache_dir: str | None = None,
                         workers: int | None = None, name: str | None = None):
    """(images as `load_folder`, int32 labels (N,) or None, class names) of the folder, and
    `name` (default folder:ROOT): the fields of a ganjax.data.Dataset."""
    listing = list_images(root)
    if not listing.files and not listing.unreadable:
        raise UserError(f"--dataset=folder:{root} holds no images ({', '.join(EXTENSIONS)}, searched recursively)")
    stem = cache_stem(root, resolution, channels, cache_dir)
    hit = cache.read(stem, cache_key(listing, resolution, channels))
    has_classes = folder_classes(listing.files) is not None
    if hit is not None and has_classes and "labels" not in hit[1]:
        hit = None  # a cache written before classes were kept: rebuilt once, with them
    if hit is not None:
        array, manifest = hit
        note = f"; {manifest['bad']} unreadable files skipped" if manifest.get("bad") else ""
        tqdm.write(f"ganjax: {len(array)} images from the cache {stem}.npy{note}")
    else:
        array = build(listing, resolution, channels, stem, workers)
        manifest = cache.read(stem, cache_key(listing, resolution, channels))[1]
    labels = np.asarray(manifest["labels"], np.int32) if "labels" in manifest else None
    return array, name or f"folder:{root}", labels, tuple(manifest.get("classes", ()))
