"""Benchmarks, reproductions and tools around ganjax (not part of the installed package).

Run every script as a module from the repository root, e.g. ``python -m experiments.bench.bench``;
see experiments/README.md for the scripts, their commands and their results.
"""

import os

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
"""experiments/results/: the figures, tables and logs the scripts write and README.md cites."""


def cpu_description() -> str:
    """The CPU a figure was measured on, e.g. 'AMD EPYC (family 26 model 2), 2 cores, AVX-512':
    the model name alone does not tell the generations apart that virtual machines report."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        import platform
        return platform.processor() or platform.machine()
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return (f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}), "
            f"{os.cpu_count()} cores, {vector}")


def merge_seeds(recorded: list[dict], runs: list[dict]) -> list[dict]:
    """A row's records after new `runs`: a rerun of some seeds replaces those, keeps the others."""
    seeds = {r["seed"] for r in runs}
    return sorted([r for r in recorded if r["seed"] not in seeds] + runs, key=lambda r: r["seed"])


def keep_last_grid(workdir: str, path: str) -> None:
    """Copies a run's last sample grid to `path`, so that the figure outlives the run's workdir."""
    import shutil

    samples = os.path.join(workdir, "samples")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(os.path.join(samples, sorted(os.listdir(samples))[-1]), path)
