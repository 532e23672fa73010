"""Where a training step's time goes: a jax.profiler trace of one compiled chunk, summed per XLA op.

    python -m experiments.bench.profile_step --config=--preset=hw6-gan --chunk 2 [--top 30]

Reads the trace back with jax.profiler.ProfileData (no TensorBoard/xprof needed) and prints the
XLA ops (convolutions, fusions, dots, copies) with their total time and share, so that a speed-up
starts from a measurement rather than a guess. On CPU these are the host threads' thunks; on a GPU
the device's "XLA Ops" line (one event per HLO op, cuDNN convolutions as custom calls).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import tempfile

import jax

from experiments.bench.bench_steps import prepare, time_chunk


# Events that wrap the ops (the executor, pool waits): counted once per op already.
WRAPPERS = ("ThunkExecutor", "SlinkyThreadPool", "TfrtCpu", "PjRt")


def describe(hlo: str, name: str) -> str:
    """The HLO instruction that calls fusion `name`: its result shape and, for a conv or dot inside, the op."""
    for line in hlo.splitlines():
        if line.lstrip().lstrip("%").startswith(name + " = "):
            shape = line.split("=", 1)[1].split("fusion(")[0].split("(")[0].strip()
            calls = line.split("calls=")[-1].split(",")[0].strip() if "calls=" in line else ""
            body = hlo.split(calls + " ", 1)[1].split("\n}", 1)[0] if calls and calls + " " in hlo else ""
            ops = [op for op in ("convolution", "dot") if f" {op}(" in body]
            return f"{shape} {'+'.join(ops)}"
    return ""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="--preset=hw6-gan", help="ganjax.train flags")
    p.add_argument("--chunk", type=int, default=2)
    p.add_argument("--top", type=int, default=30)
    a = p.parse_args()
    _, _, state, compiled, args, _ = prepare(a.config, a.chunk)
    hlo = compiled.as_text()
    state, _ = time_chunk(compiled, state, args)
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d):
            state, wall = time_chunk(compiled, state, args)
        path = glob.glob(os.path.join(d, "**", "*.xplane.pb"), recursive=True)[0]
        data = jax.profiler.ProfileData.from_file(path)
    total, count = collections.Counter(), collections.Counter()
    for plane in data.planes:
        for line in plane.lines:
            for ev in line.events:
                total[(plane.name, line.name, ev.name)] += ev.duration_ns
                count[(plane.name, line.name, ev.name)] += 1
    print(f"chunk of {a.chunk} steps: {wall:.2f} s wall")
    gpu = any(plane.startswith("/device:GPU") for plane, _, _ in total)
    per_op = collections.Counter()
    device_lines = sorted({line for plane, line, _ in total if plane.startswith("/device:GPU")})
    if gpu:
        print("device lines:", ", ".join(device_lines))
    # One event per HLO op on the device's "XLA Ops" line; without it, the kernels on its streams.
    op_lines = {"XLA Ops"} if "XLA Ops" in device_lines else {n for n in device_lines if n.startswith("Stream")}
    for (plane, line, name), ns in total.items():
        if gpu:
            if plane.startswith("/device:GPU") and line in op_lines:
                per_op[name] += ns
        # CPU: events of the thread lines (XLA runs thunks on the caller and on Eigen pool threads).
        elif "/host:CPU" in plane and "python" not in line.lower() and not name.startswith(WRAPPERS):
            per_op[name] += ns
    busy = sum(per_op.values()) or 1
    where = "on the device" if gpu else "summed over host threads"
    print(f"{'ms':>9s} {'share':>6s}  op ({where}, {busy / 1e6:.1f} ms busy)")
    described = {name: describe(hlo, name) for name in per_op}  # each call scans the whole HLO text
    for name, ns in per_op.most_common(a.top):
        print(f"{ns / 1e6:9.2f} {100 * ns / busy:5.1f}%  {name[:40]:40s} {described[name][:80]}")
    by_class = collections.Counter()
    for name, ns in per_op.items():
        by_class[op_class(name, described[name])] += ns
    print(f"\n{'ms':>9s} {'share':>6s}  op class (per step: ms / {a.chunk})")
    for name, ns in by_class.most_common():
        print(f"{ns / 1e6:9.2f} {100 * ns / busy:5.1f}%  {name}")


def op_class(name: str, described: str) -> str:
    """The kind of work an op does: convolution or dot (the FLOPs), data movement (copies,
    transposes, concatenates, slices, pads: layout changes around the convolutions), reductions
    (batch-norm statistics, losses) and the remaining elementwise fusions."""
    if "convolution" in described or name.startswith("conv"):
        return "convolution"
    if "dot" in described or name.startswith("dot"):
        return "dot"
    if any(w in name for w in ("copy", "transpose", "concatenate", "slice", "pad", "bitcast", "dynamic")):
        return "data movement (copy, transpose, concatenate, slice, pad)"
    if "reduce" in name:
        return "reduction"
    return "other (elementwise fusions, control flow, rng)"


if __name__ == "__main__":
    main()
