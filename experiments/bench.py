"""ganjax against the PyTorch eager reference loop, measured side by side in the same process.

    python experiments/bench.py                                   # the full grid (slow on 2 cores)
    python experiments/bench.py --arch dcgan-64 --batch 64        # the homework's 64x64 DCGAN
    python experiments/bench.py --arch mlp --batch 256 --steps 50 # the toy MLP
    python experiments/bench.py --torch-threads 2,1               # PyTorch at several thread counts
    python experiments/bench.py --table experiments/results/bench.jsonl   # the table of earlier runs

Grid: arch (mlp: the `toy` preset; dcgan-32 / dcgan-64: the hw6-<loss> presets at that resolution,
3 channels) x loss (gan, wgan, wgan-gp) x batch (64, 256). Each configuration runs in its own
subprocess (so that its peak RSS is its own) and, in that process:
  1. compiles ganjax's training chunk of --steps steps ahead of time (the compile time) and runs
     it once; its FLOPs per step come from XLA's cost_analysis() of that chunk (the scan body is
     counted once, so it is one step; it counts what XLA runs, including the zero taps of the
     sub-pixel transposed convolutions); peak RSS is read here, before PyTorch has allocated;
  2. builds the PyTorch port (experiments/torch_reference.py) and runs one warm-up step;
  3. alternates --repeat times: one ganjax chunk, then --steps PyTorch steps per thread count,
     and keeps the medians, so both see the same machine load;
  4. times a 2048x2048 float32 matmul in JAX before and after each repeat: the best is the "peak"
     FLOP/s, a measured stand-in for the machine's peak, not its datasheet figure (under a
     varying load a step can beat it: a share above 100 % means the load dropped meanwhile).
The ratio is ganjax over the fastest PyTorch thread count. Appends JSON lines to
experiments/results/bench.jsonl and writes the table to stdout and experiments/results/bench.md.
PyTorch is optional: without it only the ganjax columns are filled.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ARCHS = ("mlp", "dcgan-32", "dcgan-64")
LOSSES = ("gan", "wgan", "wgan-gp")
BATCHES = (64, 256)
RESULTS = os.path.join(HERE, "results")


def flags_of(arch: str, loss: str, batch: int) -> str:
    """ganjax.train flags of one grid point: the presets the homework and the toy runs use."""
    if arch == "mlp":
        return f"--preset=toy --loss={loss} --batch_size={batch}"
    resolution = int(arch.split("-")[1])
    return f"--preset=hw6-{loss} --resolution={resolution} --channels=3 --batch_size={batch}"


def matmul_gflops(n: int = 2048, repeat: int = 3) -> float:
    """Best GFLOP/s of an n x n float32 matmul in JAX (the measured peak of this machine, now)."""
    import jax
    import jax.numpy as jnp
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = float("inf")
    for _ in range(repeat):
        tic = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - tic)
    return 2 * n ** 3 / best / 1e9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_one(arch: str, loss: str, batch: int, steps: int, repeat: int, torch_threads: list[int]) -> dict:
    """All measurements of one configuration (runs in the subprocess)."""
    import dataclasses

    import jax
    from bench_steps import prepare, time_chunk

    peak = matmul_gflops()
    flags = flags_of(arch, loss, batch)
    config, gan, state, compiled, args, compile_s = prepare(flags, steps)
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", float("nan")))
    state, _ = time_chunk(compiled, state, args)
    rss_ganjax = peak_rss_mb()
    try:
        import torch_reference
    except ImportError:  # torch not installed: ganjax only
        torch_reference = None
    runners = {}
    if torch_reference is not None:
        c = dataclasses.asdict(config)
        for th in torch_threads:
            runners[th] = torch_reference.Runner(c, gan.data_shape, seed=config.seed, threads=th)
            runners[th].run(1)
    jax_t, torch_t = [], {th: [] for th in runners}
    for _ in range(repeat):
        state, t = time_chunk(compiled, state, args)
        jax_t.append(t)
        for th, r in runners.items():
            torch_t[th].append(r.run(steps))
        peak = max(peak, matmul_gflops(repeat=2))
    sps = steps / statistics.median(jax_t)
    torch_sps = {th: steps / statistics.median(ts) for th, ts in torch_t.items()}
    best_torch = max(torch_sps.values()) if torch_sps else None
    return {
        "arch": arch, "loss": loss, "batch": batch, "flags": flags, "steps": steps, "repeat": repeat,
        "backend": jax.default_backend(), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "compile_s": round(compile_s, 2), "steps_per_s": round(sps, 4), "images_per_s": round(sps * batch, 1),
        "torch_steps_per_s": {str(th): round(v, 4) for th, v in torch_sps.items()},
        "ratio": round(sps / best_torch, 3) if best_torch else None,
        "gflop_per_step": round(flops / 1e9, 3), "gflop_per_s": round(flops * sps / 1e9, 2),
        "peak_gflop_per_s": round(peak, 1), "peak_share": round(flops * sps / 1e9 / peak, 4),
        "peak_rss_mb_ganjax": round(rss_ganjax), "peak_rss_mb_total": round(peak_rss_mb()),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def table(rows: list[dict]) -> str:
    head = ("| arch | loss | batch | ganjax steps/s | PyTorch steps/s (threads) | ganjax / PyTorch | images/s "
            "| compile s | GFLOP/step | GFLOP/s | share of peak | peak RSS MB | load | XLA_FLAGS |")
    lines = [head, "|" + " --- |" * 3 + " ---: |" * 10 + " --- |"]
    for r in rows:
        ts = ", ".join(f"{v:.3g} ({k})" for k, v in r["torch_steps_per_s"].items()) or "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        lines.append(f"| {r['arch']} | {r['loss']} | {r['batch']} | {r['steps_per_s']:.3g} | {ts} | {ratio} "
                     f"| {r['images_per_s']:.4g} | {r['compile_s']:.1f} | {r['gflop_per_step']:.3g} "
                     f"| {r['gflop_per_s']:.3g} | {100 * r['peak_share']:.1f} % of {r['peak_gflop_per_s']:.0f} "
                     f"| {r['peak_rss_mb_ganjax']} | {r['load_avg_1m']} | {r.get('xla_flags') or '-'} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default=",".join(ARCHS), help=f"comma-separated subset of {ARCHS}")
    p.add_argument("--loss", default=",".join(LOSSES), help=f"comma-separated subset of {LOSSES}")
    p.add_argument("--batch", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per timed chunk (default: 3 for dcgan-64, 10 for dcgan-32, 50 for mlp)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved timed chunks per side (medians kept)")
    p.add_argument("--torch-threads", default=str(os.cpu_count()),
                   help="comma-separated torch.set_num_threads values to time (the fastest is the baseline)")
    p.add_argument("--xla-flags", default=None,
                   help="XLA_FLAGS for the ganjax side (e.g. --xla_cpu_experimental_ynn_fusion_type= to run "
                        "convolutions and dots with XLA's Eigen kernels instead of YNNPACK); default: inherited")
    p.add_argument("--out", default=RESULTS, help="folder of bench.jsonl and bench.md")
    p.add_argument("--table", metavar="JSONL", help="only print the table of the rows in JSONL (e.g. bench.jsonl)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: arch,loss,batch of one subprocess run
    a = p.parse_args()
    threads = [int(t) for t in a.torch_threads.split(",")]
    default_steps = {"mlp": 50, "dcgan-32": 10, "dcgan-64": 3}
    if a.table:
        with open(a.table) as f:
            print(table([json.loads(line) for line in f if line.strip()]))
        return
    if a.one:
        arch, loss, batch = a.one.split(",")
        print(json.dumps(run_one(arch, loss, int(batch), a.steps or default_steps[arch], a.repeat, threads)))
        return
    os.makedirs(a.out, exist_ok=True)
    rows = []
    for arch in a.arch.split(","):
        for loss in a.loss.split(","):
            for batch in a.batch.split(","):
                cmd = [sys.executable, os.path.abspath(__file__), f"--one={arch},{loss},{batch}",
                       f"--repeat={a.repeat}", f"--torch-threads={a.torch_threads}"]
                cmd += [f"--steps={a.steps}"] if a.steps else []
                env = dict(os.environ, **({"XLA_FLAGS": a.xla_flags} if a.xla_flags is not None else {}))
                out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=env).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
                with open(os.path.join(a.out, "bench.jsonl"), "a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    md = table(rows)
    print("\n" + md)
    with open(os.path.join(a.out, "bench.md"), "w") as f:
        f.write(md + "\n")


if __name__ == "__main__":
    main()
