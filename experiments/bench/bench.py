"""ganjax against the PyTorch eager reference loop, measured side by side in the same process.

    python -m experiments.bench.bench                                   # the full grid (slow on 2 cores)
    python -m experiments.bench.bench --arch dcgan-64 --batch 64        # the homework's 64x64 DCGAN
    python -m experiments.bench.bench --arch mlp --batch 256 --steps 50 # the toy MLP
    python -m experiments.bench.bench --torch-threads 2,1               # PyTorch at several thread counts
    python -m experiments.bench.bench --dtype float32,bfloat16          # mixed precision too (for GPUs)
    python -m experiments.bench.bench --table experiments/results/bench.jsonl   # the table of earlier runs

Grid: arch (mlp: the `toy` preset; dcgan-32 / dcgan-64: the hw6-<loss> presets at that resolution,
3 channels; default: the default run's networks, DCGAN 32x32 with f 32 and 1 channel, G's EMA on
in ganjax only) x loss (gan, wgan, wgan-gp) x batch (64, 256) x dtype. On CPU each configuration runs
in its own subprocess (so that its peak RSS is its own); on a GPU all run in one process, and
memory is the device's: XLA's memory_analysis() of the chunk and torch.cuda.max_memory_allocated().
For each configuration:
  1. compiles ganjax's training chunk of --steps steps ahead of time (the compile time) and runs
     it once; the FLOPs per step come from XLA's cost analysis of one lowered train_step
     (`step_flops`); peak RSS is read here, before PyTorch has allocated;
  2. builds the PyTorch port (experiments/tools/torch_reference.py) and runs one warm-up step;
  3. alternates --repeat times: one ganjax chunk, then --steps PyTorch steps per thread count,
     and keeps the medians, so both see the same machine load;
  4. times a 2048x2048 matmul (8192x8192 on a GPU) in JAX in the step's dtype before and after
     each repeat: the best is the "peak" FLOP/s, a measured stand-in for the machine's peak, not
     its datasheet figure (under a varying load a step can beat it: a share above 100 % means
     the load dropped meanwhile). On GPUs float32 runs at JAX's default precision, TF32.
On a GPU PyTorch runs on CUDA with cudnn.benchmark and TF32 matmuls (XLA's defaults), and with
torch.autocast for bfloat16 rows. The ratio is ganjax over the fastest PyTorch thread count; the
table also gives PyTorch's share of the peak (its model FLOP/s) and 1.5 times it, the share a
1.5x-PyTorch ganjax would need. Appends JSON lines to experiments/results/bench.jsonl and writes
the table to stdout and experiments/results/bench.md.
PyTorch is optional: without it only the ganjax columns are filled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from experiments import RESULTS

ARCHS = ("mlp", "dcgan-32", "dcgan-64", "default")
LOSSES = ("gan", "wgan", "wgan-gp")
BATCHES = (64, 256)
# On a GPU, JAX would otherwise take 75 % of its memory at start, leaving PyTorch a quarter.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def flags_of(arch: str, loss: str, batch: int) -> str:
    """ganjax.train flags of one grid point: the presets the homework and the toy runs use."""
    if arch == "mlp":
        return f"--preset=toy --loss={loss} --batch_size={batch}"
    if arch == "default":  # the default run's networks (DCGAN 32x32, f 32, 1 channel, EMA on) without
        # InfoGAN's code, which the PyTorch side does not have (its head and embedding are < 1 % of the FLOPs)
        return f"--loss={loss} --batch_size={batch} --latent_codes=0"
    resolution = int(arch.split("-")[1])
    return f"--preset=hw6-{loss} --resolution={resolution} --channels=3 --batch_size={batch}"


def matmul_gflops(dtype: str = "float32", repeat: int = 3) -> float:
    """Best GFLOP/s of an n x n matmul in JAX in `dtype` at JAX's default precision (which lets
    float32 use TF32 tensor cores on GPUs): the measured peak of this machine, now. n is 2048 on
    CPU, 8192 on accelerators (large enough to fill an H100)."""
    import jax
    import jax.numpy as jnp
    n = 2048 if jax.default_backend() == "cpu" else 8192
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32).astype(dtype)
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


def device_mb(compiled) -> float | None:
    """Device memory of the compiled chunk (XLA's memory_analysis: arguments, outputs and
    temporaries, less the donated state that outputs reuse), in MiB; None where XLA gives none."""
    m = compiled.memory_analysis()
    if m is None:
        return None
    total = m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes
    return total / 2 ** 20


def step_flops(gan, state) -> float:
    """FLOPs of one train_step, the same on every machine: XLA's cost analysis of the step lowered
    for the CPU, with the networks' convolutions as lax convolutions (conv_impl="xla", what GPUs
    run), which XLA counts over the input positions they really read (a transposed convolution's
    inserted zeros are not counted; neither are the zero taps that the CPU's sub-pixel form
    runs). Neither the compiled program's count (cuDNN convolutions are custom calls counted as
    0 on a GPU) nor a GPU lowering's (no cost analysis through the CUDA plugin) would do."""
    import functools

    import jax
    import jax.numpy as jnp
    from ganjax.steps import train_step

    nets = {name: getattr(gan, name) for name in ("generator", "discriminator")}
    gan = dataclasses.replace(gan, **{name: net.clone(conv_impl="xla") for name, net in nets.items()
                                      if hasattr(net, "conv_impl")})
    cpu = jax.devices("cpu")[0]
    real = jax.device_put(jnp.zeros((gan.batch_size,) + gan.data_shape, jnp.float32), cpu)
    lowered = jax.jit(functools.partial(train_step, gan)).lower(jax.device_put(state, cpu), real)
    cost = lowered.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"])


def recount(row: dict) -> dict:
    """A bench row with its FLOP figures counted again by step_flops (rows measured before the
    FLOPs were counted so, or on a GPU through a program that could not count them)."""
    from experiments.bench.bench_steps import make_state

    _, gan, state = make_state(row["flags"])
    flops = step_flops(gan, state)
    sps = row["steps_per_s"]
    return {**row, "gflop_per_step": round(flops / 1e9, 3), "gflop_per_s": round(flops * sps / 1e9, 2),
            "peak_share": round(flops * sps / 1e9 / row["peak_gflop_per_s"], 4)}


def run_one(arch: str, loss: str, batch: int, dtype: str, steps: int, repeat: int, torch_threads: list[int]) -> dict:
    """All measurements of one configuration."""
    import jax
    from experiments.bench.bench_steps import prepare, time_chunk

    peak = matmul_gflops(dtype)
    flags = f"{flags_of(arch, loss, batch)} --dtype={dtype}"
    config, gan, state, compiled, args, compile_s = prepare(flags, steps)
    flops = step_flops(gan, state)
    state, _ = time_chunk(compiled, state, args)
    rss_ganjax = peak_rss_mb()
    try:
        import torch

        from experiments.tools import torch_reference
    except ImportError:  # torch not installed: ganjax only
        torch_reference = None
    runners, torch_device, torch_mb = {}, None, None
    if torch_reference is not None:
        c = dataclasses.asdict(config)
        torch_device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
        if torch_device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for th in torch_threads:
            runners[th] = torch_reference.Runner(c, gan.data_shape, seed=config.seed, threads=th,
                                                 device=torch_device, dtype=dtype)
            runners[th].run(1)
    jax_t, torch_t = [], {th: [] for th in runners}
    for _ in range(repeat):
        state, t = time_chunk(compiled, state, args)
        jax_t.append(t)
        for th, r in runners.items():
            torch_t[th].append(r.run(steps))
        peak = max(peak, matmul_gflops(dtype, repeat=2))
    if torch_device == "cuda":
        torch_mb = torch.cuda.max_memory_allocated() / 2 ** 20
    sps = steps / statistics.median(jax_t)
    torch_sps = {th: steps / statistics.median(ts) for th, ts in torch_t.items()}
    best_torch = max(torch_sps.values()) if torch_sps else None
    ganjax_mb = device_mb(compiled)
    return {
        "arch": arch, "loss": loss, "batch": batch, "dtype": dtype, "flags": flags, "steps": steps, "repeat": repeat,
        "backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "torch_device": torch_device,
        "compile_s": round(compile_s, 2), "steps_per_s": round(sps, 4), "images_per_s": round(sps * batch, 1),
        "torch_steps_per_s": {str(th): round(v, 4) for th, v in torch_sps.items()},
        "ratio": round(sps / best_torch, 3) if best_torch else None,
        "gflop_per_step": round(flops / 1e9, 3), "gflop_per_s": round(flops * sps / 1e9, 2),
        "peak_gflop_per_s": round(peak, 1), "peak_share": round(flops * sps / 1e9 / peak, 4),
        "peak_rss_mb_ganjax": round(rss_ganjax), "peak_rss_mb_total": round(peak_rss_mb()),
        "device_mb_ganjax": None if ganjax_mb is None else round(ganjax_mb),
        "device_mb_torch": None if torch_mb is None else round(torch_mb),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def torch_peak_share(row: dict) -> float | None:
    """The fastest PyTorch thread count's model FLOP/s as a share of the row's measured peak (the
    same FLOP count as ganjax's share). 1.5 times it is the share a 1.5x-PyTorch ganjax would need:
    above 100 %, no implementation that does the model's multiply-adds can reach 1.5x on that machine."""
    if not row["torch_steps_per_s"]:
        return None
    return max(row["torch_steps_per_s"].values()) * row["gflop_per_step"] / row["peak_gflop_per_s"]


def table(rows: list[dict]) -> str:
    head = ("| device | arch | loss | batch | dtype | ganjax steps/s | PyTorch steps/s (threads) | ganjax / PyTorch "
            "| images/s | compile s | GFLOP/step | GFLOP/s | share of peak | PyTorch's share | 1.5x PyTorch needs "
            "| memory MB (ganjax / PyTorch) | load | XLA_FLAGS |")
    lines = [head, "|" + " --- |" * 5 + " ---: |" * 12 + " --- |"]
    for r in rows:
        ts = ", ".join(f"{v:.3g} ({k})" for k, v in r["torch_steps_per_s"].items()) or "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] else "-"
        if r.get("torch_device") == "cuda":  # device memory on a GPU, peak host RSS on the CPU
            memory = f"{r['device_mb_ganjax']} / {r['device_mb_torch']} (device)"
        else:
            memory = f"{r['peak_rss_mb_ganjax']} (RSS)"
        torch_share = torch_peak_share(r)
        torch_cols = "| - | -" if torch_share is None else f"| {100 * torch_share:.1f} % | {150 * torch_share:.0f} %"
        lines.append(f"| {r.get('device', r['backend'])} | {r['arch']} | {r['loss']} | {r['batch']} "
                     f"| {r.get('dtype', 'float32')} | {r['steps_per_s']:.4g} | {ts} | {ratio} "
                     f"| {r['images_per_s']:.4g} | {r['compile_s']:.1f} | {r['gflop_per_step']:.3g} "
                     f"| {r['gflop_per_s']:.4g} | {100 * r['peak_share']:.1f} % of {r['peak_gflop_per_s']:.0f} "
                     f"{torch_cols} | {memory} | {r['load_avg_1m']} | {r.get('xla_flags') or '-'} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default=",".join(ARCHS), help=f"comma-separated subset of {ARCHS}")
    p.add_argument("--loss", default=",".join(LOSSES), help=f"comma-separated subset of {LOSSES}")
    p.add_argument("--batch", default=",".join(map(str, BATCHES)), help="comma-separated batch sizes")
    p.add_argument("--dtype", default="float32",
                   help="comma-separated compute dtypes (float32, bfloat16: ganjax's --dtype, PyTorch's autocast)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per timed chunk (default on CPU: 3 for dcgan-64, 10 for dcgan-32, 50 for mlp; "
                        "on a GPU: 50, 100, 500)")
    p.add_argument("--repeat", type=int, default=3, help="interleaved timed chunks per side (medians kept)")
    p.add_argument("--torch-threads", default=str(os.cpu_count()),
                   help="comma-separated torch.set_num_threads values to time (the fastest is the baseline)")
    p.add_argument("--xla-flags", default=None,
                   help="XLA_FLAGS for the ganjax side (e.g. --xla_cpu_experimental_ynn_fusion_type= to run "
                        "convolutions and dots with XLA's Eigen kernels instead of YNNPACK); default: inherited")
    p.add_argument("--isolate", choices=("auto", "yes", "no"), default="auto",
                   help="one subprocess per configuration, so that its peak host RSS is its own (auto: yes on "
                        "CPU; no on a GPU, where memory is read per configuration and a process start costs "
                        "seconds of CUDA setup)")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds after which no further configuration is started (those left are listed)")
    p.add_argument("--out", default=RESULTS, help="folder of bench.jsonl and bench.md")
    p.add_argument("--table", metavar="JSONL", help="only print the table of the rows in JSONL (e.g. bench.jsonl)")
    p.add_argument("--recount", action="store_true",
                   help="with --table: count each row's FLOPs again with step_flops (on this machine: the "
                        "count does not depend on it) and rewrite JSONL")
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: arch,loss,batch,dtype of one subprocess run
    a = p.parse_args()
    threads = [int(t) for t in a.torch_threads.split(",")]
    if a.table:
        with open(a.table) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        if a.recount:
            rows = [recount(r) for r in rows]
            with open(a.table, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        print(table(rows))
        return
    if a.xla_flags is not None:
        os.environ["XLA_FLAGS"] = a.xla_flags  # before jax is imported (below, or in the subprocesses)
    import jax
    gpu = jax.default_backend() != "cpu"
    default_steps = {"mlp": 500, "dcgan-32": 100, "dcgan-64": 50, "default": 200} if gpu else \
        {"mlp": 50, "dcgan-32": 10, "dcgan-64": 3, "default": 20}
    if a.one:
        arch, loss, batch, dtype = a.one.split(",")
        print(json.dumps(run_one(arch, loss, int(batch), dtype, a.steps or default_steps[arch], a.repeat, threads)))
        return
    isolate = a.isolate == "yes" or a.isolate == "auto" and not gpu
    os.makedirs(a.out, exist_ok=True)
    grid = [(arch, loss, int(batch), dtype) for arch in a.arch.split(",") for loss in a.loss.split(",")
            for batch in a.batch.split(",") for dtype in a.dtype.split(",")]
    rows, start = [], time.perf_counter()
    for n, (arch, loss, batch, dtype) in enumerate(grid):
        if a.budget is not None and time.perf_counter() - start > a.budget:
            print(f"budget of {a.budget:.0f} s spent; not run: {grid[n:]}", flush=True)
            break
        steps = a.steps or default_steps[arch]
        try:
            if isolate:
                cmd = [sys.executable, "-m", "experiments.bench.bench", f"--one={arch},{loss},{batch},{dtype}",
                       f"--repeat={a.repeat}", f"--torch-threads={a.torch_threads}", f"--steps={steps}"]
                out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
                row = json.loads(out.strip().splitlines()[-1])
            else:
                row = run_one(arch, loss, batch, dtype, steps, a.repeat, threads)
        except Exception as e:  # one failed configuration (out of memory, say) does not lose the others
            print(f"{arch} {loss} batch {batch} {dtype} failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
            continue
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(os.path.join(a.out, "bench.jsonl"), "a") as f:
            f.write(json.dumps(row) + "\n")
    md = table(rows)
    print("\n" + md)
    with open(os.path.join(a.out, "bench.md"), "w") as f:
        f.write(md + "\n")


if __name__ == "__main__":
    main()
