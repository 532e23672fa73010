"""Benchmarks and profiling of ganjax (and of the PyTorch reference loop it is timed against)."""
