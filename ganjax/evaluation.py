"""Does a generator fit its data? The sample-quality metrics that apply to a run's dataset.

Each metric family is one entry of `FAMILIES`; every one whose `applies(config)` holds scores
the run (their metric names differ):

- `modes`, 2-D mixtures (toy:ring8, toy:grid25): modes covered, share of high-quality samples
  (VEEGAN, Srivastava et al. 2017: 2,500 samples within 3 std of a mode) and the reverse KL of
  the mode histogram.
- `jsd`, 1-D (toy:1d): Jensen-Shannon divergence between the data and sample histograms.
- `digits` (32x32, 1 channel: the embedded digits or tfds:mnist): Frechet distance, KID and the
  Inception-Score analogue on the features of the shipped digit classifier, each beside its
  real-vs-real value (two disjoint sets of real digits of the same size); and how the classifier
  sees the samples: the share it labels with confidence > 0.9, and the smallest and largest
  share of one class (a mode collapse shows as a class far from 10 %). For a conditional run
  (samples drawn with balanced labels) also `class_accuracy`, the share of samples that the
  classifier assigns to the class they were drawn for, and `intra_fd`, the Frechet distance
  within each class (the class's samples against the reference set's images of that class)
  averaged over the classes, beside its real-vs-real `intra_fd_real`.
- `inception`, folder: and tfds: images (and any image run given --inception_weights, digits
  included): FID, KID, precision/recall, density/coverage and IS on the pool3 features of
  pytorch-fid's Inception-v3 (ganjax.metrics.inception), --eval_samples samples against the
  statistics of the whole training set (cached beside its uint8 cache: `ganjax.fid`). Its weights
  are pytorch-fid's download (ganjax.metrics.inception_weights); where they are missing the
  family does not apply, and a training run says so once at its start (`inception_notice`).

A feature-based family (`FeatureFamily`) names a feature extractor and its real images;
`reference_statistics` computes the real reference features and the real-vs-real scores once per
dataset.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Union

import jax
import numpy as np

from ganjax.config import Config, data_kind
from ganjax.latent import balanced_labels, sample_z
from ganjax.metrics import (feature_scores, frechet_distance, histogram_jsd, mode_coverage, real_split,
                            reverse_kl)
from ganjax.metrics.digits import class_balance

N_TOY = 2500  # the papers' sample count
N_DIGITS = 2500  # half of the 5,000 embedded digits: the other half is the reference set
KID_SUBSETS_DURING_TRAINING = 10  # 0.14 s of an evaluation at 2,500 digits on 2 cores, the paper's 100 0.17 s


@dataclasses.dataclass(frozen=True)
class MetricFamily:
    """Metrics computed from the samples alone: `compute(samples, config, kid_subsets) -> dict`
    (pure) scores n_samples samples of G (a count, or a function of the config) for a config
    that `applies`. Names are unique."""
    name: str
    applies: Callable[[Config], bool]
    n_samples: Union[int, Callable[[Config], int]]
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
    class_scores: Callable[[np.ndarray], dict] | None = None  # scores of the samples' class probabilities alone
    real_labels: Callable[[Config], np.ndarray] | None = None  # the classes of real_images, for conditional runs

    def compute(self, samples: np.ndarray, config: Config, kid_subsets: int = 100, labels=None) -> dict:
        """The scores of `samples`; with the `labels` they were drawn for (a conditional run) and
        `real_labels`, the conditional scores too (`conditional_scores`)."""
        reference, floor = reference_statistics(self, config, kid_subsets)
        features, probs = self.extractor(samples)
        scores = feature_scores(features, probs, reference, kid_subsets)
        by_class = self.class_scores(probs) if self.class_scores else {}
        if labels is not None and self.real_labels is not None:
            by_class.update(conditional_scores(self, config, features, probs, np.asarray(labels)))
        return {**scores, **by_class, **{f"{k}_real": v for k, v in floor.items()}}


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


def intra_class_fd(features_a, labels_a, features_b, labels_b) -> float:
    """The Frechet distance between the features of each class in a and in b, averaged over the
    classes that both hold (intra-class FD, as the intra-FID of Miyato & Koyama 2018)."""
    classes = np.intersect1d(np.unique(labels_a), np.unique(labels_b))
    return float(np.mean([frechet_distance(features_a[labels_a == c], features_b[labels_b == c]) for c in classes]))


def conditional_scores(family: FeatureFamily, config: Config, features, probs, labels) -> dict:
    """`class_accuracy` (the share of samples the family's classifier assigns to the class they
    were drawn for), `intra_fd` against the reference set and `intra_fd_real`, the same of the
    other real set (`reference_statistics`' split)."""
    real_labels = np.asarray(family.real_labels(config))
    first, reference = real_split(len(real_labels), family.n_samples, seed=0)
    dataset = (family.name, config.dataset, config.resolution, config.channels)
    real_features, _, reference_features = _REFERENCE_FEATURES[dataset]
    return {"class_accuracy": float(np.mean(np.argmax(probs, axis=1) == labels)),
            "intra_fd": intra_class_fd(features, labels, reference_features, real_labels[reference]),
            "intra_fd_real": intra_class_fd(real_features, real_labels[first], reference_features,
                                            real_labels[reference])}


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
    return digit_data and config.resolution == 32 and config.channels == 1


def _digit_features(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from ganjax.metrics.classifier import digit_features

    return digit_features(samples)


def _real_digits(config: Config) -> np.ndarray:
    """The 5,000 embedded digits in [-1, 1] (also for tfds:mnist, so both score against the same
    reference)."""
    from ganjax.data.digits import load_digits
    from ganjax.metrics.classifier import to_model_input

    return to_model_input(load_digits(32, 1))


def _real_digit_labels(config: Config) -> np.ndarray:
    from ganjax.metrics.classifier import load_digit_labels

    return load_digit_labels()


def _wants_inception(config: Config) -> bool:
    """Image runs on folder: or tfds: data other than the digits, and image runs that name
    --inception_weights (digits keep their classifier metrics, which need no download)."""
    if data_kind(config.dataset) != "image":
        return False
    other_images = config.dataset.startswith(("folder:", "tfds:")) and not _is_digits(config)
    return other_images or config.inception_weights is not None


def inception_problem(config: Config) -> str | None:
    """Why the Inception metrics that the config asks for cannot run (one line); None when they
    can or are not asked for."""
    if not _wants_inception(config):
        return None
    from ganjax.metrics.inception_weights import weights_problem

    return weights_problem(config.inception_weights)


def inception_notice(config: Config) -> str | None:
    """What a training run says once at its start when its Inception metrics are off."""
    problem = inception_problem(config) if config.eval_every else None
    return None if problem is None else f"ganjax: no Inception metrics in this run: {problem}"


def _inception_metrics(samples: np.ndarray, config: Config, kid_subsets: int) -> dict:
    """Inception FID / KID / precision / recall / density / coverage of the samples against the
    whole training set's statistics and 10,000 of its images, and the samples' IS (ganjax.fid)."""
    from ganjax.errors import warn
    from ganjax.fid import compare, dataset_reference, inception_score_of, side_of_outputs
    from ganjax.metrics.inception import inception_outputs
    from ganjax.metrics.inception_weights import find_weights, load_weights

    weights = load_weights(*find_weights(config.inception_weights))
    reference = dataset_reference(config, weights)
    outputs = inception_outputs(iter(samples), weights.variables, total=len(samples), progress=True)
    fake = side_of_outputs("G's samples", outputs)
    notes: list = []
    scores = compare(fake, reference, kid_subsets, notes=notes)
    inception_score = inception_score_of(fake, notes)
    for note in notes:
        warn(note)
    names = {"kid": "inception_kid", "kid_std": "inception_kid_std"}
    scores = {names.get(k, k): v for k, v in scores.items()}
    if inception_score is not None:
        scores["inception_score"], scores["inception_score_std"] = inception_score
    return scores


FAMILIES: tuple[Family, ...] = (
    MetricFamily("modes", lambda config: config.dataset in ("toy:ring8", "toy:grid25"), N_TOY, _mixture_modes),
    MetricFamily("jsd", lambda config: config.dataset == "toy:1d", N_TOY, _histogram_jsd),
    FeatureFamily("digits", _is_digits, N_DIGITS, _digit_features, _real_digits, class_balance, _real_digit_labels),
    MetricFamily("inception", lambda config: _wants_inception(config) and inception_problem(config) is None,
                 lambda config: config.eval_samples, _inception_metrics),
)


def families(config: Config) -> list[Family]:
    """Every metric family that scores runs of this config."""
    return [f for f in FAMILIES if f.applies(config)]


def family(config: Config) -> Family | None:
    """The first metric family that scores runs of this config; None where none applies."""
    return next(iter(families(config)), None)


def has_metrics(config: Config) -> bool:
    return bool(families(config))


def _count(f: Family, config: Config) -> int:
    return f.n_samples(config) if callable(f.n_samples) else f.n_samples


def sample_count(config: Config) -> int:
    """How many samples of G the config's metrics score (the most that one of its families scores)."""
    return max((_count(f, config) for f in families(config)), default=N_TOY)


def sample_metrics(config: Config, samples: np.ndarray, kid_subsets: int = 100, labels=None) -> dict:
    """The metrics of `samples` (G's output, n = sample_count(config)) for the run's dataset, each
    family scoring the first samples it needs; {} where none applies. `labels`: the classes a
    conditional run's samples were drawn for (the feature families score them too)."""
    metrics: dict = {}
    for f in families(config):
        n = _count(f, config)
        extra = {"labels": labels[:n]} if labels is not None and isinstance(f, FeatureFamily) else {}
        metrics.update(f.compute(samples[:n], config, kid_subsets, **extra))
    return metrics


def evaluate(generate, config: Config, seed: int = 0, kid_subsets: int = 100, num_classes: int = 0) -> dict:
    """Metrics of `generate(z)` (a batched function of latents to samples; `generate(z, labels)`
    for a conditional run of `num_classes` classes, whose samples are drawn for the classes in
    turn) on fresh latents drawn from `seed`, in calls of generation.BATCH (2,500 digits in one
    call took 0.41 s on 2 CPU cores, in calls of 250 0.35 s); {} where no metric applies."""
    from ganjax.generation import BATCH, map_in_batches

    if not has_metrics(config):
        return {}
    z = np.asarray(sample_z(jax.random.PRNGKey(seed), sample_count(config), config.z_dim))
    labels = balanced_labels(len(z), num_classes) if num_classes else None
    samples = map_in_batches(generate, z if labels is None else (z, labels), BATCH)
    return sample_metrics(config, samples, kid_subsets, labels)
