"""How much of a training run's wall time is spent outside its training steps.

    python -m experiments.bench.run_overhead                       # the default run
    python -m experiments.bench.run_overhead --flags="--n_epoch=10" --out=""
    python -m experiments.bench.run_overhead --flags="--compile_cache=/tmp/xla-cache"  # run twice: warm

Runs `python -m ganjax.train FLAGS` in a fresh workdir (compile cache off unless FLAGS set
--compile_cache, so the compile is counted as a first run pays it) and splits its time, from
the run's own records:
  process:  the process end to end (imports, data, state, compile, training, the last save);
  loop:     from the start of training to its end, as the run's "Finished ... in X s" line says;
  steps:    the training chunks (sum over metrics.jsonl's chunk records of steps / steps_per_s,
            each chunk timed from its call until its metrics are on the host).
Everything else (compile, sample grids, evaluations, checkpoints, TensorBoard) is `outside`,
and the log splits it too (`breakdown`): from each chunk record's end time and duration, the
gap before the first chunk (the compile), the gaps after each epoch's last chunk (its sample
grid, checkpoint, TensorBoard image, and at evaluation epochs the evaluation: those are counted
apart), the gaps within epochs (checkpoints due by steps, logging), and the end of the run
(the last epoch's grid and evaluation, the curves plot, the last save).
Appends one JSON line to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

from experiments import cpu_description
from ganjax.summaries import read_log


def chunk_seconds(records: list[dict]) -> float:
    """Seconds in training chunks: each chunk record's steps / steps_per_s."""
    total, previous = 0.0, 0
    for record in records:
        if "steps_per_s" in record:
            total += (record["step"] - previous) / record["steps_per_s"]
            previous = record["step"]
    return total


def breakdown(records: list[dict], steps_per_epoch: int, loop_s: float) -> dict:
    """Seconds outside the training chunks, by where in the loop they fall (see the docstring)."""
    evaluated = {r["step"] for r in records if "steps_per_s" not in r}  # the other records are evaluations
    chunks = [r for r in records if "steps_per_s" in r]
    parts = {"before_first_chunk": 0.0, "epoch_ends": 0.0, "evaluation_epoch_ends": 0.0, "within_epochs": 0.0}
    counts = {"epoch_ends": 0, "evaluation_epoch_ends": 0}
    previous_end, previous_step = 0.0, 0
    for i, r in enumerate(chunks):
        duration = (r["step"] - previous_step) / r["steps_per_s"]
        gap = r["wall_time"] - duration - previous_end
        if i == 0:
            part = "before_first_chunk"
        elif previous_step % steps_per_epoch:
            part = "within_epochs"
        else:
            part = "evaluation_epoch_ends" if previous_step in evaluated else "epoch_ends"
            counts[part] += 1
        parts[part] += gap
        previous_end, previous_step = r["wall_time"], r["step"]
    parts["end_of_run"] = loop_s - previous_end
    out = {k: round(v, 2) for k, v in parts.items()}
    out.update({f"{k}_count": v for k, v in counts.items()})
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--flags", default="", help="ganjax.train flags (default: none, the default run)")
    p.add_argument("--out", default="experiments/results/run_overhead.jsonl", help="JSON lines file ('' : none)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        cache = [] if "--compile_cache" in a.flags else ["--compile_cache=none"]
        command = [sys.executable, "-m", "ganjax.train", *shlex.split(a.flags), f"--workdir={workdir}", *cache]
        tic = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        process = time.perf_counter() - tic
        if done.returncode:
            sys.exit(f"the run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        loop = float(re.search(r"Finished \d+ steps in ([\d.]+) s", done.stdout + done.stderr).group(1))
        records = read_log(os.path.join(workdir, "metrics.jsonl"))
        steps = chunk_seconds(records)
        steps_per_epoch = int(re.search(r"epochs of (\d+)", done.stdout + done.stderr).group(1))
        parts = breakdown(records, steps_per_epoch, loop)
    row = {"flags": a.flags or "(default)", "process_s": round(process, 1), "loop_s": round(loop, 1),
           "steps_s": round(steps, 1), "outside_loop_pct": round(100 * (loop - steps) / loop, 2),
           "outside_process_pct": round(100 * (process - steps) / process, 2), "outside_loop_s": parts,
           "cpu": cpu_description(),
           "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(row))
    print(f"{a.flags or '(default)'}: {process:.1f} s end to end, {loop:.1f} s from the start of training, "
          f"{steps:.1f} s in training steps: {row['outside_loop_pct']:.1f} % of the training loop and "
          f"{row['outside_process_pct']:.1f} % of the process outside them")
    print("outside the steps, in the loop: " + ", ".join(f"{k} {v}" + ("" if k.endswith("count") else " s")
                                                        for k, v in parts.items()))
    if a.out:
        with open(a.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
