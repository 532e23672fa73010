"""Does a generator fit its data? The sample-quality metrics that apply to a run's dataset.

Each metric family is one entry of `FAMILIES`; the first whose `applies(config)` holds scores
the run:

- `modes`, 2-D mixtures (toy:ring8, toy:grid25): modes covered, share of high-quality samples
  (VEEGAN, Srivastava et al. 2017: 2,500 samples within 3 std of a mode) and the reverse KL of
  the mode histogram.
- `jsd`, 1-D (toy:1d): Jensen-Shannon divergence between the data and sample histograms.
- `digits` (32x32, 1 channel: the embedded digits or tfds:mnist): Frechet distance, KID and the
  Inception-Score analogue on the features of the shipped digit classifier, each beside its
  real-vs-real value (two disjoint sets of real digits of the same size).

A feature-based family (`FeatureFamily`) names a feature extractor and its real images;
`reference_statistics` computes the real reference features and the real-vs-real scores once per
dataset. Inception-v3 FID on other image data would be one more entry with an Inception
extractor; its weights are a download (pytorch-fid fetches them at run time) and these metrics
run offline, so other image data get no metric here.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Union

import jax
import numpy as np

from ganjax.config import Config
from ganjax.latent import sample_z
from ganjax.metrics import feature_scores, histogram_jsd, mode_coverage, real_split, reverse_kl

N_TOY = 2500  # the papers' sample count
N_DIGITS = 2500  # half of the 5,000 embedded digits: the other half is the reference set
KID_SUBSETS_DURING_TRAINING = 10  # 100 subsets take ~10 s on 2 cores; 10 keep a run fast


@dataclasses.dataclass(frozen=True)
class MetricFamily:
    """Metrics computed from the samples alone: `compute(samples, config, kid_subsets) -> dict`
    (pure) scores n_samples samples of G for a config that `applies`. Names are unique."""
    name: str
    applies: Callable[[Config], bool]
    n_samples: int
    compute: Callable[[np.ndarray, Config, int], dict]


@dataclasses.dataclass(frozen=True)
class FeatureFamily:
    """FD, KID and IS in the feature space of `extractor` (samples in [-1, 1], (N, H, W, C) ->
    (features (N, d), class probabilities (N, classes))), each beside its real-vs-real value.
    `real_images(config)` are the real images in [-1, 1], at least 2 * n_samples of them: two
    disjoint sets of n_samples (`real_split`, seed 0) give the real-vs-real value, and the second
    is the reference G's samples are scored against."""
    name: str
    applies: Callable[[Config], bool]
    n_samples: int
    extractor: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    real_images: Callable[[Config], np.ndarray]

    def compute(self, samples: np.ndarray, config: Config, kid_subsets: int = 100) -> dict:
        reference, floor = reference_statistics(self, config, kid_subsets)
        features, probs = self.extractor(samples)
        scores = feature_scores(features, probs, reference, kid_subsets)
        return {**scores, **{f"{k}_real": v for k, v in floor.items()}}


Family = Union[MetricFamily, FeatureFamily]

_REFERENCE_FEATURES: dict = {}  # (family, dataset) -> (features of both real sets, probs of the first)
_REAL_VS_REAL: dict = {}  # (family, dataset, kid_subsets) -> real-vs-real scores


def reference_statistics(family: FeatureFamily, config: Config, kid_subsets: int) -> tuple[np.ndarray, dict]:
    """(the features of the real reference set, the real-vs-real scores) of a feature family on
    the config's dataset, computed once per (family, dataset) and per KID subset count, so that
    every evaluation of a run compares against the same real images."""
    dataset = (family.name, config.dataset, config.resolution, config.channels)
    if dataset not in _REFERENCE_FEATURES:
        images = family.real_images(config)
        first, reference = real_split(len(images), family.n_samples, seed=0)
        features, probs = family.extractor(images[first])
        _REFERENCE_FEATURES[dataset] = features, probs, family.extractor(images[reference])[0]
    features, probs, reference_features = _REFERENCE_FEATURES[dataset]
    if dataset + (kid_subsets,) not in _REAL_VS_REAL:
        _REAL_VS_REAL[dataset + (kid_subsets,)] = feature_scores(features, probs, reference_features, kid_subsets)
    return reference_features, _REAL_VS_REAL[dataset + (kid_subsets,)]


def _mixture_modes(samples: np.ndarray, config: Config, kid_subsets: int) -> dict:
    from ganjax.data.toy import toy_modes

    centers, std = toy_modes(config.dataset)
    return {**mode_coverage(samples, centers, std), "modes_total": len(centers),
            "reverse_kl": reverse_kl(samples, centers)}


def _histogram_jsd(samples: np.ndarray, config: Config, kid_subsets: int) -> dict:
    from ganjax.data.toy import make_toy

    data = make_toy(config.dataset, len(samples), seed=config.seed + 1)
    return {"jsd": histogram_jsd(data[:, 0], np.asarray(samples)[:, 0])}


def _is_digits(config: Config) -> bool:
    digit_data = config.dataset == "digits" or config.dataset.split(":")[:2] == ["tfds", "mnist"]
    return digit_data and config.resolution == 32 and config.channels == 1 and config.arch == "dcgan"


def _digit_features(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ganjax.metrics.classifier import digit_features

    return digit_features(samples)


def _real_digits(config: Config) -> np.ndarray:
    """The 5,000 embedded digits in [-1, 1] (also for tfds:mnist, so both score against the same
    reference)."""
    from ganjax.data.digits import load_digits
    from ganjax.metrics.classifier import to_model_input

    return to_model_input(load_digits(32, 1))


FAMILIES: tuple[Family, ...] = (
    MetricFamily("modes", lambda config: config.dataset in ("toy:ring8", "toy:grid25"), N_TOY, _mixture_modes),
    MetricFamily("jsd", lambda config: config.dataset == "toy:1d", N_TOY, _histogram_jsd),
    FeatureFamily("digits", _is_digits, N_DIGITS, _digit_features, _real_digits),
)


def family(config: Config) -> Family | None:
    """The metric family that scores runs of this config; None where none applies."""
    return next((f for f in FAMILIES if f.applies(config)), None)


def has_metrics(config: Config) -> bool:
    return family(config) is not None


def sample_count(config: Config) -> int:
    """How many samples of G the config's metrics score."""
    f = family(config)
    return N_TOY if f is None else f.n_samples


def sample_metrics(config: Config, samples: np.ndarray, kid_subsets: int = 100) -> dict:
    """The metrics of `samples` (G's output, n = sample_count(config)) for the run's dataset;
    {} where none applies."""
    f = family(config)
    return {} if f is None else f.compute(samples, config, kid_subsets)


def evaluate(generate, config: Config, seed: int = 0, kid_subsets: int = 100) -> dict:
    """Metrics of `generate(z)` (a batched function of latents to samples) on fresh latents
    drawn from `seed`; {} where no metric applies to the dataset."""
    if not has_metrics(config):
        return {}
    z = sample_z(jax.random.PRNGKey(seed), sample_count(config), config.z_dim)
    return sample_metrics(config, np.asarray(generate(np.asarray(z))), kid_subsets)
