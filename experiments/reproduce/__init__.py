"""Reproductions of the results README.md cites (figures and tables in experiments/results/)."""
