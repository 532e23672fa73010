"""Does a generator fit its data? The sample-quality metrics that apply to a run's dataset.

- 2-D mixtures (toy:ring8, toy:grid25): modes covered, share of high-quality samples (VEEGAN,
  Srivastava et al. 2017: 2,500 samples within 3 std of a mode) and the reverse KL of the mode
  histogram.
- 1-D (toy:1d): Jensen-Shannon divergence between the data and sample histograms.
- Digits (32x32, 1 channel: the embedded digits or tfds:mnist): Frechet distance, KID and the
  Inception-Score analogue on the features of the shipped digit classifier, each beside its
  real-vs-real value (two disjoint sets of real digits of the same size).
Other image data have no offline feature extractor here (REFERENCE.md: no package ships
Inception-v3 weights), so they get no metric.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from ganjax.config import Config
from ganjax.metrics import histogram_jsd, mode_coverage, reverse_kl

N_TOY = 2500  # the papers' sample count
N_DIGITS = 2500  # half of the 5,000 embedded digits: the other half is the reference set
KID_SUBSETS_DURING_TRAINING = 10  # 100 subsets take ~10 s on 2 cores; 10 keep a run fast


def has_metrics(config: Config) -> bool:
    return config.dataset.startswith("toy:") or _is_digits(config)


def _is_digits(config: Config) -> bool:
    digit_data = config.dataset == "digits" or config.dataset.split(":")[:2] == ["tfds", "mnist"]
    return digit_data and config.resolution == 32 and config.channels == 1 and config.arch == "dcgan"


def sample_count(config: Config) -> int:
    return N_DIGITS if _is_digits(config) else N_TOY


@functools.lru_cache(maxsize=4)
def _digit_reference(kid_subsets: int) -> tuple[np.ndarray, dict]:
    """(the real reference set, the real-vs-real scores), fixed by seed 0 so that every run and
    every evaluation compare against the same digits."""
    from ganjax.data.digits import load_digits
    from ganjax.metrics.digits import real_vs_real

    images = load_digits(32, 1)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order[N_DIGITS:2 * N_DIGITS]], real_vs_real(N_DIGITS, 0, kid_subsets=kid_subsets)


def sample_metrics(config: Config, samples: np.ndarray, kid_subsets: int = 100) -> dict:
    """The metrics of `samples` (G's output, n = sample_count(config)) for the run's dataset;
    {} where none applies."""
    if config.dataset in ("toy:ring8", "toy:grid25"):
        from ganjax.data.toy import toy_modes

        centers, std = toy_modes(config.dataset)
        return {**mode_coverage(samples, centers, std), "modes_total": len(centers),
                "reverse_kl": reverse_kl(samples, centers)}
    if config.dataset == "toy:1d":
        from ganjax.data.toy import make_toy

        data = make_toy(config.dataset, len(samples), seed=config.seed + 1)
        return {"jsd": histogram_jsd(data[:, 0], np.asarray(samples)[:, 0])}
    if _is_digits(config):
        from ganjax.metrics.digits import digit_scores

        reference, floor = _digit_reference(kid_subsets)
        scores = digit_scores(samples, reference, kid_subsets=kid_subsets)
        return {**scores, **{f"{k}_real": v for k, v in floor.items()}}
    return {}


def evaluate(generate, config: Config, seed: int = 0, kid_subsets: int = 100) -> dict:
    """Metrics of `generate(z)` (a batched function of latents to samples) on fresh latents
    drawn from `seed`; {} where no metric applies to the dataset."""
    if not has_metrics(config):
        return {}
    z = jax.random.normal(jax.random.PRNGKey(seed), (sample_count(config), config.z_dim))
    return sample_metrics(config, np.asarray(generate(np.asarray(z))), kid_subsets)
