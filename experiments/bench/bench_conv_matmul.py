"""Convolution as patches plus one matmul, against XLA CPU's own convolution, at the stride-1
shapes that ganjax.models.conv hands XLA in the default run and in the homework's 64x64 DCGAN.

    python -m experiments.bench.bench_conv_matmul                 # batch 64
    BATCH=256 python -m experiments.bench.bench_conv_matmul "F 32"  # batch 256, forward 32x32 shapes only

ganjax.models.conv rewrites every strided and transposed convolution as one stride-1
convolution (the sub-pixel phases of G, space-to-depth in D), whose forward, input gradient (Bx)
and kernel gradient are each again a stride-1 convolution or matmuls. This bench asks whether
that stride-1 core should itself be a matmul (issue: "convolutions as patch extraction plus one
matmul"), and which of XLA CPU's two convolution kernels to use. Four forms of the same
cross-correlation, each timed inside a jitted lax.scan of 10 steps whose carry depends on the
output's maximum and one of its elements (so XLA cannot hoist the convolution, and must write its
output out as in a training step: a plain sum or max of it lets XLA fuse the reduction into
YNNPACK's convolution, a case no training step has), median of 5:
  ynn:   lax.conv_general_dilated as jaxlib 0.10's XLA CPU runs it by default (a YNNPACK fusion);
  xla:   the same with ganjax.xla_options (XLA's own Eigen convolution), what ganjax runs;
  mm:    im2col, the kh*kw shifted windows side by side, then one (N*Ho*Wo, kh*kw*Cin) x (kh*kw*Cin, Cout) dot;
  rows:  one dot per kernel column over the kh windows of that column, summed.
The error column is the largest difference from xla (float32 summation order only).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax

from ganjax import xla_options
from ganjax.models.conv import _s1_conv_lax


def _padded(x, pads):
    return lax.pad(x, jnp.zeros((), x.dtype),
                   ((0, 0, 0), (pads[0][0], pads[0][1], 0), (pads[1][0], pads[1][1], 0), (0, 0, 0)))


def conv_im2col(x, k, pads):
    """One matmul over all kh*kw shifted windows (the windows' channels in (kh, kw, cin) order,
    as k.reshape flattens them)."""
    x = _padded(x, pads)
    kh, kw, cin, cout = k.shape
    n, h, w, _ = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    cols = jnp.concatenate([x[:, i:i + ho, j:j + wo, :] for i in range(kh) for j in range(kw)], axis=-1)
    return (cols.reshape(-1, kh * kw * cin) @ k.reshape(kh * kw * cin, cout)).reshape(n, ho, wo, cout)


def conv_rows(x, k, pads):
    """One matmul per kernel column (kh windows side by side), summed: kw times fewer copies at once."""
    x = _padded(x, pads)
    kh, kw, cin, cout = k.shape
    n, h, w, _ = x.shape
    ho, wo = h - kh + 1, w - kw + 1
    out = 0
    for j in range(kw):
        cols = jnp.concatenate([x[:, i:i + ho, j:j + wo, :] for i in range(kh)], axis=-1)
        out = out + cols.reshape(-1, kh * cin) @ k[:, j].reshape(kh * cin, cout)
    return out.reshape(n, ho, wo, cout)


# XLA's default: ganjax's CPU options plus YNNPACK's own convolution fusions
YNN_CONVOLUTIONS = {name: value + ",LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"
                    for name, value in xla_options.CPU_OPTIONS.items()}
# form: (function, compile options or None for ganjax's)
FORMS = {"ynn": (_s1_conv_lax, YNN_CONVOLUTIONS), "xla": (_s1_conv_lax, None), "mm": (conv_im2col, None),
         "rows": (conv_rows, None)}


def shapes(n: int) -> list:
    """(name, x shape, kernel shape, padding) of the stride-1 cores: F = forward, Bx = input
    gradient; '32' the default run (f 32, 1 channel), '64' the homework's DCGAN (f 64, 3 channels)."""
    same, none = ((1, 1), (1, 1)), ((0, 0), (0, 0))
    return [
        ("G1 F 32", (n, 4, 4, 128), (3, 3, 128, 256), same),
        ("G2 F 32", (n, 8, 8, 64), (3, 3, 64, 128), same),
        ("G3 F 32", (n, 16, 16, 32), (3, 3, 32, 4), same),
        ("D1 F 32", (n, 17, 17, 4), (2, 2, 4, 32), none),
        ("D2 F 32", (n, 9, 9, 128), (2, 2, 128, 64), none),
        ("D3 F 32", (n, 5, 5, 256), (2, 2, 256, 128), none),
        ("D4 F 32", (n, 4, 4, 128), (4, 4, 128, 1), none),
        ("G1 Bx 32", (n, 4, 4, 256), (3, 3, 256, 128), same),
        ("G2 Bx 32", (n, 8, 8, 128), (3, 3, 128, 64), same),
        ("D2 Bx 32", (n, 8, 8, 64), (2, 2, 64, 128), same),
        ("D3 Bx 32", (n, 4, 4, 128), (2, 2, 128, 256), same),
        ("G1 F 64", (n, 4, 4, 512), (3, 3, 512, 1024), same),
        ("G2 F 64", (n, 8, 8, 256), (3, 3, 256, 512), same),
        ("G4 F 64", (n, 32, 32, 64), (3, 3, 64, 12), same),
        ("D1 F 64", (n, 33, 33, 12), (2, 2, 12, 64), none),
        ("D2 F 64", (n, 17, 17, 256), (2, 2, 256, 128), none),
    ]


def seconds_per_call(f, x, k, pads, options=None, length: int = 10, repeat: int = 5) -> float:
    def run(x, k):
        def body(c, _):
            y = f(x + c, k, pads)
            y = jnp.max(y) + y[0, 0, 0, 0]
            return c + 1e-9 * y, y
        return lax.scan(body, jnp.zeros((), x.dtype), None, length=length)[1]
    run = jax.jit(run, compiler_options=xla_options.default_options() if options is None else options)
    run(x, k).block_until_ready()
    times = []
    for _ in range(repeat):
        tic = time.perf_counter()
        run(x, k).block_until_ready()
        times.append(time.perf_counter() - tic)
    return statistics.median(times) / length


def main():
    only = sys.argv[1:]
    n = int(os.environ.get("BATCH", "64"))
    print(f"batch {n}, {jax.devices()[0].device_kind}; ms per call and GFLOP/s")
    for name, xs, ks, pads in shapes(n):
        if only and not any(s in name for s in only):
            continue
        x = jax.random.normal(jax.random.PRNGKey(0), xs)
        k = jax.random.normal(jax.random.PRNGKey(1), ks)
        ref = xla_options.jit(_s1_conv_lax, static_argnums=2)(x, k, pads)
        flops = 2 * ref.size * ks[0] * ks[1] * ks[2]
        cells = []
        for form, (f, options) in FORMS.items():
            err = float(jnp.abs(f(x, k, pads) - ref).max())
            t = seconds_per_call(f, x, k, pads, options)
            cells.append(f"{form}: {t * 1e3:6.2f} ms {flops / t / 1e9:5.0f} GF/s (err {err:.1e})")
        print(f"{name:9s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
