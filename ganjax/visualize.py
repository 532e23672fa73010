"""Pictures of a run: image grids and toy-data plots with the discriminator's contours."""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np
from PIL import Image

# zlib level 1 instead of Pillow's 6: a sample grid encodes 2x faster (5 against 11 ms for a
# 342x342 grid, a few % larger), which every epoch end of a run pays.
FAST_PNG = {"compress_level": 1}


@contextlib.contextmanager
def written_in_full(path: str):
    """Yields a temporary name beside `path` (same extension, so writers pick the same format) and
    moves it onto `path` once the writer returns: a full disk or a killed process never leaves a
    truncated picture under the final name, nor replaces a good one. The temporary file is
    removed if the writer fails."""
    root, ext = os.path.splitext(path)
    tmp = f"{root}.partial-{os.getpid()}{ext}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def save_figure(fig, path: str) -> str:
    """A matplotlib figure as a PNG at 100 dpi (fast zlib, written in full), then closed."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        with written_in_full(path) as tmp:
            fig.savefig(tmp, dpi=100, pil_kwargs=FAST_PNG)
    finally:
        plt.close(fig)
    return path


def to_uint8(images) -> np.ndarray:
    """[-1, 1] float images -> uint8 pixels (the inverse of the data pipeline's decode)."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1) / 2 * 255), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, nrow: int = 10, padding: int = 2) -> np.ndarray:
    """(N, H, W, C) floats in [-1, 1] -> one uint8 (rows, cols, C) grid, as torchvision's
    save_image(make_grid((x + 1) / 2, nrow)) does: black padding around every image."""
    n, h, w, c = images.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = np.zeros((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c), np.uint8)
    for i, im in enumerate(to_uint8(images)):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y:y + h, x:x + w] = im
    return grid


def save_image_grid(images: np.ndarray, path: str, nrow: int = 10) -> str:
    grid = image_grid(images, nrow)
    with written_in_full(path) as tmp:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(tmp, **FAST_PNG)
    return path


def draw_toy(ax, samples: np.ndarray, data: np.ndarray, critic=None, title: str = "",
             label: str = "D(x)") -> None:
    """Samples (green) over the data (black) on a matplotlib axis; in 2-D the discriminator's
    output as contours, in 1-D the data and sample densities and D(x) (blue dashes), as in
    Figure 1 of the GAN paper. `critic` maps an (M, dim) array of points to M outputs
    (probabilities or critic values)."""
    if data.shape[1] == 2:
        lo = np.minimum(data.min(0), np.percentile(samples, 1, axis=0)) - 0.5
        hi = np.maximum(data.max(0), np.percentile(samples, 99, axis=0)) + 0.5
        if critic is not None:
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 100), np.linspace(lo[1], hi[1], 100))
            values = np.asarray(critic(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)))
            cs = ax.contourf(gx, gy, values.reshape(gx.shape), levels=20, cmap="Blues", alpha=0.6)
            ax.figure.colorbar(cs, ax=ax, label=label)
        ax.scatter(data[:2500, 0], data[:2500, 1], s=2, c="black", label="data")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:green", alpha=0.6, label="G(z)")
        ax.set_xlim(lo[0], hi[0]); ax.set_ylim(lo[1], hi[1]); ax.set_aspect("equal")
    else:
        lo = min(data.min(), np.percentile(samples, 0.5)) - 0.5
        hi = max(data.max(), np.percentile(samples, 99.5)) + 0.5
        bins = np.linspace(lo, hi, 60)
        ax.hist(data[:, 0], bins, density=True, histtype="step", color="black", ls=":", label="data")
        ax.hist(samples[:, 0], bins, density=True, histtype="step", color="tab:green", label="G(z)")
        if critic is not None:
            xs = np.linspace(lo, hi, 200, dtype=np.float32)[:, None]
            ax.plot(xs[:, 0], np.asarray(critic(xs)), "--", color="tab:blue", label="D(x)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, fontsize=9)


def save_toy_plot(samples: np.ndarray, data: np.ndarray, path: str, critic=None, title: str = "",
                  label: str = "D(x)") -> str:
    """`draw_toy` in a figure of its own, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5) if data.shape[1] == 2 else (6, 3.5))
    draw_toy(ax, samples, data, critic, title, label)
    return save_figure(fig, path)
