"""PyTorch-semantics 2-D convolutions for NHWC arrays, fast on XLA CPU.

Why this module exists (measured with experiments/bench/bench_conv.py): XLA on CPU runs
flax ``nn.ConvTranspose`` -- an lhs-dilated convolution -- pathologically slowly at small
spatial sizes (512->256 channels, 4x4->8x8, k5 s2, batch 64: 6.4 s forward, versus 0.04 s
in PyTorch). The CPU paths here rewrite every strided (transposed) convolution as ONE
stride-1 convolution plus reshapes, so no lhs dilation appears in the forward pass or in
any gradient (with few output channels that stride-1 correlation is one matmul over the
kernel's taps plus shifted adds, faster than XLA CPU's convolution there). The stride-1 core carries hand-written VJPs (see ``_s1_conv``) because JAX's
own second-order derivative of a convolution (the WGAN-GP double backward) contains a
kernel-gradient convolution that XLA CPU runs pathologically slowly too (measured: 14 s
for the DCGAN D block 8x8x256 -> 4x4x512, batch 64; experiments/bench/bench_conv.py).
Every convolution these paths emit -- forward, gradients, and gradients of gradients -- is
in XLA CPU's canonical form (NHWC input, HWIO kernel, stride 1, no dilation, no negative
padding), with kernel flips/transposes materialized as explicit (kernel-sized) copies. That
matters inside ``lax.scan`` / ``lax.cond`` (the training loop): XLA CPU only canonicalizes
other forms (JAX's own transpose rules emit swapped in/out kernel axes and batch/feature-
swapped kernel gradients) in the entry computation; in a nested computation it emits a
generic loop instead, 3-50x slower (``python -m experiments.bench.bench_conv --nested``).
On GPU (``impl="auto"`` off the CPU backend) plain lax convolutions are used: cuDNN handles
transposed and strided convolutions natively.

Layouts: activations NHWC, kernels HWIO ``(kh, kw, in, out)``. For the transposed
convolution ``kernel[kh, kw, i, o] == torch_weight[i, o, kh, kw]`` (no spatial flip in our
storage); for the convolution ``kernel[kh, kw, i, o] == torch_weight[o, i, kh, kw]``.

PyTorch's ``ConvTranspose2d(k, s, p, output_padding)`` maps to lax padding
``(k-1-p, k-1-p+output_padding)`` per side with a spatially flipped kernel (the adjoint of the forward convolution);
flax's ``'SAME'`` is off by one pixel, so we never use it.
"""

from __future__ import annotations

import numbers
import operator
from functools import partial
from typing import Any, Callable, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["conv_transpose", "conv2d", "ConvTranspose2d", "Conv2d"]

IntOr2 = Union[int, Sequence[int]]
_DN = ("NHWC", "HWIO", "NHWC")


def _pair(v: IntOr2, name: str) -> tuple[int, int]:
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return (int(v), int(v))
    try:
        t = tuple(operator.index(a) for a in v)  # type: ignore[union-attr]
    except TypeError:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t


def _check_shapes(x, kernel, fn: str):
    if x.ndim != 4:
        raise ValueError(f"{fn}: x must be NHWC (rank 4), got shape {x.shape}")
    if kernel.ndim != 4:
        raise ValueError(f"{fn}: kernel must be HWIO (rank 4), got shape {kernel.shape}")
    if x.shape[3] != kernel.shape[2]:
        raise ValueError(
            f"{fn}: input channels {x.shape[3]} do not match kernel in-channels "
            f"{kernel.shape[2]} (kernel shape {kernel.shape}, HWIO)")


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _resolve_impl(impl: str, choices: tuple[str, ...], cpu_choice: str, fn: str) -> str:
    if impl == "auto":
        return cpu_choice if jax.default_backend() == "cpu" else "xla"
    if impl not in choices:
        raise ValueError(f"{fn}: impl must be one of {('auto',) + choices}, got {impl!r}")
    return impl


# --------------------------------------------------------------------------------------
# Stride-1 convolution core with hand-written, closed-under-differentiation VJPs
# --------------------------------------------------------------------------------------
# A stride-1 conv F(x, k) has two adjoints: the input gradient Bx(g, k) (a stride-1 conv of
# g with the flipped kernel) and the kernel gradient Bk(x, g). Each of the three is bilinear
# and the VJPs of each are again F, Bx or Bk:
#   F(x, k):  dx = Bx(dy, k),  dk = Bk(x, dy)
#   Bx(g, k): dg = F(h, k),    dk = Bk(h, g)       (h: cotangent of Bx's output)
#   Bk(x, g): dx = Bx(g, H),   dg = F(x, H)        (H: cotangent of Bk's output)
# so any order of reverse-mode differentiation (e.g. the WGAN-GP double backward) only
# ever runs these three forms. Each is written out by hand as a canonical XLA CPU conv
# (NHWC, HWIO, stride 1, padding >= 0; see _s1_conv_lax), never through
# jax.linear_transpose / JAX's conv transpose rules, whose convs XLA CPU runs fast only at
# the top level of a jitted function (it canonicalizes them there), not inside lax.scan or
# lax.cond, where the training loop runs them:
#   - Bx: JAX's rule gives a conv whose kernel has in/out axes swapped (dim_labels 01oi);
#     nested, XLA CPU emits a generic loop, 3-8x slower at the DCGAN sizes. Here: the
#     flipped, in/out-transposed kernel is materialized, then a canonical conv.
#   - Bk: JAX's rule gives a conv with batch and feature axes swapped (f01b_i01o->01bf);
#     nested, 16-54x slower (G's last layer: 5 s instead of 0.1 s at 64x64). JAX's own
#     second-order autodiff makes it worse (14 s for the D block 8x8x256 -> 4x4x512). Here:
#     a canonical conv of the transposed operands.
# Forward-mode (jvp) is not defined for these custom VJPs.


def _crop_negative_padding(x, pads):
    """(x with its negative padding applied, i.e. cropped, the non-negative rest of the padding)."""
    if any(p < 0 for lo_hi in pads for p in lo_hi):
        x = lax.pad(x, jnp.zeros((), x.dtype),
                    ((0, 0, 0), (min(pads[0][0], 0), min(pads[0][1], 0), 0),
                     (min(pads[1][0], 0), min(pads[1][1], 0), 0), (0, 0, 0)))
        pads = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
    return x, pads


def _s1_conv_lax(x, k, pads):
    """Stride-1 cross-correlation in XLA CPU's canonical conv form: NHWC x HWIO -> NHWC,
    non-negative padding (negative padding, i.e. cropping, is done as a slice first)."""
    x, pads = _crop_negative_padding(x, pads)
    return lax.conv_general_dilated(x, k, window_strides=(1, 1), padding=pads,
                                    dimension_numbers=_DN)


# A stride-1 correlation is computed as one matmul to every tap's outputs plus shifted adds
# (_s1_conv_taps) where that beats XLA CPU's convolution:
# - with few output channels, where XLA's convolution is slow: up to this many output channels
#   (and kernel windows of at most _TAPS_MAX_WINDOW taps). Measured with XLA's own convolutions
#   (ganjax.xla_options), 2-core Zen 4, batch 64: G's last layer 16x16x32 -> 4 phase channels
#   1.51 -> 0.46 ms; 16x16x64 -> 4: 2.67 -> 0.70 ms; 8x8x64 -> 8: 1.04 -> 0.85 ms; 32x32x64 -> 12
#   (the 64x64 DCGAN's last layer): 12.3 -> 10.9 ms (batch 256: 2.7x, 2.1x, 1.4x, 1.25x);
# - where the output has more positions than the input (the sub-pixel phases of a transposed
#   convolution, whose padding ring makes a 4x4 input a 5x5 output; a strided convolution's input
#   gradient): the convolution multiplies every window, padding included, Ho*Wo*kh*kw products per
#   channel pair, the taps form only the real pixels', H*W*kh*kw. G's 4x4x128 -> 5x5x(4 x 64)
#   phase convolution: 2.09 -> 1.36 ms at batch 64, 8.07 -> 6.43 ms at 256; 8x8x64 -> 9x9x(4 x 32):
#   1.74 -> 1.52 ms. Where the two count the same products, XLA's convolution is the faster.
_TAPS_MAX_COUT = 16
_TAPS_MAX_WINDOW = 16


def _s1_output_hw(hw, khw, pads) -> tuple[int, int]:
    """The output size of a stride-1 correlation: input + padding - kernel + 1 per axis."""
    return tuple(hw[d] + pads[d][0] + pads[d][1] - khw[d] + 1 for d in range(2))


def _s1_conv_taps(x, k, pads):
    """_s1_conv_lax as x @ k over all taps at once ((N*H*W, Cin) x (Cin, kh*kw*Cout), the input's
    own pixels only), then the sum over taps of each tap's products, shifted to the outputs they
    reach (lax.pad: zeros where a window reads padding, a crop where a product falls outside)."""
    kh, kw, cin, cout = k.shape
    x, pads = _crop_negative_padding(x, pads)
    (top, _), (left, _) = pads
    n, h, w, _ = x.shape
    ho, wo = _s1_output_hw(x.shape[1:3], k.shape[:2], pads)
    y = (x.reshape(-1, cin) @ jnp.transpose(k, (2, 0, 1, 3)).reshape(cin, kh * kw * cout)).reshape(n, h, w, kh, kw, cout)
    out = None
    for i in range(kh):
        for j in range(kw):  # output (a, b) reads input (a + i - top, b + j - left)
            term = lax.pad(y[:, :, :, i, j, :], jnp.zeros((), y.dtype),
                           ((0, 0, 0), (top - i, ho - h - top + i, 0), (left - j, wo - w - left + j, 0), (0, 0, 0)))
            out = term if out is None else out + term
    return out


def _s1_correlate(x, k, pads):
    """Stride-1 cross-correlation by the form that is faster for the shapes (see _TAPS_MAX_COUT)."""
    kh, kw, _, cout = k.shape
    (h, w), (ho, wo) = x.shape[1:3], _s1_output_hw(x.shape[1:3], (kh, kw), pads)
    if kh * kw <= _TAPS_MAX_WINDOW and (cout <= _TAPS_MAX_COUT or ho * wo > h * w):
        return _s1_conv_taps(x, k, pads)
    return _s1_conv_lax(x, k, pads)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _s1_conv(x, k, pads):
    """Stride-1 cross-correlation, NHWC x HWIO, explicit (possibly negative) padding."""
    return _s1_correlate(x, k, pads)


def _s1_conv_fwd(x, k, pads):
    return _s1_conv(x, k, pads), (x, k)


def _s1_conv_bwd(pads, res, dy):
    x, k = res
    return _s1_bx(dy, k, pads, x.shape[1:3]), _s1_bk(x, dy, pads, k.shape[:2])


_s1_conv.defvjp(_s1_conv_fwd, _s1_conv_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _s1_bx(g, k, pads, hw):
    """Input gradient of _s1_conv: the x-adjoint of F(., k) applied to g. With F's output
    Ho = H + lo + hi - kh + 1, it is the stride-1 conv of g with the flipped, in/out-
    transposed kernel and padding (kh-1-lo, kh-1-hi) per axis (its output is H)."""
    kh, kw = k.shape[:2]
    kt = jnp.transpose(k[::-1, ::-1], (0, 1, 3, 2))   # explicit copy, kernel-sized
    bpads = ((kh - 1 - pads[0][0], kh - 1 - pads[0][1]),
             (kw - 1 - pads[1][0], kw - 1 - pads[1][1]))
    dx = _s1_correlate(g, kt, bpads)
    assert dx.shape[1:3] == tuple(hw), (dx.shape, hw)
    return dx


def _s1_bx_fwd(g, k, pads, hw):
    return _s1_bx(g, k, pads, hw), (g, k)


def _s1_bx_bwd(pads, hw, res, h):
    g, k = res
    return _s1_conv(h, k, pads), _s1_bk(h, g, pads, k.shape[:2])


_s1_bx.defvjp(_s1_bx_fwd, _s1_bx_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _s1_bk(x, g, pads, khw):
    """Kernel gradient of _s1_conv: dk[i, j] = sum_{n,h,w} xpad[n, h+i, w+j]^T g[n, h, w], as a
    canonical conv (the form XLA CPU itself rewrites its kernel-gradient conv into, at the top
    level only): batch = cin, features = n, the kernel is g with window (Ho, Wo), output (cin,
    kh, kw, cout). Padding stays in the conv: padding x explicitly before the transpose makes
    this ~4x slower on XLA CPU. (If Ho*Wo exceeds H*W, XLA's ConvOperandSwapper swaps the
    operands: 01fb_o01i->f01b, measured as fast nested as at the top level.) With XLA's own
    convolutions (ganjax.xla_options) it beats one matmul per kernel row over the shifted
    windows, which ganjax used at >= 32 output channels before: the default step 12.0 -> 13.7
    steps/s, wgan-gp 8.4 -> 10.0, the homework's 64x64 DCGAN 0.66 -> 0.73 (2-core Zen 4)."""
    del khw  # the kernel's size follows from the shapes
    dk = _s1_conv_lax(jnp.transpose(x, (3, 1, 2, 0)), jnp.transpose(g, (1, 2, 0, 3)), pads)
    return jnp.transpose(dk, (1, 2, 0, 3))


def _s1_bk_fwd(x, g, pads, khw):
    return _s1_bk(x, g, pads, khw), (x, g)


def _s1_bk_bwd(pads, khw, res, dk):
    x, g = res
    return _s1_bx(g, dk, pads, x.shape[1:3]), _s1_conv(x, dk, pads)


_s1_bk.defvjp(_s1_bk_fwd, _s1_bk_bwd)


def _pads(pads) -> tuple[tuple[int, int], tuple[int, int]]:
    return tuple((int(lo), int(hi)) for lo, hi in pads)  # hashable, static


# --------------------------------------------------------------------------------------
# Transposed convolution
# --------------------------------------------------------------------------------------

def conv_transpose_output_size(size: int, k: int, s: int, p: int, op: int) -> int:
    """PyTorch ConvTranspose2d output size: (size-1)*s - 2p + k + output_padding."""
    return (size - 1) * s - 2 * p + k + op


def conv_transpose(x: jax.Array, kernel: jax.Array, stride: IntOr2 = 1, padding: IntOr2 = 0,
                   output_padding: IntOr2 = 0, impl: str = "auto") -> jax.Array:
    """PyTorch ``ConvTranspose2d`` (no bias, groups=1, dilation=1) on NHWC input.

    Output size per axis is ``(H-1)*s - 2p + k + output_padding``; input pixel ``i``
    contributes ``x[i] * kernel[kh]`` to output ``i*s + kh - p``.

    impl: ``"phase"`` (sub-pixel decomposition, one stride-1 conv; fast on CPU),
    ``"xla"`` (lhs-dilated ``conv_general_dilated``; use on GPU, cuDNN does it natively),
    ``"auto"`` (phase on the CPU backend, else xla). The phase path supports reverse-mode
    differentiation to any order (custom VJPs), not forward mode (``jax.jvp``/``jacfwd``).
    """
    _check_shapes(x, kernel, "conv_transpose")
    s = _pair(stride, "stride")
    p = _pair(padding, "padding")
    op = _pair(output_padding, "output_padding")
    k = kernel.shape[:2]
    for d in range(2):
        if s[d] < 1:
            raise ValueError(f"conv_transpose: stride must be >= 1, got {stride!r}")
        if p[d] < 0:
            raise ValueError(f"conv_transpose: padding must be >= 0, got {padding!r}")
        if not 0 <= op[d] < s[d]:
            raise ValueError(
                f"conv_transpose: output_padding must satisfy 0 <= output_padding < stride, "
                f"got output_padding={output_padding!r}, stride={stride!r}")
        if k[d] < 1:
            raise ValueError(f"conv_transpose: kernel spatial size must be >= 1, got {k}")
    out = tuple(conv_transpose_output_size(x.shape[1 + d], k[d], s[d], p[d], op[d])
                for d in range(2))
    if min(out) < 1:
        raise ValueError(
            f"conv_transpose: output size {out} is not positive for input {x.shape[1:3]}, "
            f"kernel {k}, stride {s}, padding {p}, output_padding {op}")
    impl = _resolve_impl(impl, ("phase", "xla"), "phase", "conv_transpose")
    if impl == "xla":
        return _conv_transpose_xla(x, kernel, s, p, op)
    return _conv_transpose_phase(x, kernel, s, p, out)


def _conv_transpose_xla(x, kernel, s, p, op):
    k = kernel.shape[:2]
    pads = [(k[d] - 1 - p[d], k[d] - 1 - p[d] + op[d]) for d in range(2)]
    return lax.conv_general_dilated(
        x, kernel[::-1, ::-1], window_strides=(1, 1), padding=pads,
        lhs_dilation=s, dimension_numbers=_DN)


def _phase_taps(size: int, k: int, sd: int, pd: int, od: int, r: int):
    """Along one axis, phase r of a transposed conv: (taps m with r + s*m < k, stride-1 padding
    (lo, hi) that yields its outputs q0 .. q1, their number). The stacked form here needs phase 0
    only; the per-phase form in experiments/bench/conv_phase_exact.py calls it for every r."""
    m = _ceil_div(k - r, sd) if r < k else 0
    q0, q1 = pd // sd, (od - 1 + pd) // sd
    nq = q1 - q0 + 1
    lo = m - 1 - q0                # output t reads x[t + q0 - (m-1) ...]
    hi = nq + m - 1 - size - lo    # so that exactly nq outputs are produced (negative: a crop)
    return m, (lo, hi), nq


def _conv_transpose_phase(x, kernel, s, p, out):
    """Sub-pixel decomposition.

    With o' = o + p = i*s + kh and kh = r + s*m (0 <= r < s), output o' = q*s + r only gets
    taps kh = r (mod s):  y_r[q] = sum_m x[q - m] * kernel[r + s*m].  That is a stride-1
    cross-correlation of x with the flipped sub-kernel (size M = ceil(k/s), zero-padded).
    All s*s sub-kernels are stacked along the output-channel axis, so a single conv computes
    every phase; depth-to-space interleaves them and a slice gives the exact output.
    """
    n, h, w, _ = x.shape
    kh, kw, cin, cout = kernel.shape
    sh, sw = s
    # Phase 0 has the most taps, M = ceil(k/s); every phase's sub-kernel is zero-padded to M.
    mh, pad_h, qh = _phase_taps(h, kh, sh, p[0], out[0], 0)
    mw, pad_w, qw = _phase_taps(w, kw, sw, p[1], out[1], 0)
    # Sub-kernels: kernel[r + s*m] -> (m, r); flip m; phases (rh, rw) go to the out axis.
    kp = jnp.pad(kernel, ((0, mh * sh - kh), (0, mw * sw - kw), (0, 0), (0, 0)))
    kp = kp.reshape(mh, sh, mw, sw, cin, cout)[::-1, :, ::-1]
    kp = kp.transpose(0, 2, 4, 1, 3, 5).reshape(mh, mw, cin, sh * sw * cout)
    y = _s1_conv(x, kp, _pads((pad_h, pad_w)))
    return _interleave_phases(y.reshape(n, qh, qw, sh, sw, cout).transpose(0, 1, 3, 2, 4, 5), p, out)


def _interleave_phases(y, p, out):
    """(n, qh, sh, qw, sw, c) phase outputs -> the (n, out_h, out_w, c) output (depth to space,
    then the crop of the padding). Row (q - q0)*s + r <-> o = q*s + r - p, so o = 0 sits at p mod s."""
    n, qh, sh, qw, sw, c = y.shape
    oh, ow = p[0] % sh, p[1] % sw
    return y.reshape(n, qh * sh, qw * sw, c)[:, oh:oh + out[0], ow:ow + out[1], :]


# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------

def conv2d(x: jax.Array, kernel: jax.Array, stride: IntOr2 = 1, padding: IntOr2 = 0,
           impl: str = "auto") -> jax.Array:
    """PyTorch ``Conv2d`` (no bias, groups=1, dilation=1): symmetric zero padding, then
    cross-correlation ``y[o] = sum_kh xpad[o*s + kh] * kernel[kh]`` on NHWC input.

    impl: ``"xla"`` (plain strided ``conv_general_dilated``; use on GPU),
    ``"space_to_depth"`` (fold the stride into channels so it is a stride-1 conv, so its
    input gradient is not an lhs-dilated conv; all derivatives, to any order, go through the
    stride-1 core above, which avoids XLA CPU's pathologically slow kernel gradient in a
    WGAN-GP double backward), ``"auto"`` (space_to_depth on the CPU backend, also at
    stride 1 where it is just the core -- measured 2.6x faster than xla for a 3x3 s1
    WGAN-GP step -- else xla). Like the phase path, space_to_depth supports reverse-mode
    differentiation to any order, not forward mode.
    """
    _check_shapes(x, kernel, "conv2d")
    s = _pair(stride, "stride")
    p = _pair(padding, "padding")
    k = kernel.shape[:2]
    for d in range(2):
        if s[d] < 1:
            raise ValueError(f"conv2d: stride must be >= 1, got {stride!r}")
        if p[d] < 0:
            raise ValueError(f"conv2d: padding must be >= 0, got {padding!r}")
        if k[d] < 1:
            raise ValueError(f"conv2d: kernel spatial size must be >= 1, got {k}")
    out = tuple((x.shape[1 + d] + 2 * p[d] - k[d]) // s[d] + 1 for d in range(2))
    if min(x.shape[1 + d] + 2 * p[d] - k[d] for d in range(2)) < 0:
        raise ValueError(
            f"conv2d: kernel {k} is larger than the padded input "
            f"{tuple(x.shape[1 + d] + 2 * p[d] for d in range(2))}")
    impl = _resolve_impl(impl, ("space_to_depth", "xla"), "space_to_depth", "conv2d")
    if impl == "xla":
        return lax.conv_general_dilated(x, kernel, window_strides=s,
                                        padding=[(p[0], p[0]), (p[1], p[1])],
                                        dimension_numbers=_DN)
    return _conv2d_s2d(x, kernel, s, p, out)


def _conv2d_s2d(x, kernel, s, p, out):
    """kh = s*m + r:  y[o] = sum_{m,r} xpad[(o+m)*s + r] * kernel[s*m + r], i.e. a stride-1
    conv of the space-to-depth input (block size s) with an (M, M, s*s*Cin, Cout) kernel."""
    n, h, w, cin = x.shape
    kh, kw, _, cout = kernel.shape
    sh, sw = s
    mh, mw = _ceil_div(kh, sh), _ceil_div(kw, sw)
    bh, bw = out[0] + mh - 1, out[1] + mw - 1          # blocks needed per axis
    # Pad by p on the left; pad or crop the right so the length is exactly blocks*s.
    # Cropped pixels are never read (the last tap read is (out-1)*s + k-1 < size + 2p).
    zero = jnp.zeros((), x.dtype)
    xp = lax.pad(x, zero, ((0, 0, 0),
                           (p[0], bh * sh - h - p[0], 0),
                           (p[1], bw * sw - w - p[1], 0),
                           (0, 0, 0)))
    xs = xp.reshape(n, bh, sh, bw, sw, cin).transpose(0, 1, 3, 2, 4, 5)
    xs = xs.reshape(n, bh, bw, sh * sw * cin)
    kp = jnp.pad(kernel, ((0, mh * sh - kh), (0, mw * sw - kw), (0, 0), (0, 0)))
    kp = kp.reshape(mh, sh, mw, sw, cin, cout).transpose(0, 2, 1, 3, 4, 5)
    kp = kp.reshape(mh, mw, sh * sw * cin, cout)
    return _s1_conv(xs, kp, ((0, 0), (0, 0)))


# --------------------------------------------------------------------------------------
# Flax modules
# --------------------------------------------------------------------------------------

class ConvTranspose2d(nn.Module):
    """PyTorch-semantics ``ConvTranspose2d`` (NHWC) using :func:`conv_transpose`.

    Use instead of flax ``nn.ConvTranspose``: that is an lhs-dilated conv, pathologically
    slow on XLA CPU (6.4 s vs 0.11 s forward for the DCGAN 4x4->8x8 layer, experiments/bench/bench_conv.py),
    and its ``'SAME'`` padding is one pixel off PyTorch's. Params: ``kernel`` of shape
    ``(k, k, in, out)`` (``== torch_weight.transpose(2, 3, 0, 1)``), optional ``bias``.
    """
    features: int
    kernel_size: IntOr2
    stride: IntOr2 = 1
    padding: IntOr2 = 0
    output_padding: IntOr2 = 0
    use_bias: bool = False
    kernel_init: Callable[..., Any] = nn.initializers.normal(0.02)
    bias_init: Callable[..., Any] = nn.initializers.zeros
    impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        kh, kw = _pair(self.kernel_size, "kernel_size")
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        y = conv_transpose(x, kernel.astype(x.dtype), self.stride, self.padding,
                           self.output_padding, impl=self.impl)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
        return y


class Conv2d(nn.Module):
    """PyTorch-semantics ``Conv2d`` (NHWC, symmetric integer padding) using :func:`conv2d`.

    On CPU a strided conv is run as a stride-1 conv over a space-to-depth input so its input
    gradient (G trained through D, WGAN-GP double backward) avoids XLA CPU's slow
    lhs-dilated convolution. Params: ``kernel`` ``(k, k, in, out)``
    (``== torch_weight.transpose(2, 3, 1, 0)``) and ``bias`` if ``use_bias``.
    """
    features: int
    kernel_size: IntOr2
    stride: IntOr2 = 1
    padding: IntOr2 = 0
    use_bias: bool = True
    kernel_init: Callable[..., Any] = nn.initializers.normal(0.02)
    bias_init: Callable[..., Any] = nn.initializers.zeros
    impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        kh, kw = _pair(self.kernel_size, "kernel_size")
        kernel = self.param("kernel", self.kernel_init, (kh, kw, x.shape[-1], self.features))
        y = conv2d(x, kernel.astype(x.dtype), self.stride, self.padding, impl=self.impl)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
        return y
