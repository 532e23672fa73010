"""A trained generator as a pure function: load G from a workdir, map keys or z to samples.

    gen = load_generator("runs/wgan-digits")
    images = gen.sample(jax.random.key(0), 64)   # (64, 32, 32, 1) in [-1, 1]
    images = gen.from_z(z)                        # z: (n, z_dim)
    images = gen.generate(z)                      # any n, in fixed-size batches, as numpy

A conditional run's generator (`gen.class_names`, from the checkpoint) takes labels too:
`gen.sample(key, n, labels=7)` (one class, an index or a name), `labels=[0, 1, ...]` (n of them)
or none (drawn uniformly); `gen.from_z(z, labels)`; `gen.generate(z, labels)` (none: the classes
in turn).

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

from ganjax import xla_options
from ganjax.checkpoints import Checkpoints
from ganjax.config import Config, config_from_saved, data_kind
from ganjax.latent import balanced_labels, sample_labels, sample_z
from ganjax.models import build_models
from ganjax.state import example_labels, seed_keys

BATCH = 250  # images per compiled G call


def map_in_batches(fn: Callable, x, batch_size: int, progress: bool = False, desc: str = "Generating"):
    """fn applied to the rows of x in batches of `batch_size` rows, as numpy arrays (fn may return
    an array or a tuple / pytree of arrays, each with one row per input row). The last batch is
    padded with zeros and its padding rows dropped, so a jitted fn compiles one program that
    serves every len(x). `progress` shows a bar when there is more than one batch. A tuple `x`
    of arrays with the same rows is batched alike and passed as fn(*batches)."""
    parts = tuple(np.asarray(a) for a in x) if isinstance(x, tuple) else (np.asarray(x),)
    total = len(parts[0])
    outputs = []
    for start in tqdm(range(0, total, batch_size), desc=desc, disable=not progress or total <= batch_size):
        n = min(batch_size, total - start)
        padded = [np.pad(a[start:start + n], [(0, batch_size - n)] + [(0, 0)] * (a.ndim - 1)) for a in parts]
        outputs.append(jax.tree.map(functools.partial(_first_rows, n=n), fn(*padded)))
    if not outputs:
        raise ValueError("map_in_batches needs at least one row")
    return jax.tree.map(lambda *parts: np.concatenate(parts), *outputs)


def _first_rows(y, n: int) -> np.ndarray:
    return np.asarray(y)[:n]


class Generator(NamedTuple):
    """A generator module with its variables; `from_z` and `sample` are pure and jitted."""
    config: Config
    module: Any
    variables: dict  # flax variables: {"params": ..., "batch_stats": ..., any other collection}
    step: int | None = None
    ema: bool = False  # whether `variables` are G's exponential moving average
    class_names: tuple[str, ...] = ()  # a conditional run's classes, in label order; () unconditional

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def kind(self) -> str:
        return data_kind(self.config.dataset)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_index(self, name_or_index) -> int:
        """The label of a class given by name ('7', 'cat') or index (7, '7' when no class has that
        name); ValueError naming the classes if there is none such."""
        if not self.num_classes:
            raise ValueError("this generator is unconditional (its run had --conditional=false): it takes no class")
        if isinstance(name_or_index, str) and name_or_index in self.class_names:
            return self.class_names.index(name_or_index)
        try:
            index = int(name_or_index)
        except (TypeError, ValueError):
            index = None
        if index is None or not 0 <= index < self.num_classes:
            shown = ", ".join(self.class_names[:20]) + (", ..." if self.num_classes > 20 else "")
            raise ValueError(f"no class {name_or_index!r}: this generator has {self.num_classes} classes, indices "
                             f"0 .. {self.num_classes - 1} or names {shown}")
        return index

    def _labels(self, labels, n: int):
        """labels as int32 (n,): one class (index or name) for all, or n of them; None stays None."""
        if labels is None:
            return None
        if not self.num_classes:
            raise ValueError("this generator is unconditional (its run had --conditional=false): it takes no labels")
        if isinstance(labels, (str, int, np.integer)):
            return jnp.full((n,), self.class_index(labels), jnp.int32)
        if isinstance(labels, (list, tuple)):
            labels = [self.class_index(label) for label in labels]
        labels = jnp.asarray(labels, jnp.int32)
        if labels.shape != (n,):
            raise ValueError(f"labels must be one class or {n} of them, got shape {labels.shape}")
        if not isinstance(labels, jax.core.Tracer) and not bool(jnp.all((labels >= 0) & (labels < self.num_classes))):
            raise ValueError(f"labels must be in 0 .. {self.num_classes - 1}")
        return labels

    def from_z(self, z, labels=None) -> jax.Array:
        """Samples for latent vectors z (n, z_dim): images (n, H, W, C) in [-1, 1], or points (n, dim);
        a conditional generator needs `labels` (one class, or n)."""
        z = jnp.asarray(z, jnp.float32)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (n, {self.z_dim}), got {z.shape}")
        labels = self._labels(labels, z.shape[0])
        if self.num_classes and labels is None:
            raise ValueError(f"this generator is conditional ({self.num_classes} classes): give labels")
        return _apply(self.module, self.variables, z, labels)

    def sample(self, key, n: int, labels=None) -> jax.Array:
        """n samples from z ~ N(0, I) drawn with `key`; for a conditional generator of `labels`
        (one class as index or name, or n of them), or of classes drawn uniformly with
        fold_in(key, 1) when none are given."""
        if self.num_classes and labels is None:
            labels = self.draw_labels(key, n)
        return self.from_z(sample_z(key, n, self.z_dim), labels)

    def draw_labels(self, key, n: int, classes=None) -> np.ndarray | None:
        """The labels of n samples drawn with `key`: the class indices `classes` in turn (as evenly
        as n allows), or classes drawn uniformly with fold_in(key, 1) (z takes `key` itself); None
        for an unconditional generator."""
        if not self.num_classes:
            return None
        if classes is None:
            return np.asarray(sample_labels(jax.random.fold_in(key, 1), n, self.num_classes))
        return balanced_labels(n, self.num_classes, classes)

    def generate(self, z, labels=None, progress: bool = False, batch_size: int = BATCH) -> np.ndarray:
        """`from_z` for any number of rows of z, in fixed-size batches (one compiled program), as
        a numpy array; `progress` shows a bar. A conditional generator without `labels` draws the
        classes in turn (balanced)."""
        z = np.asarray(z, np.float32)
        if not self.num_classes:
            if labels is not None:
                self._labels(labels, len(z))  # the unconditional generator's error
            return map_in_batches(self.from_z, z, batch_size, progress)
        labels = balanced_labels(len(z), self.num_classes) if labels is None else np.asarray(self._labels(labels, len(z)))
        return map_in_batches(self.from_z, (z, labels), batch_size, progress)


@xla_options.jit(static_argnums=0)
def _apply(module, variables, z, labels=None):
    variables = {k: v for k, v in variables.items() if v}  # no empty collection
    return module.apply(variables, z, train=False, labels=labels)


def generator_template(config: Config, num_classes: int = 0) -> tuple[Any, dict]:
    """(module, variables with the right shapes) for the config's generator (conditional on
    `num_classes` classes, if > 0), without training: every collection, and the EMA copy under
    "ema" if the run keeps one, as the checkpoint's generator item holds them."""
    generator, _ = build_models(config, num_classes=num_classes)
    variables = generator.init(seed_keys(config.seed)[0], jnp.zeros((2, config.z_dim), jnp.float32), train=False,
                               labels=example_labels(num_classes))
    template = {"batch_stats": {}, **variables}
    return generator, {**template, "ema": dict(variables)} if config.ema else template


def load_generator(workdir: str, step: int | None = None, ema: bool = True) -> Generator:
    """G of the checkpoint at `step` (the latest if None) in `workdir`: its EMA if the run kept
    one and `ema`, else the raw G; UserError if there is no checkpoint. A conditional run's class
    names come from the checkpoint."""
    checkpoints = Checkpoints(workdir, read_only=True)
    try:
        step, saved, meta = checkpoints.read_json(step)
        config = config_from_saved(saved)
        class_names = tuple(meta.get("classes", ())) if config.conditional else ()
        module, template = generator_template(config, len(class_names))
        variables = checkpoints.restore_generator(template, step)
    finally:
        checkpoints.close()
    averaged = variables.pop("ema", None)
    use_ema = ema and averaged is not None
    return Generator(config, module, averaged if use_ema else variables, step, use_ema, class_names)


__all__ = ["BATCH", "Generator", "generator_template", "load_generator", "map_in_batches"]
