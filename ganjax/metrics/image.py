"""Image-quality statistics on the outputs of a feature extractor: Frechet distance, KID and the
Inception Score, as pure float64 numpy functions of features or class probabilities, and the
disjoint real sets of the real-vs-real value they are read beside.

The papers use Inception-v3; ganjax uses a digit classifier trained by the repo
(`ganjax.metrics.classifier`), whose values are only comparable with each other and with the
real-vs-real value of the same classifier (`ganjax.metrics.digits.real_vs_real`).
"""

import numpy as np


def fit_gaussian(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1, as pytorch-fid) of features (N, d)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix by eigendecomposition (tiny negative
    eigenvalues from round-off are clipped to 0)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def gaussian_frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2)
    (Dowson & Landau 1982; the FID of Heusel et al. 2017):

        ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    tr((sigma1 sigma2)^(1/2)) = sum_i sqrt(lambda_i(A)) with A = sigma1^(1/2) sigma2 sigma1^(1/2),
    which is similar to sigma1 sigma2 but symmetric PSD, so its eigenvalues come from eigh without
    the complex round-off of a general matrix square root (scipy.linalg.sqrtm)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    root1 = _psd_sqrt(sigma1)
    a = root1 @ sigma2 @ root1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((a + a.T) / 2), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_sqrt)


def frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, d) and (M, d).

    Biased upward at finite N (Binkowski et al. 2018, Sec. 3): compare values only at equal
    sample sizes, beside the real-vs-real value at that size."""
    return gaussian_frechet_distance(*fit_gaussian(features_a), *fit_gaussian(features_b))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3, the default kernel of KID (Binkowski et al. 2018)."""
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k  # several times faster than k ** 3 in numpy


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased estimate of MMD^2 between two equal-size samples (Gretton et al. 2012, Lemma 6):
    within-set kernel means without the diagonal, minus twice the cross-set mean."""
    m = len(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kid(features_a, features_b, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): mean and std of
    the unbiased MMD^2 over `subsets` pairs of random subsets (without replacement) of
    min(subset_size, N, M) features each. Unbiased, so it can be slightly negative and its mean
    does not depend on the sample size; about 0 for two independent samples of one distribution
    (one set passed twice gives slightly below 0: its subsets overlap). The paper's 100 subsets
    of 1,000 take about 10 s on two CPU cores; fewer subsets suit evaluation during training."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(a[rng.choice(len(a), m, replace=False)],
                            b[rng.choice(len(b), m, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def _safe_log(p: np.ndarray) -> np.ndarray:
    return np.log(np.where(p > 0, p, 1.0))


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) from class probabilities p(y|x), (N, classes):
    exp(E_x KL(p(y|x) || p(y))) with p(y) the mean prediction, computed on each of `splits`
    equal parts; returns the mean and std over parts. It runs from 1 (every prediction the same)
    to the number of classes (confident predictions, classes equally frequent). The parts are
    consecutive rows: pass samples in random order, as a generator draws them."""
    probs = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0: a zero entry multiplies a finite log (the logs of zeros are taken as log 1).
        kl = np.sum(part * (_safe_log(part) - _safe_log(marginal)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def feature_scores(fake_features, fake_probs, real_features, kid_subsets: int = 100,
                   kid_subset_size: int = 1000, seed: int = 0) -> dict:
    """{"fd", "kid", "kid_std", "is", "is_std"} of a fake set against a real set, from the
    feature extractor's outputs: features (N, d) of both, class probabilities of the fake set
    (the Inception Score is of the fake set alone). KID draws its subsets with `seed`."""
    kid_mean, kid_std = kid(fake_features, real_features, kid_subsets, kid_subset_size, seed)
    is_mean, is_std = inception_score(fake_probs)
    return {"fd": frechet_distance(fake_features, real_features), "kid": kid_mean,
            "kid_std": kid_std, "is": is_mean, "is_std": is_std}


def real_split(count: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint random sets of n of `count` real images: scored against each other
    they give the real-vs-real value (the floor of FD and KID at n samples, as finite samples
    score above 0), and the second set is the reference a generator's n samples are scored
    against. The same seed gives the same sets in every run."""
    if not 0 < n <= count // 2:
        raise ValueError(f"n must be in 1..{count // 2}, got {n}")
    order = np.random.default_rng(seed).permutation(count)
    return order[:n], order[n:2 * n]
