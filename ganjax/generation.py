"""A trained generator as a pure function: load G from a workdir, map keys or z to samples.

    gen = load_generator("runs/wgan-digits")
    images = gen.sample(jax.random.key(0), 64)   # (64, 32, 32, 1) in [-1, 1]
    images = gen.from_z(z)                        # z: (n, z_dim)
    images = gen.generate(z)                      # any n, in fixed-size batches, as numpy

Only G's params and batch statistics are read (those of its exponential moving average if the
run kept one, ganjax.ema); D and the optimizer states stay on disk, and the training data are
not needed. G runs in inference mode (running batch statistics), as the
homework's `G.eval()`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ganjax.checkpoints import Checkpoints
from ganjax.config import Config, config_from_saved, data_kind
from ganjax.latent import sample_z
from ganjax.models import build_models
from ganjax.state import seed_keys

BATCH = 250  # images per compiled G call


def map_in_batches(fn: Callable, x, batch_size: int, progress: bool = False, desc: str = "Generating"):
    """fn applied to the rows of x in batches of `batch_size` rows, as numpy arrays (fn may return
    an array or a tuple / pytree of arrays, each with one row per input row). The last batch is
    padded with zeros and its padding rows dropped, so a jitted fn compiles one program that
    serves every len(x). `progress` shows a bar when there is more than one batch."""
    x = np.asarray(x)
    outputs = []
    for start in tqdm(range(0, len(x), batch_size), desc=desc, disable=not progress or len(x) <= batch_size):
        batch = x[start:start + batch_size]
        padded = np.pad(batch, [(0, batch_size - len(batch))] + [(0, 0)] * (x.ndim - 1))
        outputs.append(jax.tree.map(lambda y, n=len(batch): np.asarray(y)[:n], fn(padded)))
    if not outputs:
        raise ValueError("map_in_batches needs at least one row")
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outputs)


class Generator(NamedTuple):
    """A generator module with its variables; `from_z` and `sample` are pure and jitted."""
    config: Config
    module: Any
    variables: dict  # flax variables: {"params": ..., "batch_stats": ..., any other collection}
    step: int | None = None
    ema: bool = False  # whether `variables` are G's exponential moving average

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def kind(self) -> str:
        return data_kind(self.config.dataset)

    def from_z(self, z) -> jax.Array:
        """Samples for latent vectors z (n, z_dim): images (n, H, W, C) in [-1, 1], or points (n, dim)."""
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {z.shape}")
        return _apply(self.module, self.variables, z)

    def sample(self, key, n: int) -> jax.Array:
        """n samples from z ~ N(0, I) drawn with `key`."""
        return self.from_z(sample_z(key, n, self.z_dim))

    def generate(self, z, progress: bool = False, batch_size: int = BATCH) -> np.ndarray:
        """`from_z` for any number of rows of z, in fixed-size batches (one compiled program), as
        a numpy array; `progress` shows a bar."""
        return map_in_batches(self.from_z, np.asarray(z, np.float32), batch_size, progress)


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, variables, z):
    variables = {k: v for k, v in variables.items() if v}  # no empty collection
    return module.apply(variables, z, train=False)


def generator_template(config: Config) -> tuple[Any, dict]:
    """(module, variables with the right shapes) for the config's generator, without training:
    every collection, and the EMA copy under "ema" if the run keeps one, as the checkpoint's
    generator item holds them."""
    generator, _ = build_models(config)
    variables = generator.init(seed_keys(config.seed)[0], jnp.zeros((2, config.z_dim), jnp.float32), train=False)
    template = {"batch_stats": {}, **variables}
    return generator, {**template, "ema": dict(variables)} if config.ema else template


def load_generator(workdir: str, step: int | None = None, ema: bool = True) -> Generator:
    """G of the checkpoint at `step` (the latest if None) in `workdir`: its EMA if the run kept
    one and `ema`, else the raw G; UserError if there is no checkpoint."""
    checkpoints = Checkpoints(workdir, read_only=True)
    try:
        step, saved, _ = checkpoints.read_json(step)
        config = config_from_saved(saved)
        module, template = generator_template(config)
        variables = checkpoints.restore_generator(template, step)
    finally:
        checkpoints.close()
    averaged = variables.pop("ema", None)
    use_ema = ema and averaged is not None
    return Generator(config, module, averaged if use_ema else variables, step, use_ema)


__all__ = ["BATCH", "Generator", "generator_template", "load_generator", "map_in_batches"]
