"""ganjax.xla_options: XLA's own convolutions on CPU, the same results, and a safe fallback."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import parallel, xla_options
from ganjax.models.conv import conv2d, conv_transpose
from ganjax.steps import train_chunk
from ganjax.state import create_state, make_spec
from tests.conftest import small_config

def _ynn_convolutions(hlo: str) -> int:
    """How many convolutions of an optimized HLO text sit in a YNNPACK fusion."""
    fused = [line for line in hlo.splitlines() if '"__ynn_fusion"' in line]
    bodies = [line.split("calls=")[1].split(",")[0] for line in fused]
    return sum(" convolution(" in hlo.split(body + " (", 1)[1].split("\n}", 1)[0] for body in bodies)


@pytest.fixture(autouse=True)
def fresh_probe():
    xla_options.compiler_options.cache_clear()
    yield
    xla_options.compiler_options.cache_clear()


def test_cpu_options_accepted_and_convolutions_leave_ynnpack(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    options = xla_options.compiler_options("cpu")
    assert options == xla_options.CPU_OPTIONS
    assert xla_options.compiler_options("gpu") == {}
    x, k = jnp.ones((64, 9, 9, 128)), jnp.ones((2, 2, 128, 64))
    f = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    with_options = jax.jit(f, compiler_options=options).lower(x, k).compile().as_text()
    assert _ynn_convolutions(with_options) == 0
    assert " convolution(" in with_options
    assert _ynn_convolutions(jax.jit(f).lower(x, k).compile().as_text()) == 1  # where XLA's default differs


def test_unknown_option_falls_back_to_defaults(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(xla_options, "CPU_OPTIONS", {"xla_cpu_experimental_ynn_fusion_type": "NO_SUCH_FUSION_TYPE"})
    assert xla_options.compiler_options("cpu") == {}


def test_user_xla_flags_win(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution")
    assert xla_options.compiler_options("cpu") == {}


def test_jit_wrapper_is_lazy_and_matches_jax_jit(monkeypatch):
    calls = []
    monkeypatch.setattr(xla_options, "default_options", lambda: calls.append(1) or {})

    @xla_options.jit(static_argnums=1)
    def scaled(x, factor):
        return x * factor

    assert calls == []  # defining it looks nothing up
    np.testing.assert_array_equal(scaled(jnp.arange(3.0), 2), [0.0, 2.0, 4.0])
    scaled(jnp.arange(3.0), 3)
    assert calls == [1]  # once, at the first call


def test_convolutions_under_the_options_match_the_reference():
    """XLA's Eigen convolutions give what YNNPACK's did, to float32 rounding, with gradients."""
    key = jax.random.PRNGKey(0)
    x, k, kt = (jax.random.normal(jax.random.fold_in(key, i), s) for i, s in
                enumerate([(8, 16, 16, 32), (4, 4, 32, 64), (4, 4, 32, 16)]))

    def loss(x, k, kt):
        return jnp.sum(conv2d(x, k, 2, 1) ** 2) + jnp.sum(conv_transpose(x, kt, 2, 1) ** 2)

    grads = {name: jax.jit(jax.grad(loss, argnums=(0, 1, 2)), compiler_options=options)(x, k, kt)
             for name, options in [("ynn", {}), ("xla", xla_options.compiler_options("cpu"))]}
    for a, b in zip(grads["ynn"], grads["xla"]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-3 * float(jnp.abs(a).max()) * 1e-3)


def test_training_chunk_compiles_without_ynnpack_convolutions(monkeypatch):
    """The placement's compile (what ganjax.train runs) passes the options. The small test
    model's convolutions reach YNNPACK without them (checked first), so the check can fail."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    config = small_config(resolution=32)
    spec = make_spec(config, total_steps=4)
    state = create_state(spec, 0)
    data = jnp.zeros((4 * config.batch_size,) + spec.data_shape, jnp.uint8)
    placement = parallel.place(1, config.batch_size)
    compiled = placement.compile(functools.partial(train_chunk, spec, 2), state, data, jnp.arange(len(data)),
                                 jnp.int32(0), jnp.int32(2))
    assert " convolution(" in compiled.as_text()
    assert _ynn_convolutions(compiled.as_text()) == 0
    monkeypatch.setattr(xla_options, "default_options", lambda: {})
    defaults = placement.compile(functools.partial(train_chunk, spec, 2), state, data, jnp.arange(len(data)),
                                 jnp.int32(0), jnp.int32(2))
    assert _ynn_convolutions(defaults.as_text()) > 0
