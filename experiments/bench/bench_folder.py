"""Image-folder benchmark: decode-and-cache rate, and how fast a second run starts (cache hit).

Synthesizes N 64x64 JPEGs (default 71,314, the homework's anime-face count) in a temporary
folder, then times `load_folder` building the uint8 cache (first run: list, decode in worker
processes, write), an in-process cache hit, and a fresh `python` process that resolves a
config and loads the dataset from the cache (what a second training run pays before compiling).
The files were just written, so they are in the page cache: the rate is decode-bound, not
disk-bound. Prints the figures and appends one JSON line to experiments/results/bench_folder.json.

    python -m experiments.bench.bench_folder [--n=71314] [--resolution=64] [--workers=auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import PIL
from PIL import Image

from experiments import RESULTS
from ganjax.data.folder import default_workers, load_folder


def synthesize(folder: str, n: int, side: int = 64, seed: int = 0) -> float:
    """n face-sized JPEGs (smooth color blobs plus noise, quality 90, like photos in size); returns MB."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        coarse = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        noisy = np.asarray(coarse, np.int16) + rng.integers(-12, 13, (side, side, 3), dtype=np.int16)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i}.jpg"), quality=90)
    return sum(e.stat().st_size for e in os.scandir(folder)) / 1e6


def second_process_start(folder: str, resolution: int) -> float:
    """Seconds for a fresh interpreter to resolve a config and get the cached dataset."""
    code = ("from ganjax.config import Config, resolve; from ganjax.data import load_dataset; "
            f"d = load_dataset(resolve(Config(dataset='folder:{folder}', resolution={resolution}))); "
            "print(d.array.shape)")
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=71_314, help="images to synthesize")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: one per core)")
    parser.add_argument("--out", default=os.path.join(RESULTS, "bench_folder.json"))
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench_folder_")
    folder = os.path.join(tmp, "faces")
    try:
        tic = time.perf_counter()
        megabytes = synthesize(folder, args.n)
        synth_s = time.perf_counter() - tic
        print(f"synthesized {args.n} 64x64 JPEGs ({megabytes:.0f} MB) in {synth_s:.1f} s")

        workers = args.workers or default_workers(args.n)
        tic = time.perf_counter()
        array = load_folder(folder, args.resolution, 3, workers=workers)
        build_s = time.perf_counter() - tic
        cache_mb = os.path.getsize(array.filename) / 1e6

        tic = time.perf_counter()
        hit = load_folder(folder, args.resolution, 3)
        hit_s = time.perf_counter() - tic
        assert hit.shape == array.shape
        start_s = second_process_start(folder, args.resolution)

        result = dict(
            benchmark="bench_folder", n=args.n, resolution=args.resolution, workers=workers,
            cpus=os.cpu_count(), synth_s=round(synth_s, 2), jpeg_mb=round(megabytes, 1),
            build_s=round(build_s, 2), images_per_s=round(args.n / build_s), cache_mb=round(cache_mb, 1),
            cache_hit_s=round(hit_s, 3), second_run_start_s=round(start_s, 2),
            python=platform.python_version(), pillow=PIL.__version__, machine=platform.machine(),
            date=time.strftime("%Y-%m-%d %H:%M"),
        )
        print(f"decode + cache: {args.n} images in {build_s:.1f} s = {args.n / build_s:.0f} images/s "
              f"with {workers} worker process(es); cache {cache_mb:.0f} MB")
        print(f"cache hit: {hit_s:.2f} s in process (list, fingerprint, memory-map); "
              f"{start_s:.2f} s for a fresh python process to have the dataset")
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")
        print(json.dumps(result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
