"""A training step's time by op class on CPU: each convolution and dot of the compiled step re-timed alone.

    python -m experiments.bench.profile_classes                           # the default run's step
    python -m experiments.bench.profile_classes --config="--preset=hw6-gan --resolution=32" --top 10

Why not a trace: on CPU, XLA hands a convolution to Eigen's thread pool and returns, so the
jax.profiler trace (`profile_step.py`) shows its dispatch, not its work, and per-op sums fall far
short of the wall time. Instead this reads the optimized HLO of one compiled step, rebuilds every
`convolution` (its operand shapes, window, padding, dilations; XLA's canonical b01f_01io->b01f
layout) and every `dot` (top level or the root of a YNNPACK fusion) as a jitted lax op on random
operands, compiled with the step's own options (`ganjax.xla_options`), and times each alone
(the best of --repeat calls,
as the step is the best of its chunks). The step itself is timed as bench_steps does (a chunk of --chunk
steps, best of --rounds). Then:
    convolution = the sum of the re-timed convolutions,
    dot         = the sum of the re-timed dots,
    the rest    = step - both: elementwise fusions, normalization, layout copies and transposes,
                  the optimizer, control flow, and whatever an op costs inside the step beyond its
                  time alone (cache misses, a busier thread pool).
The FLOPs of each class are counted from the shapes, so each class's share of the measured matmul
peak (a 2048x2048 dot, as bench.py) says how far it is from the peak. A chunk holds each step's ops
once (the D and the G step, n_critic = 1); with n_critic > 1 read the figures per D step.
"""

from __future__ import annotations

import argparse
import re
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.bench.bench import matmul_gflops
from experiments.bench.bench_steps import prepare, time_chunk
from ganjax import xla_options

SHAPE = re.compile(r"%([\w.\-]+) = (f32|bf16|f16)\[([\d,]*)\]")
CONV = re.compile(r"%([\w.\-]+) = \w+\[[\d,]*\]\S* convolution\(%([\w.\-]+), %([\w.\-]+)\), window=\{([^}]*)\}, "
                  r"dim_labels=(\S+?),")
DOT = re.compile(r"%([\w.\-]+) = \w+\[[\d,]*\]\S* dot\(%([\w.\-]+), %([\w.\-]+)\), "
                 r"lhs_contracting_dims=\{([\d,]*)\}, rhs_contracting_dims=\{([\d,]*)\}")


def shapes_of(hlo: str) -> dict[str, tuple[int, ...]]:
    """Every instruction's (and fused parameter's) array shape, by name."""
    return {name: tuple(int(d) for d in dims.split(",") if d) for name, _, dims in SHAPE.findall(hlo)}


def window(text: str, rank: int = 2) -> dict:
    """XLA's window attribute ('size=3x3 pad=1_1x1_1 stride=2x2 lhs_dilate=2x2') as lax arguments."""
    fields = dict(item.split("=") for item in text.split())
    pairs = lambda key, default: [int(v) for v in fields.get(key, "x".join([default] * rank)).split("x")]
    pad = [tuple(int(v) for v in p.split("_")) for p in fields.get("pad", "x".join(["0_0"] * rank)).split("x")]
    return {"size": pairs("size", "1"), "padding": pad, "window_strides": pairs("stride", "1"),
            "lhs_dilation": pairs("lhs_dilate", "1"), "rhs_dilation": pairs("rhs_dilate", "1")}


def convolutions(hlo: str, shapes: dict) -> list[dict]:
    found = []
    for name, lhs, rhs, win, labels in CONV.findall(hlo):
        if labels != "b01f_01io->b01f":
            raise ValueError(f"{name}: layout {labels}; only XLA's canonical b01f_01io->b01f is rebuilt")
        w = window(win)
        out = shapes[name]
        flops = 2 * np.prod(out) * np.prod(shapes[rhs][:2]) * shapes[rhs][2]
        found.append({"name": name, "lhs": shapes[lhs], "rhs": shapes[rhs], "out": out, "flops": float(flops),
                      **{k: w[k] for k in ("padding", "window_strides", "lhs_dilation", "rhs_dilation")}})
    return found


def dots(hlo: str, shapes: dict) -> list[dict]:
    found = []
    for name, lhs, rhs, lc, rc in DOT.findall(hlo):
        lc, rc = [int(d) for d in lc.split(",") if d], [int(d) for d in rc.split(",") if d]
        contracted = np.prod([shapes[lhs][d] for d in lc])
        found.append({"name": name, "lhs": shapes[lhs], "rhs": shapes[rhs], "out": shapes[name], "lc": lc, "rc": rc,
                      "flops": float(2 * np.prod(shapes[name]) * contracted)})
    return found


def op_function(op: dict):
    if "lc" in op:
        return lambda a, b: jax.lax.dot_general(a, b, ((op["lc"], op["rc"]), ((), ())))
    return lambda a, b: jax.lax.conv_general_dilated(
        a, b, op["window_strides"], op["padding"], op["lhs_dilation"], op["rhs_dilation"],
        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def time_alone(op: dict, repeat: int) -> float:
    """Best seconds of one call of the op on random operands (dispatch included, about 20 us)."""
    keys = jax.random.split(jax.random.PRNGKey(0))
    a, b = (jax.random.normal(k, s, jnp.float32) for k, s in zip(keys, (op["lhs"], op["rhs"])))
    fn = jax.jit(op_function(op)).lower(a, b).compile(xla_options.default_options())
    assert fn(a, b).shape == op["out"], (op["name"], fn(a, b).shape, op["out"])
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        fn(a, b).block_until_ready()
        times.append(time.perf_counter() - tic)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="--latent_codes=0", help="ganjax.train flags (default: the default run's networks)")
    p.add_argument("--chunk", type=int, default=20, help="Steps per timed chunk.")
    p.add_argument("--rounds", type=int, default=5, help="Chunks timed (the best is the step time).")
    p.add_argument("--repeat", type=int, default=30, help="Calls per re-timed op (the best is kept).")
    p.add_argument("--top", type=int, default=12, help="The slowest ops listed.")
    a = p.parse_args()
    _, _, _, one_step, _, _ = prepare(a.config, 1)
    hlo = one_step.as_text()
    shapes = shapes_of(hlo)
    ops = [dict(op, kind="convolution") for op in convolutions(hlo, shapes)] + [dict(op, kind="dot") for op in dots(hlo, shapes)]
    _, _, state, compiled, args, _ = prepare(a.config, a.chunk)
    state, _ = time_chunk(compiled, state, args)
    step = []
    for _ in range(a.rounds):
        state, seconds = time_chunk(compiled, state, args)
        step.append(seconds / a.chunk)
    step = min(step)
    for op in ops:
        op["seconds"] = time_alone(op, a.repeat)
    peak = matmul_gflops(repeat=5) * 1e9
    total_flops = float(one_step.cost_analysis().get("flops", 0.0)) if hasattr(one_step, "cost_analysis") else 0.0
    print(f"flags: {a.config or '(default)'}; {jax.devices()[0].device_kind}; step {1e3 * step:.2f} ms "
          f"(best of {a.rounds} chunks of {a.chunk}); matmul peak {peak / 1e9:.0f} GFLOP/s")
    print(f"{'class':12s} {'ops':>4s} {'ms/step':>8s} {'share':>6s} {'GFLOP':>7s} {'GFLOP/s':>8s} {'of peak':>7s}")
    rest = step
    for kind in ("convolution", "dot"):
        members = [op for op in ops if op["kind"] == kind]
        seconds, flops = sum(op["seconds"] for op in members), sum(op["flops"] for op in members)
        rest -= seconds
        rate = flops / seconds if seconds else 0.0
        print(f"{kind:12s} {len(members):4d} {1e3 * seconds:8.2f} {100 * seconds / step:5.1f}% {flops / 1e9:7.3f} "
              f"{rate / 1e9:8.0f} {100 * rate / peak:6.0f}%")
    print(f"{'the rest':12s} {'':4s} {1e3 * rest:8.2f} {100 * rest / step:5.1f}%   (elementwise, norms, copies, "
          f"optimizer, control; step minus the two above)")
    if total_flops:
        print(f"{'step':12s} {'':4s} {1e3 * step:8.2f} 100.0% {total_flops / 1e9:7.3f} {total_flops / step / 1e9:8.0f} "
              f"{100 * total_flops / step / peak:6.0f}%   (XLA's cost analysis of the compiled CPU forms)")
    print(f"\nthe {a.top} slowest ops, alone:")
    for op in sorted(ops, key=lambda op: -op["seconds"])[:a.top]:
        extra = "" if op["kind"] == "dot" else f" pad {op['padding']} lhs_dilate {op['lhs_dilation']}"
        print(f"{1e3 * op['seconds']:7.3f} ms {op['flops'] / op['seconds'] / 1e9:6.0f} GFLOP/s  {op['kind']:11s} "
              f"{op['lhs']} x {op['rhs']} -> {op['out']}{extra}")


if __name__ == "__main__":
    main()
