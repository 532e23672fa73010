"""The whole training step with G's transposed convolutions in each CPU form, timed alternately.

    python -m experiments.bench.bench_g_conv_impl [--config="--preset=hw6-gan --resolution=64 --channels=3"]
                                                  [--impls phase,phase_exact] [--chunk 3] [--repeat 7]

Two sub-pixel forms of PyTorch's ConvTranspose2d for the CPU: "phase" (ganjax.models.conv's
default: all s*s phases as one stride-1 convolution over a zero-padded ceil(k/s)^2 kernel, 36
multiplies per output group for k5 s2) and "phase_exact" (experiments/bench/conv_phase_exact.py:
one convolution per phase with exactly its taps: 25). Each form's chunk is compiled once, then the
chunks run in turn --repeat times on the same initial state, so that both see the same machine load;
prints every time and the medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import time

import jax
import jax.numpy as jnp

from experiments.bench.bench_steps import chunk_args, make_state
from experiments.bench.conv_phase_exact import phase_exact_in_models
from ganjax import xla_options
from ganjax.steps import train_chunk


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="--preset=hw6-gan --resolution=64 --channels=3", help="ganjax.train flags")
    p.add_argument("--impls", default="phase,phase_exact", help="conv_impl values of G to compare")
    p.add_argument("--chunk", type=int, default=3, help="steps per timed chunk")
    p.add_argument("--repeat", type=int, default=7, help="timed chunks per form (medians kept)")
    a = p.parse_args()
    _, gan, state = make_state(a.config)
    args = chunk_args(gan, a.chunk)
    compiled, finals = {}, {}
    for impl in a.impls.split(","):
        g = dataclasses.replace(gan, generator=gan.generator.clone(conv_impl=impl))
        tic = time.perf_counter()
        with phase_exact_in_models():  # G's ConvTranspose2d accepts conv_impl="phase_exact" while traced
            chunk = jax.jit(functools.partial(train_chunk, g, a.chunk)).lower(state, *args)
            compiled[impl] = chunk.compile(xla_options.default_options())
        finals[impl] = jax.block_until_ready(compiled[impl](state, *args))[0]
        print(f"{impl}: compiled in {time.perf_counter() - tic:.1f} s", flush=True)
    times = {impl: [] for impl in compiled}
    for _ in range(a.repeat):
        for impl, c in compiled.items():
            tic = time.perf_counter()
            jax.block_until_ready(c(state, *args))
            times[impl].append(a.chunk / (time.perf_counter() - tic))
    first = next(iter(finals.values()))
    for impl, ts in times.items():
        diff = max(float(jnp.max(jnp.abs(x - y))) for x, y in
                   zip(jax.tree.leaves(first.g.params), jax.tree.leaves(finals[impl].g.params)))
        print(f"{impl:12s} median {statistics.median(ts):.4f} steps/s  ({', '.join(f'{t:.3f}' for t in ts)}); "
              f"max |G param - first form's| after one chunk {diff:.1e}")


if __name__ == "__main__":
    main()
