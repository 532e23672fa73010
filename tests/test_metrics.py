import jax
import numpy as np
import pytest

from ganjax.data.toy import make_toy, toy_modes
from ganjax.metrics import (frechet_distance, histogram_jsd, inception_score, js_divergence, kid,
                            kl_divergence, mode_coverage, mode_histogram, reverse_kl)
from ganjax.metrics.image import gaussian_frechet_distance


def test_real_ring_samples_cover_all_modes():
    centers, std = toy_modes("toy:ring8")
    result = mode_coverage(make_toy("toy:ring8", 2500, seed=1), centers, std)
    assert result["modes"] == 8
    assert abs(result["high_quality"] - (1 - np.exp(-4.5))) < 0.01  # P(|N(0, I_2)| < 3) = 1 - e^-4.5


def test_constructed_samples_give_known_counts():
    centers, std = toy_modes("toy:ring8")
    # 3 modes hit exactly, one point far from everything, one point between two modes.
    samples = np.concatenate([centers[:3], [[5.0, 5.0]], [(centers[0] + centers[1]) / 2]])
    result = mode_coverage(samples, centers, std)
    assert result == {"modes": 3, "high_quality": 3 / 5}


def test_grid_has_25_modes():
    centers, std = toy_modes("toy:grid25")
    assert centers.shape == (25, 2) and std == 0.05
    assert mode_coverage(make_toy("toy:grid25", 2500), centers, std)["modes"] == 25


# --- reverse KL and Jensen-Shannon (nats) ---------------------------------------------------------

def test_reverse_kl_of_mode_histogram():
    centers, std = toy_modes("toy:ring8")
    assert reverse_kl(np.repeat(centers, 10, axis=0), centers) == pytest.approx(0.0, abs=1e-12)
    assert reverse_kl(np.repeat(centers[:1], 50, axis=0), centers) == pytest.approx(np.log(8))
    # Half the samples on each of two modes: KL = log(8 / 2); points off the modes still count.
    two = np.concatenate([np.repeat(centers[:1], 5, axis=0), np.repeat(centers[3:4] * 1.3, 5, axis=0)])
    assert reverse_kl(two, centers) == pytest.approx(np.log(4))
    assert mode_histogram(two, centers).tolist() == [5, 0, 0, 5, 0, 0, 0, 0]


def test_js_divergence_of_histograms():
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence([1, 1, 0, 0], [0, 0, 3, 1]) == pytest.approx(np.log(2))
    assert kl_divergence([1, 0], [0, 1]) == float("inf")


def test_histogram_jsd_of_1d_samples():
    x = np.random.default_rng(0).normal(size=1000)
    assert histogram_jsd(x, x) == pytest.approx(0.0, abs=1e-12)
    assert histogram_jsd(x, x + 100.0) == pytest.approx(np.log(2))  # shared bins, disjoint support
    assert 0 < histogram_jsd(x, x + 0.5, bins=50) < np.log(2)


# --- Frechet distance, KID, Inception-Score analogue ----------------------------------------------

def test_frechet_distance_of_identical_sets_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert gaussian_frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected)
    # A rotation of both covariances leaves the distance unchanged (full, non-diagonal matrices).
    q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    rotated = gaussian_frechet_distance(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert rotated == pytest.approx(expected)
    # Fitted to samples: the sample estimate approaches the closed form.
    a = mu1 + np.sqrt(s1) * rng.normal(size=(20000, 5))
    b = mu2 + np.sqrt(s2) * rng.normal(size=(20000, 5))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)


def test_kid():
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    shifted, _ = kid(f, f + 1.0, subsets=20, subset_size=200)
    same, _ = kid(f, f, subsets=20, subset_size=200)  # overlapping subsets: slightly negative
    assert abs(same) < 0.05 * shifted
    independent, spread = kid(f, g, subsets=20, subset_size=200)
    assert abs(independent) < 3 * spread
    # The unbiased MMD^2 estimate by hand for two points per set, kernel (x.y/d + 1)^3.
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 1.0], [2.0, 0.0]])
    k = lambda u, v: (u @ v / 2 + 1) ** 3
    by_hand = (k(x[0], x[1]) * 2 + k(y[0], y[1]) * 2) / 2 - 2 * np.mean([k(a, b) for a in x for b in y])
    assert kid(x, y, subsets=1)[0] == pytest.approx(by_hand)


def test_kid_from_the_whole_kernel_matrices_equals_kid_subset_by_subset():
    """kid's faster form (each subset's sums read off the whole sets' kernel matrices, in blocks of
    1,024 rows, the within-set ones from their upper triangle) against each subset's own kernel
    matrices, on sets that span several blocks, with subsets that overlap."""
    from ganjax.metrics.image import _subset_mmd2, mmd2_unbiased

    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(1500, 5)), rng.normal(0.2, 1.1, size=(1100, 5))
    draws = [(rng.choice(1500, 300, replace=False), rng.choice(1100, 300, replace=False)) for _ in range(4)]
    by_subset = [mmd2_unbiased(a[i], b[j]) for i, j in draws]
    np.testing.assert_allclose(_subset_mmd2(a, b, draws), by_subset, rtol=1e-11)


def test_inception_score_bounds():
    confident = np.tile(np.eye(10), (100, 1))  # every split sees each class equally often
    assert inception_score(confident) == pytest.approx((10.0, 0.0))
    constant = np.tile(np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum(), (1000, 1))
    assert inception_score(constant) == pytest.approx((1.0, 0.0))


# --- the shipped digit classifier -----------------------------------------------------------------

def test_the_classifiers_first_stage_is_the_convolution_relu_and_pool():
    """conv3x3_relu_pool_1ch (one matmul over each pooled pixel's 4x4 window) against nn.Conv's
    'SAME' convolution, ReLU and 2x2 max-pool, on random images and weights; and the classifier
    built on it has the shipped weights' parameter tree (nn.Conv's names and shapes)."""
    import flax.linen as nn
    from ganjax.metrics.classifier import DigitClassifier, conv3x3_relu_pool_1ch, load_digit_classifier

    rng = np.random.default_rng(0)
    for shape, channels in (((3, 32, 32, 1), 16), ((2, 6, 10, 1), 5)):
        x = rng.normal(size=shape).astype(np.float32)
        params = {"kernel": rng.normal(size=(3, 3, 1, channels)).astype(np.float32),
                  "bias": rng.normal(size=(channels,)).astype(np.float32)}
        reference = nn.max_pool(nn.relu(nn.Conv(channels, (3, 3)).apply({"params": params}, x)), (2, 2), strides=(2, 2))
        np.testing.assert_allclose(conv3x3_relu_pool_1ch(x, params["kernel"], params["bias"]), reference,
                                   rtol=1e-5, atol=1e-5)
    shipped = load_digit_classifier()
    fresh = DigitClassifier().init(jax.random.PRNGKey(0), np.zeros((1, 32, 32, 1), np.float32))
    assert jax.tree.structure(fresh) == jax.tree.structure(shipped)
    assert jax.tree.map(np.shape, fresh) == jax.tree.map(np.shape, shipped)


def test_shipped_classifier_classifies_heldout_digits():
    from ganjax.data.digits import load_digits
    from ganjax.metrics.classifier import digit_features, digit_split, load_digit_labels

    labels = load_digit_labels()
    _, heldout = digit_split(labels)
    images = load_digits(32, 1)[heldout]
    features, probs = digit_features(images)
    assert features.shape == (1000, 128) and probs.shape == (1000, 10)
    assert (probs.argmax(axis=1) == labels[heldout]).mean() > 0.95
    # Floats in [-1, 1] (a generator's output) give the same result as the uint8 pixels.
    from_floats, _ = digit_features(images[:10, ..., 0].astype(np.float32) / 127.5 - 1)
    np.testing.assert_allclose(from_floats, features[:10], rtol=1e-5, atol=1e-5)
