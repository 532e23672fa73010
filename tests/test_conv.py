"""Tests for ganjax.models.conv against explicit-loop numpy references (forward and VJPs)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.bench import conv_phase_exact
from ganjax.models import conv as conv_mod
from ganjax.models.conv import Conv2d, ConvTranspose2d, conv2d, conv_transpose

TOL = dict(rtol=1e-9, atol=1e-9)  # float64 throughout (much tighter than the 1e-5 required)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(params=["taps", "conv"])
def core_form(request, monkeypatch):
    """The stride-1 core's forms: ganjax's choice (one matmul over the taps, `_s1_conv_taps`, for
    few output channels or an output larger than the input) or XLA's convolution throughout (what
    it uses otherwise). These tests' channel counts are small, so both are checked against the
    references."""
    if request.param == "conv":
        monkeypatch.setattr(conv_mod, "_TAPS_MAX_WINDOW", 0)
    return request.param


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---------------------------------------------------------------- numpy references (loops)

def ref_conv_transpose(x, k, s, p, op):
    """Scatter-add: x[i] * k[a] lands on output i*s + a - p (PyTorch ConvTranspose2d)."""
    (sh, sw), (ph, pw), (oph, opw) = _pair(s), _pair(p), _pair(op)
    n, h, w, _ = x.shape
    kh, kw, _, co = k.shape
    ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    y = np.zeros((n, ho, wo, co))
    for i, j, a, b in itertools.product(range(h), range(w), range(kh), range(kw)):
        o, q = i * sh + a - ph, j * sw + b - pw
        if 0 <= o < ho and 0 <= q < wo:
            y[:, o, q, :] += x[:, i, j, :] @ k[a, b]
    return y


def ref_conv_transpose_vjp(x, k, g, s, p):
    """Hand-written adjoint of ref_conv_transpose w.r.t. x and k, for cotangent g."""
    (sh, sw), (ph, pw) = _pair(s), _pair(p)
    n, h, w, _ = x.shape
    kh, kw, _, _ = k.shape
    _, ho, wo, _ = g.shape
    gx, gk = np.zeros_like(x), np.zeros_like(k)
    for i, j, a, b in itertools.product(range(h), range(w), range(kh), range(kw)):
        o, q = i * sh + a - ph, j * sw + b - pw
        if 0 <= o < ho and 0 <= q < wo:
            gx[:, i, j, :] += g[:, o, q, :] @ k[a, b].T
            gk[a, b] += x[:, i, j, :].T @ g[:, o, q, :]
    return gx, gk


def ref_conv2d(x, k, s, p):
    """Cross-correlation of the zero-padded input with stride s (PyTorch Conv2d)."""
    (sh, sw), (ph, pw) = _pair(s), _pair(p)
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    n, hp, wp, _ = xp.shape
    kh, kw, _, co = k.shape
    ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    y = np.zeros((n, ho, wo, co))
    for o, q, a, b in itertools.product(range(ho), range(wo), range(kh), range(kw)):
        y[:, o, q, :] += xp[:, o * sh + a, q * sw + b, :] @ k[a, b]
    return y


def ref_conv2d_vjp(x, k, g, s, p):
    (sh, sw), (ph, pw) = _pair(s), _pair(p)
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    kh, kw, _, _ = k.shape
    _, ho, wo, _ = g.shape
    gxp, gk = np.zeros_like(xp), np.zeros_like(k)
    for o, q, a, b in itertools.product(range(ho), range(wo), range(kh), range(kw)):
        gxp[:, o * sh + a, q * sw + b, :] += g[:, o, q, :] @ k[a, b].T
        gk[a, b] += xp[:, o * sh + a, q * sw + b, :].T @ g[:, o, q, :]
    h, w = x.shape[1:3]
    return gxp[:, ph:ph + h, pw:pw + w, :], gk


# ---------------------------------------------------------------- helpers

def _fast_jit(f, *args):
    """jit + run with XLA backend optimisation off: compiling is what dominates these tests
    (tiny arrays), and level 0 halves it. Numerics are unaffected at these tolerances."""
    compiled = jax.jit(f).lower(*args).compile(
        compiler_options={"xla_backend_optimization_level": 0})
    return compiled(*args)


def _check_batch(fn, ref, ref_vjp, configs, impl, seed):
    """Forward and VJP (x and kernel) of many configs, in ONE compiled function, against the
    loop references. config = (xshape, kshape, fn_args); ref(x, k, *fn_args)."""
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal(c[0]) for c in configs]
    ks = [rng.standard_normal(c[1]) for c in configs]
    ys_ref = [ref(x, k, *c[2]) for x, k, c in zip(xs, ks, configs)]
    gs = [rng.standard_normal(y.shape) for y in ys_ref]

    def run(xs, ks, gs):
        out = []
        for x, k, g, c in zip(xs, ks, gs, configs):
            y, vjp = jax.vjp(lambda a, b, c=c: fn(a, b, *c[2], impl=impl), x, k)
            out.append((y,) + vjp(g))
        return out

    outs = _fast_jit(run, xs, ks, gs)
    for c, x, k, g, y_ref, (y, gx, gk) in zip(configs, xs, ks, gs, ys_ref, outs):
        msg = f"{fn.__name__} impl={impl} x{c[0]} k{c[1]} args={c[2]}"
        assert y.dtype == jnp.float64, msg
        assert y.shape == y_ref.shape, msg
        np.testing.assert_allclose(np.asarray(y), y_ref, **TOL, err_msg=msg + " (forward)")
        gx_ref, gk_ref = ref_vjp(x, k, g, *c[2][:2])
        np.testing.assert_allclose(np.asarray(gx), gx_ref, **TOL, err_msg=msg + " (grad x)")
        np.testing.assert_allclose(np.asarray(gk), gk_ref, **TOL, err_msg=msg + " (grad k)")


def _covering_grid():
    """(k, s, p, op) with k in 1..5: every stride 1..3 for each kernel size, every padding
    0..k-1 for each k, and every output_padding 0..s-1 for each s -- 18 configurations
    instead of the 90 of the full product (compiling dominates the run time here)."""
    grid = []
    for k in range(1, 6):
        for t in range(max(k, 3)):
            s = 1 + (t + k) % 3
            grid.append((k, s, t % k, (t + k // 3) % s))
    return grid


# Transposed conv: the covering grid on a non-square 5x6 input, plus special cases.
# (xshape, kshape, (stride, padding, output_padding)).
CT_CONFIGS = [((2, 5, 6, 2), (k, k, 2, 3), (s, p, op)) for k, s, p, op in _covering_grid()]
CT_CONFIGS += [
    ((2, 4, 4, 6), (5, 5, 6, 4), (2, 2, 1)),                  # DCGAN G: 4x4 -> 8x8
    ((1, 2, 5, 3), (3, 5, 3, 2), ((2, 3), (1, 2), (1, 0))),   # non-square everything
    ((1, 5, 3, 2), (4, 2, 2, 3), ((3, 1), (0, 1), (2, 0))),
    ((1, 3, 3, 2), (2, 2, 2, 2), (3, 0, 0)),                  # k < s: gaps in the output
    ((1, 1, 1, 4), (4, 4, 4, 3), (1, 0, 0)),                  # 1x1 -> 4x4
    ((1, 3, 3, 2), (5, 5, 2, 2), (2, 4, 1)),                  # padding > stride
    ((1, 5, 6, 2), (5, 5, 2, 2), (1, 4, 0)),                  # stride 1, padding k-1
]

# Conv: the covering grid on a non-square 6x7 input, plus special cases.
# (xshape, kshape, (stride, padding)).
CONV_CONFIGS = [((2, 6, 7, 2), (k, k, 2, 3), (s, p)) for k, s, p, _ in _covering_grid()]
CONV_CONFIGS += [
    ((2, 8, 8, 3), (4, 4, 3, 5), (2, 1)),                     # DCGAN D: k4 s2 p1
    ((2, 4, 4, 6), (4, 4, 6, 1), (1, 0)),                     # DCGAN D head: 4x4 -> 1x1
    ((1, 7, 9, 2), (3, 5, 2, 3), ((2, 3), (1, 2))),           # non-square everything
    ((1, 9, 5, 2), (2, 4, 2, 2), ((3, 2), (0, 3))),
    ((1, 5, 5, 2), (1, 1, 2, 2), (3, 0)),                     # k < s: skipped pixels
    ((1, 3, 3, 2), (3, 3, 2, 2), (2, 0)),                     # single output pixel
    ((1, 4, 4, 2), (5, 5, 2, 2), (3, 2)),                     # stride 3, not divisible
]


def test_grid_covers_all_values():
    grid = _covering_grid()
    for k in range(1, 6):
        assert {p for kk, _, p, _ in grid if kk == k} == set(range(k))
        assert {s for kk, s, _, _ in grid if kk == k} == {1, 2, 3}
    for s in range(1, 4):
        assert {op for _, ss, _, op in grid if ss == s} == set(range(s))


def test_kernel_grad_matches_lax_autodiff():
    """The core's kernel gradient (a conv of transposed operands) against JAX's own gradient of
    the lax convolution, incl. negative padding (cropping)."""
    rng = np.random.default_rng(6)
    cases = [((2, 5, 6, 3), (3, 3), ((1, 1), (2, 0))), ((1, 6, 5, 2), (2, 4), ((-1, 0), (1, -2))),
             ((2, 4, 4, 4), (1, 1), ((0, 0), (0, 0))), ((1, 7, 7, 2), (5, 2), ((2, -1), (0, 3)))]
    for xs, khw, pads in cases:
        ho = xs[1] + sum(pads[0]) - khw[0] + 1
        wo = xs[2] + sum(pads[1]) - khw[1] + 1
        x, g = rng.standard_normal(xs), rng.standard_normal((xs[0], ho, wo, 3))
        k = np.zeros(khw + (xs[3], 3))
        _, vjp = jax.vjp(lambda k: conv_mod._s1_conv_lax(x, k, pads), k)
        got = _fast_jit(lambda x, g: conv_mod._s1_bk(x, g, pads, khw), x, g)
        np.testing.assert_allclose(np.asarray(got), np.asarray(vjp(g)[0]), **TOL)


@pytest.mark.parametrize("fn, impl", [(conv_transpose, "phase"), (conv_transpose, "xla"),
                                      # the per-phase form kept in experiments/ (no gain measured)
                                      (conv_phase_exact.conv_transpose, "phase_exact")],
                         ids=["phase", "xla", "phase_exact"])
def test_conv_transpose_matches_reference(fn, impl, core_form):
    _check_batch(fn, ref_conv_transpose, ref_conv_transpose_vjp, CT_CONFIGS, impl, seed=0)


@pytest.mark.parametrize("impl", ["space_to_depth", "xla"])
def test_conv2d_matches_reference(impl, core_form):
    _check_batch(conv2d, ref_conv2d, ref_conv2d_vjp, CONV_CONFIGS, impl, seed=1)


def test_auto_and_float32(core_form):
    """impl="auto" runs the CPU fast paths here; float32 in gives float32 out, to 1e-5."""
    assert jax.default_backend() == "cpu"
    x, kern, _ = _data(4, (2, 4, 4, 8), (5, 5, 8, 4))
    x, kern = x.astype(np.float32) * 0.1, kern.astype(np.float32) * 0.1
    xt = np.ascontiguousarray(np.transpose(x, (0, 2, 1, 3)))
    kc = np.ascontiguousarray(kern[:4, :4])
    with jax.enable_x64(False):
        y, z = _fast_jit(lambda a, b, c, d: (conv_transpose(a, b, 2, 2, 1),
                                             conv2d(c, d, 2, 1)), x, kern, xt, kc)
        jp = jax.make_jaxpr(lambda a, b, c, d: (conv_transpose(a, b, 2, 2, 1),
                                                conv2d(c, d, 2, 1)))(x, kern, xt, kc)
    assert y.dtype == jnp.float32 and z.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), ref_conv_transpose(x, kern, 2, 2, 1),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(z), ref_conv2d(xt, kc, 2, 1), rtol=1e-5, atol=1e-5)
    convs = _conv_params(jp)  # 4 output channels: none with the taps form
    assert [tuple(c["lhs_dilation"]) for c in convs] == ([(1, 1), (1, 1)] if core_form == "conv" else [])
    assert [tuple(c["window_strides"]) for c in convs] == ([(1, 1), (1, 1)] if core_form == "conv" else [])


def _data(seed, xshape, kshape):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(xshape), rng.standard_normal(kshape), rng


# ---------------------------------------------------------------- higher-order derivatives

# (fn, fast impl, xshape, kshape, args). The fast paths use hand-written VJPs for every
# order; they are checked against JAX's own autodiff of the plain lax ("xla") forms.
HIGHER_ORDER = [
    (conv_transpose, "phase", (2, 4, 4, 3), (5, 5, 3, 2), (2, 2, 1)),
    (conv_transpose, "phase", (1, 2, 5, 3), (3, 5, 3, 2), ((2, 3), (1, 2), (1, 0))),
    (conv_phase_exact.conv_transpose, "phase_exact", (2, 4, 4, 3), (5, 5, 3, 2), (2, 2, 1)),
    (conv_phase_exact.conv_transpose, "phase_exact", (1, 2, 5, 3), (3, 5, 3, 2),
     ((2, 3), (1, 2), (1, 0))),
    (conv2d, "space_to_depth", (2, 8, 8, 3), (4, 4, 3, 2), (2, 1)),
    (conv2d, "space_to_depth", (1, 7, 9, 2), (3, 5, 2, 3), ((2, 3), (1, 2))),
    (conv2d, "space_to_depth", (1, 5, 6, 2), (3, 3, 2, 2), (1, 1)),
]


def test_double_backward_matches_lax_autodiff(core_form):
    """Gradient of a penalty on both first-order gradients (as in WGAN-GP, plus a kernel-
    gradient term), so every VJP rule of the stride-1 core is differentiated once more."""
    rng = np.random.default_rng(5)
    data = []
    for fn, impl, xs, ks, args in HIGHER_ORDER:
        x, k = rng.standard_normal(xs), rng.standard_normal(ks) * 0.5
        yshape = jax.eval_shape(lambda a, b: fn(a, b, *args, impl="xla"), x, k).shape
        data.append((x, k, rng.standard_normal(yshape), rng.standard_normal(xs),
                     rng.standard_normal(ks)))

    def penalty(fn, args, impl):
        def p(x, k, g, w1, w2):
            gx, gk = jax.grad(lambda a, b: jnp.sum(jnp.tanh(fn(a, b, *args, impl=impl)) * g),
                              (0, 1))(x, k)
            return jnp.sum(w1 * gx ** 2) + jnp.sum(w2 * gk ** 2)
        return jax.value_and_grad(p, (0, 1))

    def run(data):
        return [[penalty(fn, args, i)(*d) for i in (impl, "xla")]
                for (fn, impl, _, _, args), d in zip(HIGHER_ORDER, data)]

    for case, (fast, ref) in zip(HIGHER_ORDER, _fast_jit(run, data)):
        for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(ref)):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), **TOL,
                                       err_msg=f"{case[0].__name__} {case[1:]}")


# ---------------------------------------------------------------- no lhs dilation on CPU paths

def _conv_params(closed_jaxpr):
    """Params of every conv_general_dilated in a jaxpr, including nested (custom_vjp) ones."""
    found = []

    def walk(jp):
        for eqn in jp.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                found.append(eqn.params)
            for v in eqn.params.values():
                for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                    if hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)
                    elif hasattr(sub, "eqns"):
                        walk(sub)

    walk(closed_jaxpr.jaxpr)
    return found


def _conv_lhs_dilations(closed_jaxpr):
    return [tuple(p["lhs_dilation"]) for p in _conv_params(closed_jaxpr)]


@pytest.mark.parametrize("which", ["conv_transpose", "conv2d"])
def test_fast_paths_have_no_lhs_dilation(which):
    """Forward, both gradients and a gradient-penalty double backward are stride-1 convs."""
    x = jnp.ones((2, 8, 8, 3))
    if which == "conv_transpose":
        kern = jnp.ones((5, 5, 3, 4))
        f = lambda a, b: conv_transpose(a, b, 2, 2, 1, impl="phase")
    else:
        kern = jnp.ones((4, 4, 3, 4))
        f = lambda a, b: conv2d(a, b, 2, 1, impl="space_to_depth")

    def penalty(b, a):
        gx = jax.grad(lambda a_: jnp.sum(f(a_, b) ** 2))(a)
        return jnp.sum(gx ** 2)

    jaxprs = [jax.make_jaxpr(jax.grad(lambda a, b: jnp.sum(f(a, b) ** 2), (0, 1)))(x, kern),
              jax.make_jaxpr(jax.grad(penalty))(kern, x)]
    dil = [d for jp in jaxprs for d in _conv_lhs_dilations(jp)]
    assert len(dil) >= 3 and all(d == (1, 1) for d in dil), dil
    # Sanity: the xla transposed conv really is lhs-dilated (so the check above means something).
    if which == "conv_transpose":
        jp = jax.make_jaxpr(lambda a, b: conv_transpose(a, b, 2, 2, 1, impl="xla"))(x, kern)
        assert (2, 2) in _conv_lhs_dilations(jp)



# ---------------------------------------------------------------- canonical convs (nested)
# XLA CPU runs a conv in another form than NHWC x HWIO -> NHWC (e.g. JAX's transpose rules'
# swapped kernel axes) fast only at the top level of a jitted function; inside lax.scan /
# lax.cond (the training loop) it becomes a generic loop, 3-50x slower. The fast paths must
# therefore emit only canonical stride-1 convs, in every derivative order.

_CANONICAL_DN = jax.lax.conv_dimension_numbers((1, 1, 1, 1), (1, 1, 1, 1),
                                               ("NHWC", "HWIO", "NHWC"))


def _penalty_grad(fn, impl, args):
    """Value and gradient (x and k) of a penalty on both first-order gradients: runs the
    forward, both gradients and every VJP of them."""
    def p(x, k, g):
        gx, gk = jax.grad(lambda a, b: jnp.sum(jnp.tanh(fn(a, b, *args, impl=impl)) * g),
                          (0, 1))(x, k)
        return jnp.sum(gx ** 2) + jnp.sum(gk ** 2)
    return jax.value_and_grad(p, (0, 1))


def _higher_order_inputs(case):
    fn, _, xs, ks, args = case
    x, k = jnp.ones(xs), jnp.ones(ks)
    yshape = jax.eval_shape(lambda a, b: fn(a, b, *args, impl="xla"), x, k).shape
    return x, k, jnp.ones(yshape)


def test_fast_paths_emit_only_canonical_convs(monkeypatch):
    monkeypatch.setattr(conv_mod, "_TAPS_MAX_WINDOW", 0)  # the convolutions themselves (taps emit none)
    n_convs = 0
    for case in HIGHER_ORDER:
        fn, impl, _, _, args = case
        for c in _conv_params(jax.make_jaxpr(_penalty_grad(fn, impl, args))(
                *_higher_order_inputs(case))):
            n_convs += 1
            assert c["dimension_numbers"] == _CANONICAL_DN, (case, c)
            assert tuple(c["window_strides"]) == (1, 1), (case, c)
            assert tuple(c["lhs_dilation"]) == (1, 1), (case, c)
            assert tuple(c["rhs_dilation"]) == (1, 1), (case, c)
            assert all(p >= 0 for lo_hi in c["padding"] for p in lo_hi), (case, c)
            assert c["feature_group_count"] == 1 and c["batch_group_count"] == 1, (case, c)
    assert n_convs >= 3 * len(HIGHER_ORDER)


# XLA's ConvOperandSwapper turns a canonical conv whose window is larger than its input (the
# core's conv-form kernel gradient, when the padded output exceeds the input) into this form;
# measured as fast nested as at the top level (e.g. a k4 s2 p1 transposed conv to 1 or 3
# channels, kernel gradient), unlike JAX's rules' b01f_01oi->b01f and f01b_i01o->01bf.
_SWAPPED_CANONICAL = "dim_labels=01fb_o01i->f01b,"


def test_fast_paths_canonical_in_nested_xla_computation(monkeypatch):
    """The same, checked where it matters: XLA CPU's optimized HLO of all of it inside a
    lax.cond inside a lax.scan has only canonical convolutions (dim_labels b01f_01io->b01f,
    or XLA's operand swap of one; no stride or dilation) -- with JAX's own transpose rules
    it would not."""
    monkeypatch.setattr(conv_mod, "_TAPS_MAX_WINDOW", 0)  # the convolutions themselves (taps emit none)
    assert jax.default_backend() == "cpu"
    inputs = [_higher_order_inputs(case) for case in HIGHER_ORDER]

    def run(inputs):
        def body(carry, _):
            def branch(inputs):
                return [_penalty_grad(fn, impl, args)(*d)
                        for (fn, impl, _, _, args), d in zip(HIGHER_ORDER, inputs)]
            out = jax.lax.cond(carry[0][0][0, 0, 0, 0] > -1e30, branch, branch, carry)
            return carry, out
        return jax.lax.scan(body, inputs, None, length=2)

    hlo = jax.jit(run).lower(inputs).compile(
        compiler_options={"xla_backend_optimization_level": 0}).as_text()
    convs = [line for line in hlo.splitlines() if " convolution(" in line]
    assert len(convs) >= 3 * len(HIGHER_ORDER)
    for line in convs:
        assert "dim_labels=b01f_01io->b01f," in line or _SWAPPED_CANONICAL in line, line
        assert not any(w in line for w in ("stride=", "lhs_dilate=", "rhs_dilate=")), line
    assert sum(_SWAPPED_CANONICAL in line for line in convs) < len(convs) // 4


# ---------------------------------------------------------------- modules

def test_modules_shapes_dcgan():
    key = jax.random.PRNGKey(0)
    # Generator: 4x4 -> 8 -> 16 -> 32 -> 64 with k5 s2 p2 op1 (shapes only: eval_shape).
    h = jax.ShapeDtypeStruct((2, 4, 4, 16), jnp.float32)
    for cout in (8, 4, 2, 3):
        m = ConvTranspose2d(cout, 5, 2, 2, 1)
        params = jax.eval_shape(m.init, key, h)
        assert set(params["params"]) == {"kernel"}
        assert params["params"]["kernel"].shape == (5, 5, h.shape[-1], cout)
        h = jax.eval_shape(m.apply, params, h)
    assert h.shape == (2, 64, 64, 3)
    # Discriminator: 64 -> 32 -> 16 -> 8 -> 4 (k4 s2 p1) -> 1 (k4 s1 p0).
    d = jax.ShapeDtypeStruct((2, 64, 64, 3), jnp.float32)
    for cout in (4, 8, 8, 16):
        m = Conv2d(cout, 4, 2, 1)
        params = jax.eval_shape(m.init, key, d)
        assert params["params"]["kernel"].shape == (4, 4, d.shape[-1], cout)
        assert params["params"]["bias"].shape == (cout,)
        d = jax.eval_shape(m.apply, params, d)
    assert d.shape == (2, 4, 4, 16)
    m = Conv2d(1, 4, 1, 0, use_bias=False)
    params = jax.eval_shape(m.init, key, d)
    assert set(params["params"]) == {"kernel"}
    assert jax.eval_shape(m.apply, params, d).shape == (2, 1, 1, 1)
    # Non-square kernel / stride / padding given as tuples.
    m = ConvTranspose2d(3, (3, 5), (2, 3), (1, 2), (1, 0))
    params = jax.eval_shape(m.init, key, jax.ShapeDtypeStruct((1, 2, 5, 4), jnp.float32))
    assert params["params"]["kernel"].shape == (3, 5, 4, 3)
    out = jax.eval_shape(m.apply, params, jax.ShapeDtypeStruct((1, 2, 5, 4), jnp.float32))
    assert out.shape == (1, 4, 13, 3)   # (2-1)*2-2*1+3+1, (5-1)*3-2*2+5+0


def test_module_values_init_std_and_bias():
    x = np.random.default_rng(7).standard_normal((1, 4, 4, 16))
    m = ConvTranspose2d(48, 5, 2, 2, 1, use_bias=True)
    c = Conv2d(8, 4, 2, 1)

    def run(x):
        pt = m.init(jax.random.PRNGKey(1), x)
        pc = c.init(jax.random.PRNGKey(3), x)
        return (pt, m.apply(pt, x), conv_transpose(x, pt["params"]["kernel"], 2, 2, 1),
                pc, c.apply(pc, x), conv2d(x, pc["params"]["kernel"], 2, 1))

    pt, y, y0, pc, z, z0 = jax.tree.map(np.asarray, _fast_jit(run, x))
    assert abs(np.std(pt["params"]["kernel"]) - 0.02) < 0.002
    assert pt["params"]["bias"].shape == (48,) and y.shape == (1, 8, 8, 48)
    np.testing.assert_allclose(y, y0 + pt["params"]["bias"], rtol=1e-12)
    assert z.shape == (1, 2, 2, 8) and not np.any(pc["params"]["bias"])
    np.testing.assert_allclose(z, z0, rtol=1e-12)


# ---------------------------------------------------------------- argument validation

@pytest.mark.parametrize("kwargs", [
    dict(stride=2, padding=0, output_padding=2),        # output_padding >= stride
    dict(stride=1, padding=0, output_padding=1),
    dict(stride=2, padding=-1, output_padding=0),       # negative padding
    dict(stride=2, padding=0, output_padding=-1),
    dict(stride=0, padding=0, output_padding=0),
    dict(stride=(2, 2, 2), padding=0, output_padding=0),
    dict(stride=1, padding=3, output_padding=0),        # empty output
    dict(stride=2, padding=0, output_padding=0, impl="nope"),
    dict(stride=2, padding=0, output_padding=0, impl="phase_exact"),  # in experiments/ only
])
def test_conv_transpose_invalid(kwargs):
    with pytest.raises(ValueError):
        conv_transpose(jnp.zeros((1, 2, 2, 3)), jnp.zeros((3, 3, 3, 4)), **kwargs)


def test_conv_transpose_channel_mismatch():
    with pytest.raises(ValueError, match="channels"):
        conv_transpose(jnp.zeros((1, 2, 2, 3)), jnp.zeros((3, 3, 5, 4)), 2)


@pytest.mark.parametrize("args,kwargs", [
    ((jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 4))), dict(stride=2, padding=-1)),
    ((jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 4))), dict(stride=0, padding=0)),
    ((jnp.zeros((1, 2, 2, 3)), jnp.zeros((4, 4, 3, 4))), dict(stride=1, padding=0)),
    ((jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 2, 4))), dict(stride=1, padding=0)),
    ((jnp.zeros((4, 4, 3)), jnp.zeros((3, 3, 3, 4))), dict(stride=1, padding=0)),
    ((jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 4))), dict(stride=1, impl="phase")),
])
def test_conv2d_invalid(args, kwargs):
    with pytest.raises(ValueError):
        conv2d(*args, **kwargs)


def test_module_invalid_output_padding():
    with pytest.raises(ValueError, match="output_padding"):
        jax.eval_shape(ConvTranspose2d(4, 5, 2, 2, 2).init, jax.random.PRNGKey(0),
                       jax.ShapeDtypeStruct((1, 4, 4, 3), jnp.float32))


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((0, 0), (0, 0)), ((2, -1), (0, 1))])
def test_matmul_forms_in_the_conv_bench_compute_the_stride_1_core(pads):
    """experiments/bench/bench_conv_matmul.py times im2col + dot against XLA's convolution (and
    rejected it); its figures mean something only if both forms compute the same convolution."""
    from experiments.bench.bench_conv_matmul import conv_im2col, conv_rows
    from ganjax.models.conv import _s1_conv_lax

    x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 5, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 3, 4))
    ref = _s1_conv_lax(x, k, pads)
    for form in (conv_im2col, conv_rows):
        np.testing.assert_allclose(form(x, k, pads), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pads", [((1, 1), (1, 1)), ((2, 0), (1, 2)), ((-1, 1), (1, -1)), ((3, 3), (3, 3))])
def test_taps_form_equals_the_convolution_with_padding_and_crops(pads):
    """The taps form multiplies only the input's own pixels and shifts each tap's products onto
    the outputs they reach: zero where a window reads padding, cropped where a product falls
    outside (negative padding)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 5, 6, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (4, 3, 3, 20))
    np.testing.assert_allclose(conv_mod._s1_conv_taps(x, k, pads), conv_mod._s1_conv_lax(x, k, pads),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("hw, pads, cout, form", [
    ((4, 4), ((1, 1), (1, 1)), 256, "taps"),   # a transposed conv's phases: 4x4 -> 5x5, more outputs than inputs
    ((8, 8), ((1, 1), (1, 1)), 64, "conv"),    # a 3x3 'same' conv: as many outputs as inputs
    ((9, 9), ((0, 0), (0, 0)), 64, "conv"),    # space-to-depth conv 9x9 -> 8x8
    ((16, 16), ((1, 1), (1, 1)), 4, "taps"),   # few output channels
])
def test_the_stride_1_core_takes_the_taps_form_by_shape(hw, pads, cout, form):
    """The taps form where it multiplies fewer pixels than the convolution (an output larger than
    the input) or where XLA's convolution is slow (few output channels); the convolution
    otherwise, for any number of channels."""
    kh = 2 if hw != (8, 8) else 3
    x = jax.ShapeDtypeStruct((2, *hw, 8), jnp.float32)
    k = jax.ShapeDtypeStruct((kh, kh, 8, cout), jnp.float32)
    convs = _conv_params(jax.make_jaxpr(lambda x, k: conv_mod._s1_correlate(x, k, pads))(x, k))
    assert len(convs) == (form == "conv"), convs
