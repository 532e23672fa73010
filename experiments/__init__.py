"""Benchmarks, reproductions and tools around ganjax (not part of the installed package).

Run every script as a module from the repository root, e.g. ``python -m experiments.bench.bench``;
see experiments/README.md for the scripts, their commands and their results.
"""

import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
"""experiments/results/: the figures, tables and logs the scripts write and README.md cites."""
