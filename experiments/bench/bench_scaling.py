"""Data-parallel scaling: steps/s and images/s of the training chunk on 1, 2, 4 and 8 devices.

Two regimes: a fixed global batch (strong scaling: the same run, split N ways) and a fixed batch
per device (weak scaling: N times the images per step). Runs the trainer's own program (ganjax.parallel:
jit on one device, pmap on several) on the first N local devices. Without GPUs it makes 8 CPU
devices (XLA_FLAGS, set before jax is imported); they share the machine's cores, so CPU figures
measure the overhead of the parallel program, not a speed-up.

    python -m experiments.bench.bench_scaling [--global_batch=64] [--per_device=8] [--chunks=3]

Writes experiments/results/scaling.json, scaling.md (table) and scaling.png (plot).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402  (after XLA_FLAGS)
import jax.numpy as jnp  # noqa: E402

from experiments import RESULTS  # noqa: E402
from ganjax.config import Config, resolve  # noqa: E402
from ganjax.data import epoch_permutation, load_dataset  # noqa: E402
from ganjax.parallel import Placement  # noqa: E402
from ganjax.state import create_state, make_spec  # noqa: E402
from ganjax.steps import train_chunk  # noqa: E402
from experiments.bench.bench_steps import NOMINAL_TOTAL  # noqa: E402


def measure(n_devices: int, batch: int, args) -> dict:
    """Steps/s of compiled chunks (compile and a warm-up chunk excluded) on the first n devices."""
    config = resolve(Config(dataset="digits", resolution=args.resolution, features=args.features,
                            batch_size=batch, chunk_size=args.chunk_size))
    placement = Placement(tuple(jax.local_devices()[:n_devices]), n_devices)
    gan = make_spec(config, placement.axis_name, total_steps=NOMINAL_TOTAL)
    data = load_dataset(config).array
    state = placement.replicate(create_state(gan, 0))
    device_data = placement.replicate(data)
    perm = epoch_permutation(jax.random.PRNGKey(0), 0, len(data))
    k = jnp.int32(args.chunk_size)
    chunk = placement.compile(functools.partial(train_chunk, gan, args.chunk_size), state, device_data, perm,
                              jnp.int32(0), k)
    state, metrics = chunk(state, device_data, perm, jnp.int32(0), k)  # warm-up
    jax.block_until_ready(metrics)
    tic = time.perf_counter()
    for i in range(1, args.chunks + 1):
        state, metrics = chunk(state, device_data, perm, jnp.int32(i * args.chunk_size), k)
    jax.block_until_ready(metrics)
    steps_per_s = args.chunks * args.chunk_size / (time.perf_counter() - tic)
    return {"devices": n_devices, "global_batch": batch, "per_device": batch // n_devices,
            "steps_per_s": steps_per_s, "images_per_s": steps_per_s * batch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--global_batch", type=int, default=64)
    parser.add_argument("--per_device", type=int, default=8)
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--chunk_size", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.devices.split(",") if int(n) <= jax.local_device_count()]
    rows = []
    for regime, batch_of in (("fixed global batch", lambda n: args.global_batch),
                             ("fixed per-device batch", lambda n: args.per_device * n)):
        for n in counts:
            row = {"regime": regime, **measure(n, batch_of(n), args)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    device = f"{jax.local_device_count()} x {jax.devices()[0].device_kind} ({jax.default_backend()}), {os.cpu_count()} CPU cores"
    setup = f"DCGAN {args.resolution}x{args.resolution}, f={args.features}, chunks of {args.chunk_size} steps"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "scaling.json"), "w") as f:
        json.dump({"device": device, "setup": setup, "rows": rows}, f, indent=2)
    lines = [f"Device: {device}. {setup}.", "", "| regime | devices | global batch | per device | steps/s | images/s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['regime']} | {r['devices']} | {r['global_batch']} | {r['per_device']} | {r['steps_per_s']:.2f} | "
              f"{r['images_per_s']:.0f} |" for r in rows]
    with open(os.path.join(RESULTS, "scaling.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot(rows, device)


def plot(rows: list[dict], device: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for regime in dict.fromkeys(r["regime"] for r in rows):
        sub = [r for r in rows if r["regime"] == regime]
        for ax, key in zip(axes, ("steps_per_s", "images_per_s")):
            ax.plot([r["devices"] for r in sub], [r[key] for r in sub], "o-", label=regime)
    for ax, label in zip(axes, ("steps/s", "images/s")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("devices")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"ganjax data-parallel scaling ({device})", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "scaling.png"), dpi=120)


if __name__ == "__main__":
    main()
