"""A trained generator as a pure function: load G from a workdir, map keys or z to samples.

    gen = load_generator("runs/wgan-digits")
    images = gen.sample(jax.random.key(0), 64)   # (64, 32, 32, 1) in [-1, 1]
    images = gen.from_z(z)                        # z: (n, z_dim)

Only G's params and batch statistics are read; D and the optimizer states stay on disk, and the
training data are not needed. G runs in inference mode (running batch statistics), as the
homework's `G.eval()`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ganjax.checkpoints import Checkpoints
from ganjax.config import Config, data_kind
from ganjax.models import build_models
from ganjax.state import seed_keys


class Generator(NamedTuple):
    """A generator module with its variables; `from_z` and `sample` are pure and jitted."""
    config: Config
    module: Any
    variables: dict  # {"params": ..., "batch_stats": ...}
    step: int | None = None

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
        return self.from_z(draw_z(key, n, self.z_dim))


def draw_z(key, n: int, z_dim: int) -> jax.Array:
    return jax.random.normal(key, (n, z_dim), jnp.float32)


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, variables, z):
    variables = {k: v for k, v in variables.items() if v}  # no empty batch_stats collection
    return module.apply(variables, z, train=False)


def config_from_dict(saved: dict) -> Config:
    """The Config saved in a checkpoint (fields this version does not know are ignored)."""
    names = {f.name for f in dataclasses.fields(Config)}
    return Config(**{k: v for k, v in saved.items() if k in names})


def generator_template(config: Config) -> tuple[Any, dict]:
    """(module, variables with the right shapes) for the config's generator, without training."""
    generator, _ = build_models(config)
    variables = generator.init(seed_keys(config.seed)[0], jnp.zeros((2, config.z_dim), jnp.float32), train=False)
    template = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
    return generator, template


def load_generator(workdir: str, step: int | None = None) -> Generator:
    """G of the checkpoint at `step` (the latest if None) in `workdir`; UserError if there is none."""
    checkpoints = Checkpoints(workdir, read_only=True)
    try:
        step, saved, _ = checkpoints.read_json(step)
        config = config_from_dict(saved)
        module, template = generator_template(config)
        variables = checkpoints.restore_generator(template, step)
    finally:
        checkpoints.close()
    return Generator(config, module, variables, step)


__all__ = ["Generator", "config_from_dict", "draw_z", "generator_template", "load_generator"]
