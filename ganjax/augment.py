"""DiffAugment: differentiable augmentation of both D's inputs (Zhao et al. 2020).

Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for Data-Efficient GAN Training"
(NeurIPS 2020): with little data, D memorizes the real images and training collapses. Augmenting
only the reals would teach G to produce augmented images, so the same kind of augmentation T is
applied to every image D sees, real and fake: D is trained on D(T(x)) and D(T(G(z))), and G's loss
goes through D(T(G(z))). T must therefore be differentiable with respect to its input, so that G
receives gradients through it. The same policy serves both batches, with independent per-sample
draws: the caller passes one key for the real batch and another for the fake batch.

The three policies of the paper's code, each drawing its own random parameters per sample:

- "color": brightness (add U[-0.5, 0.5)), saturation (scale the deviation from the channel mean by
  U[0, 2)), contrast (scale the deviation from the image mean by U[0.5, 1.5)), in that order;
- "translation": shift by an integer in [-b, b] along each spatial axis independently, with
  b = int(size / 8 + 0.5); pixels shifted in from outside the image are 0;
- "cutout": set to 0 a square of side int(size / 2 + 0.5) (per axis), its position drawn as in the
  paper's code and clipped to the image.

Images are NHWC batches in [-1, 1]. Everything is a pure function of (key, x): jit-able (the policy
is a static tuple of names), vectorized over the batch (a per-sample slice and masks, no Python loop
over samples), and differentiable with respect to x.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ganjax.errors import UserError

POLICIES = ("color", "translation", "cutout")

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation,cutout' (any subset, any order, repeats allowed) -> the tuple of names in
    the canonical order color, translation, cutout; '' or 'none' -> (). Unknown names: UserError."""
    names = [name.strip().lower() for name in text.split(",")]
    names = [name for name in names if name]
    if names == ["none"]:
        return ()
    for name in names:
        if name not in POLICIES:
            raise UserError(f"unknown --augment policy {name!r}; choose any of: {', '.join(POLICIES)} "
                            f"(comma-separated), or 'none'")
    return tuple(p for p in POLICIES if p in names)


# --- random parameters: one draw per sample, shape (n,) ---
#
# One random call gives _WORDS random 32-bit words per sample for each policy, at the policy's place
# in POLICIES: a policy's draws depend on the key only, not on which other policies are on. Each
# policy turns its words into its parameters (`_<name>_from_bits`). One call, because each threefry
# call costs a fraction of a second of XLA compile time on CPU, and a training step augments in
# several places.

_WORDS = 3  # color uses 3 words per sample, translation and cutout 2


def _bits(key, n: int):
    """(len(POLICIES), _WORDS, n) random words: [POLICIES.index(name)] are the policy's."""
    return jax.random.bits(key, (len(POLICIES), _WORDS, n), jnp.uint32)


def _words(key, n: int, name: str):
    return _bits(key, n)[POLICIES.index(name)]


def _unit(bits):
    """U[0, 1) from 32 random bits: the top 23, multiples of 2^-23 as jax.random.uniform gives, so
    that u - 0.5, 2 u and u + 0.5 are exact in float32 and stay below their open upper bounds."""
    return (bits >> 9).astype(jnp.float32) * (2.0 ** -23)


def _below(bits, span: int):
    """Integers in [0, span) from 32 random bits (modulo: a bias below span / 2^32)."""
    return (bits % jnp.uint32(span)).astype(jnp.int32)


def _color_from_bits(bits, h: int, w: int):
    u = _unit(bits)
    return u[0] - 0.5, u[1] * 2.0, u[2] + 0.5


def _color_params(key, n: int):
    """(brightness, saturation, contrast) factors, float32: U[-0.5, 0.5), U[0, 2), U[0.5, 1.5)."""
    return _color_from_bits(_words(key, n, "color"), 0, 0)


def translation_bound(size: int) -> int:
    """The largest shift along an axis of `size` pixels: int(size / 8 + 0.5), as in the paper's code."""
    return int(size * TRANSLATION_RATIO + 0.5)


def _translation_from_bits(bits, h: int, w: int):
    by, bx = translation_bound(h), translation_bound(w)
    return _below(bits[0], 2 * by + 1) - by, _below(bits[1], 2 * bx + 1) - bx


def _translation_params(key, n: int, h: int, w: int):
    """(dy, dx), int32 uniform in [-bound, bound] per axis (the paper's randint(-b, b + 1)): output
    pixel (i, j) is input pixel (i + dy, j + dx), or 0 where that lies outside the image."""
    return _translation_from_bits(_words(key, n, "translation"), h, w)


def cutout_size(size: int) -> int:
    """The side of the cut square along an axis of `size` pixels: int(size / 2 + 0.5)."""
    return int(size * CUTOUT_RATIO + 0.5)


def _cutout_from_bits(bits, h: int, w: int):
    ch, cw = cutout_size(h), cutout_size(w)
    return _below(bits[0], h + 1 - ch % 2), _below(bits[1], w + 1 - cw % 2)


def _cutout_params(key, n: int, h: int, w: int):
    """(oy, ox), int32: the centres drawn as in the paper's code, randint(0, size + 1 - cut % 2);
    the cut rows are [oy - cut // 2, oy - cut // 2 + cut) clipped to the image, the columns alike."""
    return _cutout_from_bits(_words(key, n, "cutout"), h, w)


# --- the augmentations, given their parameters ---

def _per_sample(v):
    return v[:, None, None, None]


def _color(x, params):
    """Brightness, saturation, contrast; computed in float32, returned in x's dtype."""
    brightness, saturation, contrast = params
    y = x.astype(jnp.float32) + _per_sample(brightness)
    mean = jnp.mean(y, axis=3, keepdims=True)
    y = (y - mean) * _per_sample(saturation) + mean
    mean = jnp.mean(y, axis=(1, 2, 3), keepdims=True)
    y = (y - mean) * _per_sample(contrast) + mean
    return y.astype(x.dtype)


def _translate(x, params):
    """Each sample shifted by its (dy, dx) with zero fill: a zero-padded batch, one window per sample
    (a vmapped dynamic_slice, i.e. one gather). The gradient reaches exactly the pixels kept."""
    dy, dx = params
    _, h, w, c = x.shape
    by, bx = translation_bound(h), translation_bound(w)
    if by == 0 and bx == 0:
        return x
    padded = jnp.pad(x, ((0, 0), (by, by), (bx, bx), (0, 0)))

    def window(image, y0, x0):
        return jax.lax.dynamic_slice(image, (y0, x0, 0), (h, w, c))

    return jax.vmap(window)(padded, dy + by, dx + bx)


def _cutout(x, params):
    """Each sample with its square set to 0: a per-sample (H, W) mask from row and column ranges."""
    oy, ox = params
    _, h, w, _ = x.shape
    ch, cw = cutout_size(h), cutout_size(w)
    top, left = oy - ch // 2, ox - cw // 2
    rows = jnp.arange(h)[None, :]
    cols = jnp.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + ch)  # (n, h)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + cw)  # (n, w)
    cut = in_rows[:, :, None] & in_cols[:, None, :]  # (n, h, w)
    return jnp.where(cut[..., None], jnp.zeros((), x.dtype), x)


_AUGMENT = {
    "color": (_color_from_bits, _color),
    "translation": (_translation_from_bits, _translate),
    "cutout": (_cutout_from_bits, _cutout),
}


def diff_augment(key, x, policy: tuple[str, ...]):
    """DiffAugment of a batch `x` (N, H, W, C) in [-1, 1], float32 or bfloat16, any C.

    `policy` is a tuple of names from POLICIES (as parse_policy returns; static under jit), applied
    in the order given, each with its own independent draws per sample: those that
    `_color_params(key, n)`, `_translation_params(key, n, h, w)`, `_cutout_params(key, n, h, w)`
    give for the same key. The result has x's shape and dtype; an empty policy returns x itself."""
    if isinstance(policy, str):
        raise TypeError(f"policy must be a tuple of names (see parse_policy), not the string {policy!r}")
    unknown = [name for name in policy if name not in _AUGMENT]
    if unknown or len(set(policy)) != len(policy):
        raise ValueError(f"policy {policy!r}: each of {POLICIES} at most once")
    if x.ndim != 4:
        raise ValueError(f"diff_augment expects an NHWC batch, got shape {x.shape}")
    if not policy:
        return x
    return _augment(_bits(key, x.shape[0]), x, policy)


def _augment(bits, x, policy: tuple[str, ...]):
    """diff_augment given its random words, `_bits(key, n)`."""
    _, h, w, _ = x.shape
    for name in policy:
        from_bits, apply = _AUGMENT[name]
        x = apply(x, from_bits(bits[POLICIES.index(name)], h, w))
    return x


def random_words(key, n: int):
    """The random words of a batch of n samples, (len(POLICIES), _WORDS, n): sample i's are
    [..., i]. Drawn for a global batch and sliced along the last axis, they give each device of a
    data-parallel run the draws of its own samples (`augment_with`)."""
    return _bits(key, n)


def augment_with(words, x, policy: tuple[str, ...]):
    """DiffAugment of `x` with the given random words (`random_words`, sliced to x's samples):
    diff_augment(key, x, policy) == augment_with(random_words(key, len(x)), x, policy)."""
    return _augment(words, x, policy) if policy else x
