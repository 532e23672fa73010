"""Steps/s of the compiled training chunk (K steps in one lax.scan) for a few configurations.

    python -m experiments.bench.bench_steps                       # the default run and the homework's 64x64 DCGAN
    python -m experiments.bench.bench_steps --config=--loss=wgan --chunk 10 --repeat 2

Each configuration is the same `Config` the CLI builds (flags as for `python -m ganjax.train`);
data are random uint8 images of the model's shape, so the figure is the step cost alone.
Prints one JSON line per configuration and a table at the end.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import time

import jax
import jax.numpy as jnp

from ganjax.train import parse_args
from ganjax.state import create_state, make_spec
from ganjax import xla_options
from ganjax.steps import train_chunk

NOMINAL_TOTAL = 10 ** 6  # a learning-rate decay's length: its factor's value costs nothing to time
DEFAULT_CONFIGS = ["", "--loss=wgan", "--preset=hw6-gan", "--preset=hw6-wgan-gp"]


def make_state(flags: str):
    """(config, gan, fresh state) of the ganjax.train flags `flags`."""
    config = parse_args(shlex.split(flags))[0]
    gan = make_spec(config, total_steps=NOMINAL_TOTAL)
    return config, gan, create_state(gan, config.seed)


def chunk_args(gan, chunk: int) -> tuple:
    """The arguments after the state of train_chunk(gan, chunk, ...): `chunk` batches of random
    uint8 images of the model's shape, read in order."""
    n = gan.batch_size * chunk
    data = jax.random.randint(jax.random.PRNGKey(0), (n,) + gan.data_shape, 0, 256).astype(jnp.uint8)
    return data, jnp.arange(n), jnp.int32(0), jnp.int32(chunk)


def prepare(flags: str, chunk: int):
    """(config, gan, compiled chunk, its arguments, AOT compile seconds): the training chunk of
    `flags` compiled ahead of time on random uint8 data of the model's shape. Call as
    `state, metrics = compiled(state, *args)`; the state is donated, so thread it through."""
    config, gan, state = make_state(flags)
    args = chunk_args(gan, chunk)
    tic = time.perf_counter()
    compiled = jax.jit(functools.partial(train_chunk, gan, chunk), donate_argnums=0).lower(state, *args).compile(
        xla_options.default_options())
    return config, gan, state, compiled, args, time.perf_counter() - tic


def time_chunk(compiled, state, args):
    """(state, seconds) of one chunk, up to the metrics being on the host."""
    tic = time.perf_counter()
    state, metrics = compiled(state, *args)
    jax.block_until_ready(metrics)
    return state, time.perf_counter() - tic


def bench(flags: str, chunk: int, repeat: int) -> dict:
    config, gan, state, compiled, args, compile_s = prepare(flags, chunk)
    state, first = time_chunk(compiled, state, args)
    times = []
    for _ in range(repeat):
        state, t = time_chunk(compiled, state, args)
        times.append(t)
    best = min(times)
    return {"flags": flags or "(default)", "loss": config.loss, "arch": config.arch, "resolution": config.resolution,
            "features": config.features, "batch": config.batch_size, "chunk": chunk,
            "compile_and_first_chunk_s": round(compile_s + first, 2), "steps_per_s": round(chunk / best, 3),
            "images_per_s": round(chunk * config.batch_size / best, 1), "backend": jax.default_backend()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", help="ganjax.train flags of one configuration (repeatable)")
    p.add_argument("--chunk", type=int, default=10, help="steps per compiled chunk")
    p.add_argument("--repeat", type=int, default=2, help="timed chunks per configuration (best is kept)")
    args = p.parse_args()
    rows = []
    for flags in args.config or DEFAULT_CONFIGS:
        rows.append(bench(flags, args.chunk, args.repeat))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'configuration':28s} {'steps/s':>8s} {'images/s':>9s} {'compile+1st (s)':>16s}")
    for r in rows:
        print(f"{r['flags']:28s} {r['steps_per_s']:8.3f} {r['images_per_s']:9.1f} {r['compile_and_first_chunk_s']:16.1f}")


if __name__ == "__main__":
    main()
