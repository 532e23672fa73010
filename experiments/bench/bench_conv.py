"""Benchmark ganjax.models.conv's CPU fast paths against XLA's native (lhs-dilated) forms.

Layers (float32, batch 64 by default, NHWC):
  * DCGAN generator block: ConvTranspose 512->256, 4x4 -> 8x8, k5 s2 p2 op1
    (the layer XLA CPU runs pathologically slowly as an lhs-dilated conv): impl phase vs xla vs flax ``nn.ConvTranspose``.
  * DCGAN discriminator blocks: Conv2d k4 s2 p1, 64x64x3 -> 32x32x64 and
    8x8x256 -> 4x4x512, and the head k4 s1 p0 4x4x512 -> 1x1x1: impl space_to_depth vs
    xla, including the input gradient (training G through D) and a gradient-penalty double
    backward (WGAN-GP).

Each function is jitted, warmed up (compile excluded), then timed with block_until_ready;
the median of --repeats runs is reported (fewer for runs slower than --slow-s seconds).

    python -m experiments.bench.bench_conv [--batch 64] [--repeats 5]

``--nested``: instead, every convolution form that training uses -- conv_transpose (G) forward,
input gradient and kernel gradient; conv2d (D: k4 s2 p1 blocks and the k4 s1 p0 head)
forward, input gradient, kernel gradient and the gradient-penalty double backward (the
kernel gradient of a function of the input gradient) -- at the DCGAN 32x32 sizes (f=64,
1 channel) and the 64x64 homework sizes (3 channels), with the default (``auto``) impl,
timed three ways: plain ``jax.jit``, inside ``lax.cond`` and inside ``lax.scan`` (the
training loop runs its steps in a scan with a cond per step). XLA CPU compiles nested
computations differently from the entry computation (layout assignment), so a form can be
fast plain and pathologically slow nested; the ``worst/plain`` column shows it.

    python -m experiments.bench.bench_conv --nested [--sizes 32,64] [--only REGEX]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganjax.models.conv import conv2d, conv_transpose


def bench(fn, args, repeats, slow_s):
    out = fn(*args)
    jax.block_until_ready(out)                   # compile + warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
        if times[-1] > slow_s and len(times) >= 1:
            break                                # a pathological case: one run says enough
    return statistics.median(times), len(times), out


def fwd_bwd(f):
    """Forward + gradients w.r.t. input and kernel for a fixed cotangent g."""
    def run(x, k, g):
        y, vjp = jax.vjp(f, x, k)
        return (y,) + vjp(g)
    return jax.jit(run)


def grad_x(f):
    def run(x, k, g):
        return jax.vjp(lambda a: f(a, k), x)[1](g)[0]
    return jax.jit(run)


def gp_double_backward(f):
    """d/dk of sum((d/dx <f(x, k), g>)^2): the shape of a WGAN-GP penalty's gradient."""
    def penalty(k, x, g):
        gx = jax.vjp(lambda a: f(a, k), x)[1](g)[0]
        return jnp.sum(gx ** 2)
    return jax.jit(jax.grad(penalty))


# ------------------------------------------------------------------------------ --nested

def grad_x_fn(f):
    def run(x, k, g):
        return jax.vjp(lambda a: f(a, k), x)[1](g)[0]
    return run


def grad_k(f):
    def run(x, k, g):
        return jax.vjp(lambda b: f(x, b), k)[1](g)[0]
    return run


def gp_grad_k(f):
    """d/dk of sum((d/dx <f(x, k), g>)^2) -- the WGAN-GP penalty's gradient w.r.t. a kernel."""
    def penalty(x, k, g):
        gx = jax.vjp(lambda a: f(a, k), x)[1](g)[0]
        return jnp.sum(gx ** 2)
    return lambda x, k, g: jax.grad(penalty, 1)(x, k, g)


def nested_forms(res: int):
    """(layer name, f(x, k), x shape, k shape) for every conv of the DCGAN G and D at
    resolution res (32: f=64, 1 channel, widths 256..64; 64: 3 channels, widths 512..64)."""
    ch, top = (1, 256) if res == 32 else (3, 512)
    layers = []
    side, w = 4, top
    while side < res:                                           # G: k5 s2 p2 op1
        wo = w // 2 if side * 2 < res else ch
        layers.append((f"G{res} convT {side}x{side}x{w}->{2 * side}x{2 * side}x{wo}",
                       lambda a, b: conv_transpose(a, b, 2, 2, 1), (side, side, w), (5, 5, w, wo)))
        side, w = 2 * side, wo
    side, w = res, ch
    while side > 4:                                             # D: k4 s2 p1
        wo = 64 if w == ch else 2 * w
        layers.append((f"D{res} conv {side}x{side}x{w}->{side // 2}x{side // 2}x{wo}",
                       lambda a, b: conv2d(a, b, 2, 1), (side, side, w), (4, 4, w, wo)))
        side, w = side // 2, wo
    layers.append((f"D{res} head 4x4x{w}->1 k4s1p0", lambda a, b: conv2d(a, b, 1, 0),
                   (4, 4, w), (4, 4, w, 1)))
    return layers


def in_cond(fn, out_shape):
    """fn inside lax.cond (the branch taken at run time)."""
    def run(p, *args):
        return lax.cond(p > 0, fn, lambda *a: jnp.zeros(out_shape.shape, out_shape.dtype), *args)
    return run


def in_scan(fn, length):
    """fn inside a lax.scan of `length` iterations; all arguments are carried and nudged by
    the result, so no part of an iteration is loop-invariant (XLA would hoist it out)."""
    def run(*args):
        def body(c, _):
            out = fn(*c).reshape(-1)[0]
            return tuple(a + 1e-30 * out for a in c), out
        return lax.scan(body, args, None, length=length)
    return run


def main_nested(args):
    n = args.batch
    rng = np.random.default_rng(0)
    only = re.compile(args.only) if args.only else None
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, cpu count {os.cpu_count()}, "
          f"batch {n}; ms per call (scan: per iteration, {args.scan_length} iterations)",
          flush=True)
    rows = []
    for res in (int(r) for r in args.sizes.split(",")):
        for layer, f, xs, ks in nested_forms(res):
            x = jnp.asarray(rng.standard_normal((n,) + xs), jnp.float32)
            k = jnp.asarray(rng.standard_normal(ks) * 0.02, jnp.float32)
            y_shape = jax.eval_shape(f, x, k)
            g = jnp.asarray(rng.standard_normal(y_shape.shape), jnp.float32)
            forms = {"fwd": (lambda a, b, c, f=f: f(a, b)), "grad x": grad_x_fn(f),
                     "grad k": grad_k(f)}
            if "convT" not in layer:
                forms["GP grad k"] = gp_grad_k(f)
            for form, fn in forms.items():
                name = f"{layer} | {form}"
                if only and not only.search(name):
                    continue
                out_shape = jax.eval_shape(fn, x, k, g)
                ms = {}
                for mode in args.modes.split(","):
                    if mode == "plain":
                        t, _, _ = bench(jax.jit(fn), (x, k, g), args.repeats, args.slow_s)
                    elif mode == "cond":
                        t, _, _ = bench(jax.jit(in_cond(fn, out_shape)), (1, x, k, g),
                                        args.repeats, args.slow_s)
                    elif mode == "scan":
                        t, _, _ = bench(jax.jit(in_scan(fn, args.scan_length)), (x, k, g),
                                        args.repeats, args.slow_s * args.scan_length)
                        t /= args.scan_length
                    else:
                        raise SystemExit(f"unknown mode {mode!r}")
                    ms[mode] = t * 1e3
                worst = max(v for m, v in ms.items() if m != "plain") if len(ms) > 1 else 0
                ratio = worst / ms["plain"] if "plain" in ms and len(ms) > 1 else float("nan")
                rows.append((name, ms, ratio))
                cols = "  ".join(f"{m} {v:9.1f}" for m, v in ms.items())
                flag = "  <-- slow nested" if ratio > 1.5 else ""
                print(f"  {name:<52} {cols}  worst/plain {ratio:5.2f}{flag}", flush=True)
    modes = args.modes.split(",")
    print()
    print(f"| layer (batch {n}, float32) | form | " + " | ".join(f"{m} ms" for m in modes)
          + " | worst nested / plain |")
    print("|---|---|" + "---:|" * (len(modes) + 1))
    for name, ms, ratio in rows:
        layer, form = name.split(" | ")
        print(f"| {layer} | {form} | " + " | ".join(f"{ms[m]:.1f}" for m in modes)
              + f" | {ratio:.2f} |")
    print(f"total ms, " + ", ".join(f"{m} {sum(r[1][m] for r in rows):.0f}" for m in modes))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow-s", type=float, default=2.0,
                    help="stop repeating a case once one run takes longer than this")
    ap.add_argument("--skip-flax", action="store_true")
    ap.add_argument("--nested", action="store_true",
                    help="time every training conv form plain vs inside lax.cond / lax.scan")
    ap.add_argument("--sizes", default="32,64", help="--nested: DCGAN resolutions (32, 64)")
    ap.add_argument("--modes", default="plain,cond,scan", help="--nested: plain,cond,scan")
    ap.add_argument("--scan-length", type=int, default=3, help="--nested: scan iterations")
    ap.add_argument("--only", default="", help="--nested: regex on 'layer | form'")
    args = ap.parse_args()
    if args.nested:
        return main_nested(args)
    n = args.batch
    rng = np.random.default_rng(0)
    rows = []

    def record(layer, impl, metric, fn, fargs, ref=None):
        t, runs, out = bench(fn, fargs, args.repeats, args.slow_s)
        err = ""
        if ref is not None:
            a = out[0] if isinstance(out, tuple) else out
            err = f"{float(jnp.max(jnp.abs(a - ref))):.1e}"
        rows.append((layer, impl, metric, t * 1e3, runs, err))
        print(f"  {layer:<30} {impl:<15} {metric:<14} {t * 1e3:10.1f} ms  (runs={runs})",
              flush=True)
        return out

    print(f"jax {jax.__version__}, backend {jax.default_backend()}, "
          f"devices {jax.devices()}, cpu count {os.cpu_count()}, batch {n}", flush=True)

    # ------------------------------------------------------------ transposed conv (G block)
    layer = "convT 512->256 4->8 k5s2p2op1"
    x = jnp.asarray(rng.standard_normal((n, 4, 4, 512)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((5, 5, 512, 256)) * 0.02, jnp.float32)
    g = jnp.asarray(rng.standard_normal((n, 8, 8, 256)), jnp.float32)
    impls = {
        impl: (lambda a, b, impl=impl: conv_transpose(a, b, 2, 2, 1, impl=impl))
        for impl in ("phase", "xla")
    }
    if not args.skip_flax:
        flax_ct = nn.ConvTranspose(256, (5, 5), strides=(2, 2), padding=((2, 3), (2, 3)),
                                   use_bias=False)
        # flax does not flip the kernel: feeding it the flipped kernel gives PyTorch's result.
        impls["flax ConvTranspose"] = (
            lambda a, b: flax_ct.apply({"params": {"kernel": b[::-1, ::-1]}}, a))
    ref = None
    for impl, f in impls.items():
        y = record(layer, impl, "fwd", jax.jit(f), (x, k), ref)
        if ref is None:
            ref = y
        record(layer, impl, "fwd+bwd(x,k)", fwd_bwd(f), (x, k, g), ref)

    # ------------------------------------------------------------ strided conv (D blocks)
    for hw, cin, cout, s, p in ((64, 3, 64, 2, 1), (8, 256, 512, 2, 1), (4, 512, 1, 1, 0)):
        ho = (hw + 2 * p - 4) // s + 1
        layer = f"conv {hw}x{hw}x{cin}->{ho}x{ho}x{cout} k4s{s}p{p}"
        x = jnp.asarray(rng.standard_normal((n, hw, hw, cin)), jnp.float32)
        k = jnp.asarray(rng.standard_normal((4, 4, cin, cout)) * 0.02, jnp.float32)
        g = jnp.asarray(rng.standard_normal((n, ho, ho, cout)), jnp.float32)
        ref = refgx = None
        for impl in ("space_to_depth", "xla"):
            f = lambda a, b, impl=impl, s=s, p=p: conv2d(a, b, s, p, impl=impl)
            y = record(layer, impl, "fwd", jax.jit(f), (x, k), ref)
            ref = y if ref is None else ref
            gx = record(layer, impl, "grad x", grad_x(f), (x, k, g), refgx)
            refgx = gx if refgx is None else refgx
            record(layer, impl, "fwd+bwd(x,k)", fwd_bwd(f), (x, k, g))
            record(layer, impl, "GP double bwd", gp_double_backward(f), (k, x, g))

    print()
    print(f"| layer (batch {n}, float32) | impl | measure | median ms | runs | max|diff| |")
    print("|---|---|---|---:|---:|---:|")
    for layer, impl, metric, ms, runs, err in rows:
        print(f"| {layer} | {impl} | {metric} | {ms:.1f} | {runs} | {err or '-'} |")


if __name__ == "__main__":
    main()
