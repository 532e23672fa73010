"""Toy distributions of the GAN literature (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018)."""

import numpy as np

RING8_STD = 0.01
GRID25_STD = 0.05
ONE_D_MEAN, ONE_D_STD = 2.0, 0.5


def toy_modes(name: str) -> tuple[np.ndarray, float]:
    """(mode centers (M, dim), std) of a mixture toy."""
    if name == "toy:ring8":
        angles = 2 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1), RING8_STD
    if name == "toy:grid25":
        g = np.arange(-4, 5, 2, dtype=np.float64)
        return np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2), GRID25_STD
    if name == "toy:1d":
        return np.array([[ONE_D_MEAN]]), ONE_D_STD
    raise ValueError(f"unknown toy dataset {name!r}")


def make_toy(name: str, n: int, seed: int = 0) -> np.ndarray:
    """n float32 points drawn from the toy: a mode uniformly at random, plus Gaussian noise."""
    centers, std = toy_modes(name)
    rng = np.random.default_rng(seed)
    which = rng.integers(len(centers), size=n)
    return (centers[which] + std * rng.standard_normal((n, centers.shape[1]))).astype(np.float32)
