"""KL and Jensen-Shannon divergences between histograms, in nats.

The convention 0 log 0 = 0 (Cover & Thomas, Elements of Information Theory, 2.3) makes empty bins
exact, with no epsilon: KL(p || q) only needs q > 0 wherever p > 0, which holds for the uniform
target of the mode histograms and for the mixture m = (p + q) / 2 inside the Jensen-Shannon
divergence.
"""

import numpy as np


def normalize(counts) -> np.ndarray:
    """Counts (or weights) -> a float64 probability vector."""
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError("a histogram needs non-negative counts with a positive total")
    return counts / counts.sum()


def kl_divergence(p, q) -> float:
    """KL(p || q) = sum_i p_i log(p_i / q_i) in nats; bins with p_i = 0 add nothing.

    Infinite when p puts mass where q has none."""
    p, q = normalize(p), normalize(q)
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def js_divergence(p, q) -> float:
    """JSD(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in nats: 0 for equal
    histograms, log 2 for disjoint ones (Lin 1991, "Divergence measures based on the Shannon
    entropy"). This is the divergence the original GAN minimizes (Goodfellow et al. 2014, Thm. 1)."""
    p, q = normalize(p), normalize(q)
    m = (p + q) / 2
    return (kl_divergence(p, m) + kl_divergence(q, m)) / 2


def histogram_jsd(data, samples, bins: int = 100, value_range: tuple[float, float] | None = None) -> float:
    """Jensen-Shannon divergence (nats) between the histograms of two 1-D sample sets over shared
    bins: `bins` equal-width bins over `value_range`, by default the span of both sets together,
    so samples far from the data land in bins the data leave empty instead of being dropped
    (with an explicit range, values outside it are dropped). Fix `value_range` and `bins` to
    compare values across runs: the estimate depends on the binning."""
    data = np.asarray(data, np.float64).ravel()
    samples = np.asarray(samples, np.float64).ravel()
    edges = np.histogram_bin_edges(np.concatenate([data, samples]), bins=bins, range=value_range)
    return js_divergence(np.histogram(data, edges)[0], np.histogram(samples, edges)[0])
