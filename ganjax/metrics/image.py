"""Image-quality statistics on the outputs of a feature extractor: Frechet distance, KID, the
Inception Score, precision/recall and density/coverage, as float64 numpy functions of features
or class probabilities, and the disjoint real sets of the real-vs-real value they are read beside.

The papers use Inception-v3 (`ganjax.metrics.inception`, with pytorch-fid's weights); for digits
ganjax also has a digit classifier trained by the repo (`ganjax.metrics.classifier`), whose
values are only comparable with each other and with the real-vs-real value of the same
classifier (`ganjax.metrics.digits.real_vs_real`).
"""

import numpy as np


def fit_gaussian(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1, as pytorch-fid) of features (N, d)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def gaussian_frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2)
    (Dowson & Landau 1982; the FID of Heusel et al. 2017):

        ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)),

    computed as pytorch-fid's `calculate_frechet_distance`: float64, `scipy.linalg.sqrtm` of
    sigma1 sigma2; a product so near singular that its root is not finite is retried with eps
    added to both diagonals; a complex root whose diagonal's imaginary part stays within 1e-3
    is taken as its real part. Beyond that pytorch-fid raises; this returns nan (with a
    warning), so that a metric never stops a run."""
    import warnings

    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    with warnings.catch_warnings():  # "matrix is singular": what the eps retry and the checks below handle
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(sigma1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            from ganjax.errors import warn

            warn(f"Frechet distance: the matrix square root has an imaginary component "
                 f"{np.max(np.abs(covmean.imag)):.3g}; reported as nan")
            return float("nan")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


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
        seed=0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): mean and std of
    the unbiased MMD^2 over `subsets` pairs of random subsets (without replacement) of
    min(subset_size, N, M) features each. Unbiased, so it can be slightly negative and its mean
    does not depend on the sample size; about 0 for two independent samples of one distribution
    (one set passed twice gives slightly below 0: its subsets overlap).
    `seed` is an int (numpy's default Generator) or a generator with `.choice`: torch-fidelity
    draws with np.random.RandomState(2020), the same subsets for the same features.

    Computed whichever way multiplies fewer features: each subset's kernel matrices on their
    own (mmd2_unbiased), or the whole sets' kernel matrices once, each subset's sums read off
    them through its indicator vector (`_subset_mmd2`). The two agree to 1e-13; with 2,500
    features per side the second is 2x faster at 10 subsets and 10x at the paper's 100."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    rng = seed if hasattr(seed, "choice") else np.random.default_rng(seed)
    draws = [(rng.choice(len(a), m, replace=False), rng.choice(len(b), m, replace=False)) for _ in range(subsets)]
    if (len(a) ** 2 + len(b) ** 2) / 2 + len(a) * len(b) < 3 * subsets * m * m:
        values = _subset_mmd2(a, b, draws)
    else:
        values = [mmd2_unbiased(a[i], b[j]) for i, j in draws]
    return float(np.mean(values)), float(np.std(values))


def _indicator_sums(x: np.ndarray, y: np.ndarray, on_x: np.ndarray, on_y: np.ndarray,
                    rows: int = 1024) -> np.ndarray:
    """For each column s of the 0/1 indicator matrices on_x (len(x), S) and on_y (len(y), S): the
    sum of polynomial_kernel(x, y) over the rows on_x[:, s] picks and the columns on_y[:, s]
    picks, in blocks of `rows` x `rows` to bound the memory. With y = x (within one set) the
    matrix is symmetric: only the blocks on and above the diagonal are computed."""
    symmetric = x is y
    sums = np.zeros(on_x.shape[1])
    for r in range(0, len(x), rows):
        for c in range(r if symmetric else 0, len(y), rows):
            block = polynomial_kernel(x[r:r + rows], y[c:c + rows]) @ on_y[c:c + rows]
            sums += (2.0 if symmetric and c > r else 1.0) * np.einsum("is,is->s", on_x[r:r + rows], block)
    return sums


def _subset_mmd2(a: np.ndarray, b: np.ndarray, draws) -> np.ndarray:
    """mmd2_unbiased of every subset pair (i, j) in `draws`, from the whole sets' kernel sums."""
    m = len(draws[0][0])
    on_a, on_b = np.zeros((len(a), len(draws))), np.zeros((len(b), len(draws)))
    for s, (i, j) in enumerate(draws):
        on_a[i, s], on_b[j, s] = 1.0, 1.0
    diagonal = lambda x: (np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0) ** 3  # k(x_i, x_i)
    within = (_indicator_sums(a, a, on_a, on_a) - diagonal(a) @ on_a
              + _indicator_sums(b, b, on_b, on_b) - diagonal(b) @ on_b) / (m * (m - 1))
    return within - 2 * _indicator_sums(a, b, on_a, on_b) / (m * m)


def _safe_log(p: np.ndarray) -> np.ndarray:
    return np.log(np.where(p > 0, p, 1.0))


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) from class probabilities p(y|x), (N, classes):
    exp(E_x KL(p(y|x) || p(y))) with p(y) the mean prediction, computed on each of `splits`
    parts (rows i*N//splits .. (i+1)*N//splits, as torch-fidelity); returns the mean and std over
    parts. It runs from 1 (every prediction the same) to the number of classes (confident
    predictions, classes equally frequent). The parts are consecutive rows: pass samples in
    random order, as a generator draws them."""
    probs = np.asarray(probs, np.float64)
    scores = []
    for i in range(splits):
        part = probs[i * len(probs) // splits:(i + 1) * len(probs) // splits]
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0: a zero entry multiplies a finite log (the logs of zeros are taken as log 1).
        kl = np.sum(part * (_safe_log(part) - _safe_log(marginal)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def softmax(logits) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _distance_blocks(x: np.ndarray, y: np.ndarray, entries: int = 1 << 22):
    """(start, euclidean distances (rows, len(y)) from x[start:start + rows] to every y), in
    blocks of about `entries` float64 values."""
    yy = np.einsum("ij,ij->i", y, y)
    rows = max(1, entries // max(len(y), 1))
    for start in range(0, len(x), rows):
        block = x[start:start + rows]
        d2 = np.einsum("ij,ij->i", block, block)[:, None] + yy[None, :] - 2 * block @ y.T
        yield start, np.sqrt(np.maximum(d2, 0))


def knn_radii(x, ks: tuple[int, ...]) -> dict[int, np.ndarray]:
    """For each k, the distance (N,) from each row of x to its k-th nearest other row: the radius
    of the k-NN balls whose union estimates the support of the distribution (Kynkaanniemi et al.
    2019, Sec. 3)."""
    x = np.asarray(x, np.float64)
    radii = {k: np.empty(len(x)) for k in ks}
    for start, d in _distance_blocks(x, x):
        d[np.arange(len(d)), start + np.arange(len(d))] = 0.0  # itself, exactly: the 0-th neighbour
        kth = np.partition(d, sorted(ks), axis=1)
        for k in ks:
            radii[k][start:start + len(d)] = kth[:, k]
    return radii


def manifold_scores(real, fake, k_pr: int = 3, k_dc: int = 5) -> dict:
    """{"precision", "recall", "density", "coverage"} of fake features against real ones (N, d).

    Precision: share of fakes inside the union of the real k_pr-NN balls; recall: share of reals
    inside the union of the fake ones (Kynkaanniemi et al. 2019, "Improved precision and recall",
    k = 3; inside means distance <= radius, as their code and torch-fidelity). Density: the mean
    number of real k_dc-NN balls a fake falls in, divided by k_dc (about 1 when the sets match,
    unbounded above); coverage: share of reals whose ball holds a fake (Naeem et al. 2020,
    "Reliable fidelity and diversity metrics", k = 5; strict <, as their prdc code). Each needs
    more than k samples per set."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    real_radii, fake_radius = knn_radii(real, (k_pr, k_dc)), knn_radii(fake, (k_pr,))[k_pr]
    inside, balls = np.zeros(len(fake), bool), np.zeros(len(fake))
    recalled, nearest_fake = np.zeros(len(real), bool), np.full(len(real), np.inf)
    for start, d in _distance_blocks(fake, real):  # d[i, j]: fake start+i to real j
        rows = slice(start, start + len(d))
        inside[rows] = (d <= real_radii[k_pr][None, :]).any(axis=1)
        balls[rows] = (d < real_radii[k_dc][None, :]).sum(axis=1)
        recalled |= (d <= fake_radius[rows, None]).any(axis=0)
        nearest_fake = np.minimum(nearest_fake, d.min(axis=0))
    return {"precision": float(inside.mean()), "recall": float(recalled.mean()),
            "density": float(balls.sum() / (k_dc * len(fake))),
            "coverage": float((nearest_fake < real_radii[k_dc]).mean())}


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
