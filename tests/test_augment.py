"""DiffAugment (Zhao et al. 2020) against a slow numpy reference that follows the paper's code
sample by sample, with the same random parameters as the module draws.

diff_augment(key, x, policy) is augment._augment(augment._bits(key, n), x, policy): the random words,
then a deterministic map. Most tests feed the map words drawn by numpy, many shapes cheaply; a few
go through keys (a threefry program costs seconds of compile time on a busy CPU)."""

import functools
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import augment
from ganjax.augment import POLICIES, diff_augment, parse_policy
from ganjax.errors import UserError

ALL = POLICIES
SINGLE_AND_ALL = [(p,) for p in POLICIES] + [ALL]
CASE_POLICIES = tuple(SINGLE_AND_ALL) + (("cutout", "translation"),)
SHAPE = (6, 16, 16, 3)

FROM_BITS = {name: augment._AUGMENT[name][0] for name in POLICIES}


def images(shape=SHAPE, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def random_words(n, seed=1):
    """Random words in the layout of augment._bits."""
    return np.random.default_rng(seed).integers(0, 2**32, (len(POLICIES), augment._WORDS, n), dtype=np.uint32)


@functools.partial(jax.jit, static_argnums=2)
def _run(bits, x, policies, weight):
    """For each policy: T(x) and the gradient of sum(T(x) * weight) w.r.t. x; and the parameters."""
    _, h, w, _ = x.shape
    results = []
    for policy in policies:
        out, vjp = jax.vjp(lambda x: augment._augment(bits, x, policy), x)
        (grad,) = vjp(weight.astype(out.dtype))
        results.append((out, grad))
    params = {name: FROM_BITS[name](bits[POLICIES.index(name)], h, w) for name in POLICIES}
    return results, params


def to_numpy_params(params):
    return {name: tuple(np.asarray(p) for p in ps) for name, ps in params.items()}


@functools.lru_cache(maxsize=None)
def cases(shape=SHAPE, dtype="float32", policies=CASE_POLICIES):
    """The map on a fixed batch with fixed words, for each policy: x, the weights w, the output y,
    grad of sum(y * w) w.r.t. x, and the parameters of each policy (numpy)."""
    x, w = images(shape, seed=0), images(shape, seed=2)
    results, params = _run(random_words(shape[0]), jnp.asarray(x, dtype), policies, jnp.asarray(w))
    params = to_numpy_params(params)
    return {policy: SimpleNamespace(x=x, w=w, out=out, y=np.asarray(out, np.float32),
                                    grad=np.asarray(grad, np.float32), params=params)
            for policy, (out, grad) in zip(policies, results)}


def case(policy, **kwargs):
    return cases(**kwargs)[policy]


# --- the reference: the paper's code, one sample at a time, NHWC, float64 ---

def ref_color(x, p):
    brightness, saturation, contrast = p
    out = np.empty(x.shape, np.float64)
    for i, img in enumerate(x.astype(np.float64)):
        img = img + brightness[i]
        m = img.mean(axis=2, keepdims=True)
        img = (img - m) * saturation[i] + m
        m = img.mean()
        out[i] = (img - m) * contrast[i] + m
    return out


def ref_translation(x, p):
    """As the paper's code: pad by one pixel of zeros, clamp the shifted index into the padding."""
    dy, dx = p
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.empty_like(x)
    for i in range(n):
        for r in range(h):
            for c in range(w):
                out[i, r, c] = padded[i, min(max(r + dy[i] + 1, 0), h + 1), min(max(c + dx[i] + 1, 0), w + 1)]
    return out


def ref_cutout_mask(shape, p):
    """As the paper's code: a cut x cut grid of clamped indices around the offset, set to 0."""
    oy, ox = p
    n, h, w, _ = shape
    ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
    mask = np.ones((n, h, w), np.float64)
    for i in range(n):
        for a in range(ch):
            for b in range(cw):
                mask[i, min(max(a + oy[i] - ch // 2, 0), h - 1), min(max(b + ox[i] - cw // 2, 0), w - 1)] = 0
    return mask[..., None]


def ref_cutout(x, p):
    return x * ref_cutout_mask(x.shape, p)


# gradients of sum(T(x) * g) w.r.t. x, written from the maps above (not by differentiating them)

def ref_color_vjp(g, p):
    """Contrast y = k y' + (1 - k) mean(y'), saturation y' = s x' + (1 - s) mean_c(x'), brightness
    x' = x + b: the transposes of these averaging maps are the maps themselves."""
    _, s, k = (v[:, None, None, None] for v in p)
    g = k * g + (1 - k) * g.mean(axis=(1, 2, 3), keepdims=True)
    return s * g + (1 - s) * g.mean(axis=3, keepdims=True)


def ref_translation_vjp(g, p):
    """Input pixel (r, c) lands on output pixel (r - dy, c - dx), if that is inside the image."""
    dy, dx = p
    n, h, w, _ = g.shape
    out = np.zeros_like(g)
    for i in range(n):
        for r in range(h):
            for c in range(w):
                if 0 <= r - dy[i] < h and 0 <= c - dx[i] < w:
                    out[i, r, c] = g[i, r - dy[i], c - dx[i]]
    return out


def ref_cutout_vjp(g, p):
    return g * ref_cutout_mask(g.shape, p)


REF = {"color": ref_color, "translation": ref_translation, "cutout": ref_cutout}
REF_VJP = {"color": ref_color_vjp, "translation": ref_translation_vjp, "cutout": ref_cutout_vjp}


def reference(x, params, policy):
    out = x.astype(np.float64)
    for name in policy:
        out = REF[name](out, params[name])
    return out


def reference_grad(w, params, policy):
    g = w.astype(np.float64)
    for name in reversed(policy):
        g = REF_VJP[name](g, params[name])
    return g


def assert_matches_reference(c, policy):
    np.testing.assert_allclose(c.y, reference(c.x, c.params, policy), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c.grad, reference_grad(c.w, c.params, policy), rtol=1e-5, atol=1e-6)


# --- through keys: diff_augment itself, with the parameters the key gives ---

KEYED_SHAPE = (16, 16, 16, 3)
KEYED_POLICIES = (ALL, ("translation",), ("cutout", "translation"))


@jax.jit
def _keyed(key, x):
    n, h, w, _ = x.shape
    outs = [diff_augment(key, x, policy) for policy in KEYED_POLICIES]
    params = {"color": augment._color_params(key, n), "translation": augment._translation_params(key, n, h, w),
              "cutout": augment._cutout_params(key, n, h, w)}
    return outs, params, augment._bits(key, n)


@functools.lru_cache(maxsize=None)
def keyed(seed, raw_key=False):
    x = images(KEYED_SHAPE)
    key = jax.random.PRNGKey(seed) if raw_key else jax.random.key(seed)
    outs, params, bits = _keyed(key, jnp.asarray(x))
    return SimpleNamespace(x=x, outs=dict(zip(KEYED_POLICIES, (np.asarray(o) for o in outs))),
                           params=to_numpy_params(params), bits=np.asarray(bits))


@pytest.mark.parametrize("policy", KEYED_POLICIES)
def test_diff_augment_matches_reference_with_the_key_parameters(policy):
    k = keyed(1)
    assert k.outs[policy].shape == k.x.shape and k.outs[policy].dtype == np.float32
    np.testing.assert_allclose(k.outs[policy], reference(k.x, k.params, policy), rtol=1e-5, atol=1e-5)


def test_diff_augment_is_the_map_of_the_key_words():
    k = keyed(1)
    (out, _), = _run(k.bits, jnp.asarray(k.x), (ALL,), jnp.asarray(k.x))[0]
    np.testing.assert_allclose(np.asarray(out), k.outs[ALL], rtol=1e-6, atol=1e-6)


def test_same_key_same_output_bitwise():
    x = jnp.asarray(images(KEYED_SHAPE))
    a, pa, _ = _keyed(jax.random.key(1), x)
    b, pb, _ = _keyed(jax.random.key(1), x)
    for u, v in zip(a, b):
        assert np.asarray(u).tobytes() == np.asarray(v).tobytes()
    assert all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)))


def test_raw_uint32_keys_work():
    raw, typed = keyed(1, raw_key=True), keyed(1)
    np.testing.assert_array_equal(raw.bits, typed.bits)  # jax.random.PRNGKey(1) is jax.random.key(1)'s data
    np.testing.assert_allclose(raw.outs[ALL], typed.outs[ALL], rtol=1e-6, atol=1e-6)


def test_different_keys_and_samples_draw_independently():
    a, b = keyed(13), keyed(14)
    for name in ALL:
        for pa, pb in zip(a.params[name], b.params[name]):
            assert np.mean(pa != pb) > 0.5  # two keys (the real and the fake batch): different draws
            assert len(np.unique(pa)) > 3  # within a batch: not one draw for all samples
    assert not np.array_equal(a.outs[ALL], b.outs[ALL])


def test_policy_draws_do_not_depend_on_the_other_policies():
    k = keyed(1)
    alone = ref_translation(k.x, k.params["translation"])
    np.testing.assert_array_equal(k.outs[("translation",)], alone)
    # with color and cutout before and after, the translation is still that one
    together = ref_cutout(ref_translation(ref_color(k.x, k.params["color"]), k.params["translation"]),
                          k.params["cutout"])
    np.testing.assert_allclose(k.outs[ALL], together, rtol=1e-5, atol=1e-5)


# --- the map, against the reference: shapes, dtypes, gradients ---

@pytest.mark.parametrize("policy", CASE_POLICIES)
@pytest.mark.parametrize("channels", [1, 3])
def test_matches_numpy_reference(policy, channels):
    c = case(policy, shape=(6, 16, 16, channels))
    assert c.out.shape == c.x.shape and c.out.dtype == jnp.float32
    assert_matches_reference(c, policy)


@pytest.mark.parametrize("policy", SINGLE_AND_ALL)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_shape_and_dtype_preserved(policy, channels, dtype):
    x = jax.ShapeDtypeStruct((4, 8, 8, channels), dtype)
    y = jax.eval_shape(lambda k, x: diff_augment(k, x, policy), jax.random.key(0), x)
    assert y.shape == x.shape and y.dtype == dtype


@pytest.mark.parametrize("channels", [1, 3])
def test_bfloat16_follows_float32(channels):
    shape = (6, 16, 16, channels)
    c16 = case(ALL, shape=shape, dtype="bfloat16", policies=(ALL,))
    c32 = case(ALL, shape=shape)
    assert c16.out.dtype == jnp.bfloat16 and c16.out.shape == shape
    np.testing.assert_allclose(c16.y, c32.y, atol=0.05)
    np.testing.assert_allclose(c16.grad, c32.grad, atol=0.02)
    # colour computes in float32: the result is the exact one on the rounded input, rounded once
    x16 = np.asarray(jnp.asarray(c16.x, jnp.bfloat16), np.float64)
    np.testing.assert_allclose(c16.y, reference(x16, c16.params, ALL), rtol=2**-8, atol=1e-6)


@pytest.mark.parametrize("size", [8, 32, 64])
def test_resolutions(size):
    assert_matches_reference(case(ALL, shape=(2, size, size, 3), policies=(ALL,)), ALL)


def test_non_square_images_use_each_axis_bound():
    c = case(ALL, shape=(8, 8, 24, 1), policies=(ALL,))
    dy, dx = c.params["translation"]
    assert augment.translation_bound(8) == 1 and augment.translation_bound(24) == 3
    assert set(np.abs(dy)) <= {0, 1} and np.abs(dx).max() > 1
    assert_matches_reference(c, ALL)


def test_bounds_and_sizes_as_in_the_paper_code():
    assert [augment.translation_bound(s) for s in (3, 4, 8, 28, 32, 64)] == [0, 1, 1, 4, 4, 8]
    assert [augment.cutout_size(s) for s in (3, 8, 28, 32, 64)] == [2, 4, 14, 16, 32]


@functools.partial(jax.jit, static_argnums=(1, 2))
def _params(bits, h, w):
    return {name: FROM_BITS[name](bits[POLICIES.index(name)], h, w) for name in POLICIES}


def test_parameter_ranges_are_covered_end_to_end():
    p = to_numpy_params(_params(random_words(4000), 32, 9))
    color, (dy, dx), (oy, ox) = p["color"], p["translation"], p["cutout"]
    for v, lo, hi in zip(color, (-0.5, 0.0, 0.5), (0.5, 2.0, 1.5)):
        assert v.min() >= lo and v.max() < hi
        assert v.min() < lo + 0.01 and v.max() > hi - 0.01
    # size 32: shifts -4..4; size 9: -1..1
    assert set(dy.tolist()) == set(range(-4, 5)) and set(dx.tolist()) == set(range(-1, 2))
    # size 32, cut 16 (even): offsets 0..32; size 9, cut 5 (odd): offsets 0..8
    assert set(oy.tolist()) == set(range(0, 33)) and set(ox.tolist()) == set(range(0, 9))
    # the extreme words give the ends of the intervals, the open ones excluded
    lo = to_numpy_params(_params(np.zeros((3, augment._WORDS, 1), np.uint32), 32, 9))
    hi = to_numpy_params(_params(np.full((3, augment._WORDS, 1), 2**32 - 1, np.uint32), 32, 9))
    assert [float(v[0]) for v in lo["color"]] == [-0.5, 0.0, 0.5]
    assert all(float(v[0]) < bound for v, bound in zip(hi["color"], (0.5, 2.0, 1.5)))
    assert [int(v[0]) for v in lo["translation"]] == [-4, -1] and [int(v[0]) for v in lo["cutout"]] == [0, 0]


def test_cutout_cuts_a_square_of_the_right_size_inside_the_image():
    c = case(("cutout",), shape=(16, 16, 16, 3), policies=(("cutout",),))
    oy, ox = c.params["cutout"]
    zeros = (c.y == 0).sum(axis=(1, 2, 3))
    for i in range(len(c.y)):
        rows = np.clip([oy[i] - 4, oy[i] + 4], 0, 16)
        cols = np.clip([ox[i] - 4, ox[i] + 4], 0, 16)
        assert zeros[i] == 3 * (rows[1] - rows[0]) * (cols[1] - cols[0]) > 0
    assert zeros.max() == 3 * 8 * 8 and zeros.min() < 3 * 8 * 8  # whole inside, clipped at the border


def test_zero_shift_bound_is_identity():
    c = case(("translation",), shape=(4, 3, 3, 3), policies=(("translation",),))
    assert augment.translation_bound(3) == 0
    np.testing.assert_array_equal(c.y, c.x)
    np.testing.assert_array_equal(c.grad, c.w)


def test_empty_policy_returns_x():
    x = jnp.asarray(images())
    assert diff_augment(jax.random.key(0), x, ()) is x


def test_bad_policy_argument():
    x = jnp.asarray(images())
    with pytest.raises(TypeError):
        diff_augment(jax.random.key(0), x, "color")
    with pytest.raises(ValueError):
        diff_augment(jax.random.key(0), x, ("flip",))
    with pytest.raises(ValueError):
        diff_augment(jax.random.key(0), x, ("color", "color"))


def test_translation_gradient_is_the_shifted_weight():
    c = case(("translation",))
    dy, dx = c.params["translation"]
    assert np.any(dy != 0) and np.any(dx != 0)
    np.testing.assert_array_equal(c.grad, ref_translation_vjp(c.w, (dy, dx)))
    assert np.sum(c.grad == 0) > 0  # pixels shifted out of the image get none


def test_cutout_gradient_is_the_weight_outside_the_cut():
    c = case(("cutout",))
    np.testing.assert_array_equal(c.grad, c.w * ref_cutout_mask(c.x.shape, c.params["cutout"]))


@pytest.mark.parametrize("channels", [1, 3])
def test_color_gradient_against_finite_differences(channels):
    shape = (6, 16, 16, channels)
    c = case(("color",), shape=shape)
    color = CASE_POLICIES.index(("color",))
    words = random_words(shape[0])

    def f(x):
        (out, _) = _run(words, jnp.asarray(x), CASE_POLICIES, jnp.asarray(c.w))[0][color]
        return float(np.sum(np.asarray(out, np.float64) * c.w))

    # the map is affine in x: a central difference along any direction is exact up to rounding
    v = images(shape, seed=3)
    eps = 0.5
    fd = (f(c.x + eps * v) - f(c.x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(fd, np.sum(c.grad.astype(np.float64) * v), rtol=1e-4)
    if channels == 1:  # saturation does nothing to one channel: only contrast mixes pixels
        _, _, k = c.params["color"]
        k = k[:, None, None, None]
        np.testing.assert_allclose(c.grad, k * c.w + (1 - k) * c.w.mean(axis=(1, 2, 3), keepdims=True),
                                   rtol=1e-5, atol=1e-6)


# --- parse_policy ---

def test_parse_policy_canonical_order_and_dedup():
    assert parse_policy("color,translation,cutout") == POLICIES
    assert parse_policy("cutout,color") == ("color", "cutout")
    assert parse_policy("translation, color ,translation") == ("color", "translation")
    assert parse_policy("cutout") == ("cutout",)


@pytest.mark.parametrize("text", ["", "none", "None", " none "])
def test_parse_policy_none(text):
    assert parse_policy(text) == ()


@pytest.mark.parametrize("text", ["flip", "color,flip", "none,color"])
def test_parse_policy_unknown_name(text):
    with pytest.raises(UserError) as e:
        parse_policy(text)
    message = str(e.value)
    assert "\n" not in message
    bad = "flip" if "flip" in text else "none"
    assert message.startswith(f"unknown --augment policy '{bad}'; choose any of: color, translation, cutout")


def test_words_drawn_for_a_global_batch_and_sliced_give_each_sample_its_own_draw():
    """What a data-parallel step does (ganjax.steps.augment): the words of the whole batch, each
    device taking its samples' columns, augment exactly as the whole batch at once."""
    from ganjax.augment import augment_with, diff_augment, random_words

    key = jax.random.PRNGKey(5)
    x = jax.random.uniform(jax.random.PRNGKey(6), (8, 16, 16, 1), minval=-1, maxval=1)
    policy = ("color", "translation", "cutout")
    whole = diff_augment(key, x, policy)
    words = random_words(key, 8)
    halves = [augment_with(words[..., i:i + 4], x[i:i + 4], policy) for i in (0, 4)]
    np.testing.assert_array_equal(np.concatenate(halves), whole)
