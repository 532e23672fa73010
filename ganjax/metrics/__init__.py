"""Sample-quality metrics.

Pure numpy functions here; the digit classifier that gives image features (Flax) lives in
`ganjax.metrics.classifier`, and the digit scores with their real-vs-real floor in
`ganjax.metrics.digits`.
"""

from ganjax.metrics.divergence import histogram_jsd, js_divergence, kl_divergence
from ganjax.metrics.image import (feature_scores, fit_gaussian, frechet_distance, inception_score, kid,
                                  real_split)
from ganjax.metrics.toy import mode_coverage, mode_histogram, reverse_kl

__all__ = ["mode_coverage", "mode_histogram", "reverse_kl", "kl_divergence", "js_divergence",
           "histogram_jsd", "fit_gaussian", "frechet_distance", "kid", "inception_score", "feature_scores",
           "real_split"]
