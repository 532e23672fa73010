"""Mode coverage on mixture toys (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018)."""

import numpy as np


def mode_coverage(samples: np.ndarray, centers: np.ndarray, std: float, n_std: float = 3.0) -> dict:
    """A sample is high quality if it lies within n_std * std of its nearest mode; a mode is
    covered if it is the nearest mode of at least one high-quality sample.

    Returns {"modes": covered modes, "high_quality": share of high-quality samples}.
    The papers draw 2,500 samples.
    """
    samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
    dist = np.linalg.norm(samples[:, None, :] - np.asarray(centers)[None, :, :], axis=-1)
    nearest = dist.argmin(axis=1)
    high = dist[np.arange(len(samples)), nearest] <= n_std * std
    return {"modes": int(len(np.unique(nearest[high]))), "high_quality": float(high.mean())}
