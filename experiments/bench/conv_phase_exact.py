"""The "phase_exact" CPU form of PyTorch's ConvTranspose2d: measured as no gain, so kept out of ganjax.

ganjax.models.conv runs a transposed convolution on CPU by sub-pixel (phase) decomposition,
``impl="phase"``: all s*s phases as ONE stride-1 convolution over sub-kernels zero-padded to
ceil(k/s)^2 taps, so for k5 s2 it multiplies 36 taps where the kernel has 25. This form runs one
stride-1 convolution per phase over exactly its taps (3x3, 3x2, 2x3 and 2x2 for k5 s2). On the whole
training step of the homework's 64x64 DCGAN it is within the noise of "phase" (README.md, section
"Speed", CPU; measured by experiments/bench/bench_g_conv_impl.py): the four smaller convolutions run
less efficiently than the one stacked convolution.

It shares the package's phase arithmetic (``_phase_taps``, ``_interleave_phases``) and its stride-1
core with hand-written VJPs (``_s1_conv``), so like "phase" it supports reverse-mode
differentiation to any order (the WGAN-GP double backward) and emits only canonical stride-1
convolutions. Entry points:

    conv_transpose(x, kernel, stride, padding, output_padding, impl="phase_exact")
        ganjax.models.conv.conv_transpose with the extra impl "phase_exact" (tests/test_conv.py)
    with phase_exact_in_models(): ...
        while tracing inside the block, ganjax's ConvTranspose2d(impl="phase_exact") (and so
        DCGANGenerator(conv_impl="phase_exact")) runs this form (bench_g_conv_impl.py)
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

from ganjax.models import conv as _conv
from ganjax.models.conv import _interleave_phases, _pads, _pair, _phase_taps, _s1_conv

IMPL = "phase_exact"
_package_conv_transpose = _conv.conv_transpose  # the package's function, whatever is patched later


def conv_transpose(x: jax.Array, kernel: jax.Array, stride=1, padding=0, output_padding=0,
                   impl: str = IMPL) -> jax.Array:
    """ganjax.models.conv.conv_transpose (PyTorch ``ConvTranspose2d``, NHWC x HWIO), plus
    ``impl="phase_exact"``: one stride-1 convolution per sub-pixel phase over exactly its taps.
    Every other impl is the package's own."""
    if impl != IMPL:
        return _package_conv_transpose(x, kernel, stride, padding, output_padding, impl=impl)
    # The package's checks of the arguments and its output size (shapes only: nothing runs).
    out = jax.eval_shape(
        lambda a, b: _package_conv_transpose(a, b, stride, padding, output_padding, impl="xla"),
        x, kernel).shape[1:3]
    return _conv_transpose_phase_exact(x, kernel, _pair(stride, "stride"), _pair(padding, "padding"), out)


def _conv_transpose_phase_exact(x, kernel, s, p, out):
    """The sub-pixel decomposition of ganjax.models.conv._conv_transpose_phase, with one stride-1
    conv per phase (rh, rw) over exactly its taps kernel[rh + s*mh, rw + s*mw]: for k5 s2 the four
    phases have 3x3, 3x2, 2x3 and 2x2 taps, 25 in all where the stacked form multiplies 36 (zeros
    included)."""
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    sh, sw = s
    rows = []
    for rh in range(sh):
        mh, pad_h, qh = _phase_taps(h, kh, sh, p[0], out[0], rh)
        row = []
        for rw in range(sw):
            mw, pad_w, qw = _phase_taps(w, kw, sw, p[1], out[1], rw)
            if mh == 0 or mw == 0:  # k < s: this phase gets no taps
                row.append(jnp.zeros((n, qh, qw, cout), x.dtype))
                continue
            sub = kernel[rh::sh, rw::sw][:mh, :mw][::-1, ::-1]  # taps m, flipped: a cross-correlation
            row.append(_s1_conv(x, sub, _pads((pad_h, pad_w))))
        rows.append(jnp.stack(row, axis=3))                      # (n, qh, qw, sw, cout)
    return _interleave_phases(jnp.stack(rows, axis=2), p, out)  # (n, qh, sh, qw, sw, cout)


@contextlib.contextmanager
def phase_exact_in_models():
    """Within the block, ganjax.models.conv.conv_transpose is :func:`conv_transpose` above, so
    the package's ConvTranspose2d modules accept ``impl="phase_exact"`` when they are traced
    (jit lowering, init, apply); other impls run unchanged. Restored on exit."""
    _conv.conv_transpose = conv_transpose
    try:
        yield
    finally:
        _conv.conv_transpose = _package_conv_transpose
