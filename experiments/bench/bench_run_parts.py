"""The pieces of a training run outside its steps, each timed alone (best of --repeat calls).

    python -m experiments.bench.bench_run_parts                 # all three parts
    python -m experiments.bench.bench_run_parts --parts classifier

- classifier: the digit classifier's first stage (3x3 conv of 1 channel, ReLU, 2x2 max-pool) as
  XLA's convolution (`nn.Conv`) against `conv3x3_relu_pool_1ch`, the whole classifier in both forms
  on 500 digits, and `digit_features` on 2,500 (what an evaluation pays).
- trace: tracing the default training chunk (`jax.jit(train_chunk).trace`), as every run's start
  pays it before the compiled program loads from the cache.
- save: what `Checkpoints.save` costs its caller (the training thread), one save a second.
Prints one line per measurement; figures name no machine, so note yours beside them.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time

import jax
import numpy as np
from flax import linen as nn


def best_ms(fn, *args, repeat: int) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - tic)
    return 1e3 * min(times)


class _ConvClassifier(nn.Module):
    """DigitClassifier with every stage as nn.Conv + ReLU + max-pool (its form before the fused
    first stage); the same parameters."""

    @nn.compact
    def __call__(self, x):
        for width in (16, 32, 32):
            x = nn.max_pool(nn.relu(nn.Conv(width, (3, 3))(x)), (2, 2), strides=(2, 2))
        features = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return features, nn.Dense(10)(features)


def classifier(repeat: int) -> None:
    from ganjax import xla_options
    from ganjax.metrics.classifier import DigitClassifier, conv3x3_relu_pool_1ch, digit_features, load_digit_classifier

    variables = load_digit_classifier()
    first = variables["params"]["Conv_0"]
    x = np.random.default_rng(0).uniform(-1, 1, (500, 32, 32, 1)).astype(np.float32)
    conv_stage = xla_options.jit(lambda x: nn.max_pool(nn.relu(nn.Conv(16, (3, 3)).apply({"params": first}, x)),
                                                       (2, 2), strides=(2, 2)))
    fused_stage = xla_options.jit(lambda x: conv3x3_relu_pool_1ch(x, first["kernel"], first["bias"]))
    print(f"first stage, 500 digits: nn.Conv {best_ms(conv_stage, x, repeat=repeat):.2f} ms, "
          f"conv3x3_relu_pool_1ch {best_ms(fused_stage, x, repeat=repeat):.2f} ms")
    old = xla_options.jit(lambda v, x: _ConvClassifier().apply(v, x))
    new = xla_options.jit(lambda v, x: DigitClassifier().apply(v, x))
    difference = float(np.max(np.abs(np.asarray(old(variables, x)[0]) - np.asarray(new(variables, x)[0]))))
    print(f"classifier, 500 digits: all nn.Conv {best_ms(old, variables, x, repeat=repeat):.2f} ms, "
          f"DigitClassifier {best_ms(new, variables, x, repeat=repeat):.2f} ms (features differ by at most {difference:.1e})")
    many = np.random.default_rng(1).uniform(-1, 1, (2500, 32, 32, 1)).astype(np.float32)
    print(f"digit_features, 2,500 digits: {best_ms(digit_features, many, repeat=repeat):.1f} ms")


def trace(repeat: int) -> None:
    from experiments.bench.bench_steps import chunk_args, make_state
    from ganjax.steps import train_chunk

    _, gan, state = make_state("")
    args = chunk_args(gan, 25)
    times = []
    for _ in range(repeat):
        fn = jax.jit(functools.partial(train_chunk, gan, 25), donate_argnums=0)  # a fresh jit: no trace cache
        tic = time.perf_counter()
        fn.trace(state, *args)
        times.append(time.perf_counter() - tic)
    print(f"trace of the default 25-step chunk: {min(times):.2f} s (best of {repeat})")


def save(repeat: int) -> None:
    from experiments.bench.bench_steps import make_state
    from ganjax.checkpoints import Checkpoints

    config, _, state = make_state("")
    times = []
    with tempfile.TemporaryDirectory() as workdir:
        checkpoints = Checkpoints(workdir, keep=3)
        try:
            for i in range(repeat):
                state = state.replace(step=state.step + 1)
                tic = time.perf_counter()
                checkpoints.save(state, config, {"epoch": 0, "batch": i})
                times.append(time.perf_counter() - tic)
                time.sleep(1.0)  # an epoch's worth of quiet for the write to finish
        finally:
            checkpoints.close()
    print(f"Checkpoints.save, the caller's time: {1e3 * np.median(times):.1f} ms median, "
          f"{1e3 * min(times):.1f}-{1e3 * max(times):.1f} ms over {repeat} saves")


PARTS = {"classifier": classifier, "trace": trace, "save": save}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {tuple(PARTS)}")
    p.add_argument("--repeat", type=int, default=10, help="calls (saves) per measurement")
    a = p.parse_args()
    unknown = [name for name in a.parts.split(",") if name not in PARTS]
    if unknown:
        p.error(f"unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    for name in a.parts.split(","):
        PARTS[name](a.repeat)


if __name__ == "__main__":
    main()
