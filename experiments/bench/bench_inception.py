"""Inception feature extraction in images/s: ganjax's Flax FID Inception-v3 against pytorch-fid's
`InceptionV3([3])` on the same images and the same weights.

Without network the published weights cannot be fetched, so both networks load one random state
dict in pytorch-fid's format (the speed does not depend on the values). Images are 64x64 RGB
uint8, resized to 299 inside each network as in a real FID. For each batch size, each side is
timed after one warm-up batch (ganjax's compilation, torch's first-call allocations) over
--images images, the two sides alternating per round so that a busy machine slows both alike;
the load average is recorded beside the rates. Appends one JSON line per batch size to
experiments/results/bench_inception.jsonl.

    python -m experiments.bench.bench_inception [--batch_sizes=50] [--images=100] [--rounds=2]

pytorch-fid needs torchvision, which on a CPU torch needs its two ops defined first
(tests/conftest.py, `pytorch_fid`, explains why); this script does the same.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from unittest import mock

import numpy as np

from experiments import RESULTS


def import_pytorch_fid():
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        import_pytorch_fid.lib = lib  # kept alive
    from pytorch_fid import inception

    return inception


def random_weights(path: str) -> None:
    """torchvision's Inception-v3 tensors (the FID blocks have the same), random, saved as pytorch-fid's file."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    torch.save(net.state_dict(), path)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch_sizes", default="50", help="Comma-separated (50: pytorch-fid's default).")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    return [measure(args, int(b)) for b in args.batch_sizes.split(",")]


def measure(args, batch_size: int) -> dict:

    import jax
    import torch

    from ganjax.metrics.inception import inception_outputs
    from ganjax.metrics.inception_weights import load_weights

    inception = import_pytorch_fid()
    folder = tempfile.mkdtemp(prefix="bench-inception-")
    path = os.path.join(folder, "random.pth")
    random_weights(path)
    os.environ.setdefault("XDG_CACHE_HOME", folder)
    variables = load_weights(path).variables
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: torch.load(path, weights_only=True)):
        reference = inception.InceptionV3([3]).eval().to(device)
    images = np.random.default_rng(0).integers(0, 256, (args.images, 64, 64, 3), dtype=np.uint8)
    as_torch = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).to(device)

    def ganjax_run(x):
        return inception_outputs(iter(x), variables, batch_size)["pool3"]

    def torch_run(x):
        with torch.no_grad():
            return np.concatenate([reference(x[i:i + batch_size])[0][:, :, 0, 0].cpu().numpy()
                                   for i in range(0, len(x), batch_size)])

    tic = time.time()
    ganjax_run(images[:batch_size])
    warmup = {"ganjax_s": time.time() - tic}
    tic = time.time()
    torch_run(as_torch[:batch_size])
    warmup["pytorch_fid_s"] = time.time() - tic
    rates: dict = {"ganjax": [], "pytorch_fid": []}
    for _ in range(args.rounds):
        for name, run, x in (("ganjax", ganjax_run, images), ("pytorch_fid", torch_run, as_torch)):
            tic = time.time()
            run(x)
            rates[name].append(len(images) / (time.time() - tic))
    result = {"what": "Inception pool3 features, 64x64 RGB uint8 resized to 299", "images": len(images),
              "batch_size": batch_size, "rounds": args.rounds, "warmup": warmup,
              "images_per_s": {k: [round(v, 2) for v in vs] for k, vs in rates.items()},
              "best_images_per_s": {k: round(max(vs), 2) for k, vs in rates.items()},
              "load_average_after": os.getloadavg(), "cpus": os.cpu_count(), "backend": jax.default_backend(),
              "device": str(jax.devices()[0]), "torch_device": device, "torch_threads": torch.get_num_threads(),
              "machine": platform.processor() or platform.machine(), "jax": jax.__version__,
              "torch": torch.__version__}
    print(json.dumps(result, indent=1))
    with open(os.path.join(RESULTS, "bench_inception.jsonl"), "a") as f:
        f.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
