"""Image metrics of generated digits in the digit classifier's feature space, and the
real-vs-real floor every one of them is reported beside.

A classifier-feature FD or KID means little alone: two disjoint sets of real digits already
score above 0 (finite samples; FD is biased upward at small N, Binkowski et al. 2018), so a
generator is judged by how far above `real_vs_real()` it lands at the same sample size.
"""

from __future__ import annotations

from ganjax.metrics.classifier import digit_features
from ganjax.metrics.image import feature_scores, real_split


def digit_scores(fake, real, variables: dict | None = None, kid_subsets: int = 100,
                 kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """{"fd", "kid", "kid_std", "is", "is_std"} of images `fake` against images `real` (uint8
    or floats in [-1, 1], (N, 32, 32[, 1])); the Inception-Score analogue is of `fake` alone."""
    fake_features, fake_probs = digit_features(fake, variables)
    real_features, _ = digit_features(real, variables)
    return feature_scores(fake_features, fake_probs, real_features, kid_subsets, kid_subset_size, seed)


def real_vs_real(n: int = 2500, seed: int = 0, variables: dict | None = None, **kwargs) -> dict:
    """`digit_scores` between two disjoint random sets of n real digits each (n <= 2,500 of the
    5,000; `real_split`): the floor of the metrics at that sample size. Compare generated sets of
    n samples against n real digits to read a score beside it."""
    from ganjax.data.digits import load_digits

    images = load_digits(32, 1)
    a, b = real_split(len(images), n, seed)
    return digit_scores(images[a], images[b], variables, seed=seed, **kwargs)


def class_balance(probs, confidence: float = 0.9) -> dict:
    """How a classifier sees a set of samples from its class probabilities (N, classes):
    `confident`, the share whose top probability exceeds `confidence` (recognisable digits), and
    `class_min` / `class_max`, the smallest and largest share of samples labelled with one class
    (argmax; 0.1 each for balanced digits, a partial mode collapse shows as a class far from it)."""
    import numpy as np

    probs = np.asarray(probs)
    shares = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)
    return {"confident": float(np.mean(probs.max(axis=1) > confidence)), "class_min": float(shares.min()),
            "class_max": float(shares.max())}
