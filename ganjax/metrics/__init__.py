"""Sample-quality metrics (pure numpy functions)."""

from ganjax.metrics.toy import mode_coverage

__all__ = ["mode_coverage"]
