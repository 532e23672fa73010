import numpy as np

from ganjax.data.toy import make_toy, toy_modes
from ganjax.metrics import mode_coverage


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
