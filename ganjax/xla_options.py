"""The XLA compile options ganjax's programs are compiled with, per platform, chosen by measurement.

On CPU, jaxlib 0.10 hands each large convolution to YNNPACK as a fusion of its own
(`LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION`). Measured on a 2-core AMD EPYC (Zen 4, AVX-512),
a YNNPACK convolution whose output is written out runs on one thread, 2-5x slower than XLA's
own (Eigen) convolution: D's 8x8x64 convolution at batch 256 takes 34 ms against 7.3 ms
(`BATCH=256 python -m experiments.bench.bench_conv_matmul "D2 F 32"`). Only a convolution that
XLA fuses with a reduction of its output runs fast in YNNPACK, and a training step has none.
So on CPU ganjax keeps YNNPACK for what it does well, dots and reductions, and gives
convolutions back to XLA: the default run's step goes from 10.4 to 12.3 steps/s.

An XLA that does not know the option (an older or a newer jaxlib) compiles with its own
defaults: `compiler_options` probes it once per backend. A user's own
`XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=...` wins: ganjax then passes nothing.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np

# XLA's default YNNPACK fusion types on CPU (jaxlib 0.10), less INDIVIDUAL_CONVOLUTION
CPU_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


@functools.lru_cache(maxsize=None)
def compiler_options(backend: str) -> dict:
    """The options for programs on `backend` (the default backend: "cpu", "gpu", ...): CPU_OPTIONS
    on a CPU whose XLA accepts them and whose XLA_FLAGS do not set them, else none."""
    if backend != "cpu" or any(name in os.environ.get("XLA_FLAGS", "") for name in CPU_OPTIONS):
        return {}
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS).lower(np.float32(0)).compile()
    except Exception:  # an XLA without the option: INVALID_ARGUMENT, or a rename
        return {}
    return dict(CPU_OPTIONS)


def default_options() -> dict:
    """compiler_options of the default backend (initializes it: call at compile time, not import)."""
    return compiler_options(jax.default_backend())


def jit(fn=None, **jit_kwargs):
    """`jax.jit(fn, **jit_kwargs)` compiled with the default backend's options; also a decorator
    (`@jit` or `@jit(static_argnums=0)`). The options are looked up at the first call, so that
    importing a module that defines a jitted function starts no backend."""
    if fn is None:
        return functools.partial(jit, **jit_kwargs)
    compiled = None

    @functools.wraps(fn)
    def call(*args, **kwargs):
        nonlocal compiled
        if compiled is None:
            compiled = jax.jit(fn, compiler_options=default_options(), **jit_kwargs)
        return compiled(*args, **kwargs)

    return call
