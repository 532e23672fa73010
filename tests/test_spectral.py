"""Spectral normalization (ganjax.models.spectral): the estimate against numpy's SVD, training
and inference modes, where u and v live, and the discriminators with --d_norm=spectral."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from ganjax.models.conv import Conv2d, conv2d
from ganjax.models.dcgan import DCGANDiscriminator
from ganjax.models.mlp import MLPDiscriminator
from ganjax.models.spectral import SpectralNorm, as_matrix, spectral_norm_estimate


class KernelProbe(nn.Module):
    """A layer whose output is its own kernel: shows the kernel SpectralNorm hands it."""
    shape: tuple

    @nn.compact
    def __call__(self, x):
        return self.param("kernel", nn.initializers.normal(1.0), self.shape)


def top_singular_value(kernel):
    """Of the kernel as PyTorch's (out, in * kh * kw) matrix."""
    kernel = np.asarray(kernel)
    torch_matrix = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)
    return np.linalg.svd(torch_matrix, compute_uv=False)[0]


def run_train_mode(module, variables, x, n):
    """`n` training-mode calls, each feeding its updated u and v to the next."""
    step = jax.jit(lambda v: module.apply(v, x, train=True, mutable=["batch_stats"])[1])
    for _ in range(n):
        variables = {**variables, **step(variables)}
    return variables


@pytest.mark.parametrize("shape", [(64, 10), (4, 4, 3, 16)], ids=["dense", "conv4x4"])
def test_power_iteration_converges_to_the_svd(shape):
    module = SpectralNorm(KernelProbe(shape))
    x = jnp.zeros(())
    variables = jax.jit(lambda k: module.init(k, x, train=False))(jax.random.PRNGKey(0))
    kernel = variables["params"]["layer"]["kernel"]
    variables = run_train_mode(module, variables, x, 300)
    stats = variables["batch_stats"]
    np.testing.assert_allclose(spectral_norm_estimate(kernel, stats["u"], stats["v"]),
                               top_singular_value(kernel), rtol=1e-4)
    normalized = module.apply(variables, x, train=False)
    assert normalized.shape == shape
    np.testing.assert_allclose(top_singular_value(normalized), 1.0, rtol=1e-4)


def test_training_mode_runs_one_power_iteration_and_inference_none():
    module = SpectralNorm(KernelProbe((4, 4, 3, 8)))
    x = jnp.zeros(())
    variables = jax.jit(lambda k: module.init(k, x, train=False))(jax.random.PRNGKey(1))
    kernel, stats = variables["params"]["layer"]["kernel"], variables["batch_stats"]
    w = as_matrix(kernel)
    np.testing.assert_allclose(jnp.linalg.norm(stats["u"]), 1.0, rtol=1e-6)
    # Inference: the stored u and v are used as they are, and stay.
    apply = jax.jit(lambda v, train: module.apply(v, x, train=train, mutable=["batch_stats"]), static_argnums=1)
    out, updates = apply(variables, False)
    jax.tree.map(np.testing.assert_array_equal, updates["batch_stats"], stats)
    np.testing.assert_allclose(out, kernel / (stats["v"] @ w @ stats["u"]), rtol=1e-6)
    # Training: v <- W^T u / |W^T u|, u <- W v / |W v| (W = w^T), then sigma from the new pair.
    out, updates = apply(variables, True)
    v = w @ stats["u"] / jnp.linalg.norm(w @ stats["u"])
    u = w.T @ v / jnp.linalg.norm(w.T @ v)
    np.testing.assert_allclose(updates["batch_stats"]["u"], u, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(updates["batch_stats"]["v"], v, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out, kernel / (v @ w @ u), rtol=1e-5)


class OneConv(nn.Module):
    spectral: bool

    @nn.compact
    def __call__(self, x):
        conv = Conv2d(16, 4, stride=2, padding=1, name="conv")
        return SpectralNorm(conv)(x, train=False) if self.spectral else conv(x)


def test_init_keeps_the_raw_kernel_and_a_refined_estimate():
    """The stored param is the initializer's kernel (the optimizer works on the raw kernel, as
    PyTorch's weight_orig); u and v start refined enough for inference before any training."""
    x = jnp.zeros((1, 8, 8, 3))
    raw = OneConv(False).init(jax.random.PRNGKey(0), x)["params"]["conv"]["kernel"]
    variables = OneConv(True).init(jax.random.PRNGKey(0), x)
    np.testing.assert_array_equal(variables["params"]["conv"]["kernel"], raw)
    stats = variables["batch_stats"]["SpectralNorm_0"]
    assert spectral_norm_estimate(raw, stats["u"], stats["v"]) == pytest.approx(top_singular_value(raw), rel=0.05)


def test_wraps_ganjax_conv2d():
    """SpectralNorm(Conv2d) is the conv of the normalized kernel, and the gradient does not flow
    through u and v."""
    module = SpectralNorm(Conv2d(6, 4, stride=2, padding=1))
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    variables = jax.jit(lambda k: module.init(k, x, train=False))(jax.random.PRNGKey(1))
    p, stats = variables["params"]["layer"], variables["batch_stats"]
    sigma = spectral_norm_estimate(p["kernel"], stats["u"], stats["v"])
    want = conv2d(x, p["kernel"] / sigma, 2, 1) + p["bias"]
    np.testing.assert_allclose(module.apply(variables, x, train=False), want, rtol=1e-5, atol=1e-6)

    def loss(params):
        return jnp.sum(module.apply({**variables, "params": params}, x, train=False) ** 2)

    def want_loss(params):
        k = params["layer"]["kernel"]
        s = jax.lax.stop_gradient(stats["v"]) @ as_matrix(k) @ jax.lax.stop_gradient(stats["u"])
        return jnp.sum((conv2d(x, k / s, 2, 1) + params["layer"]["bias"]) ** 2)

    for g, g_want in zip(jax.tree.leaves(jax.jit(jax.grad(loss))(variables["params"])),
                         jax.tree.leaves(jax.jit(jax.grad(want_loss))(variables["params"]))):
        np.testing.assert_allclose(g, g_want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("module,shape", [(DCGANDiscriminator(16, 8, "spectral"), (3, 16, 16, 1)),
                                          (MLPDiscriminator(16, 2, "spectral"), (3, 2))], ids=["dcgan", "mlp"])
def test_discriminators_with_spectral_norm(module, shape):
    x = jax.random.normal(jax.random.PRNGKey(0), shape)
    variables = jax.jit(lambda k: module.init(k, x, train=False))(jax.random.PRNGKey(1))
    assert set(variables) == {"params", "batch_stats"}
    params, stats = variables["params"], variables["batch_stats"]
    # Every layer of D is normalized (the first and last included); there is no activation norm.
    assert not any("Norm" in name for name in params)
    assert sorted(stats) == sorted(f"{name}_spectral" for name in params)
    for name, layer in params.items():
        assert set(stats[f"{name}_spectral"]) == {"u", "v"}
        assert stats[f"{name}_spectral"]["u"].shape == (layer["kernel"].shape[-1],)

    @jax.jit
    def run(params):
        def loss(params):
            out, updates = module.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])
            return jnp.mean(out), (out, updates)

        grads, (out, updates) = jax.grad(loss, has_aux=True)(params)
        return out, updates, module.apply(variables, x, train=False), grads

    out, updates, eval_out, grads = run(params)
    assert out.shape == eval_out.shape == (3,) and out.dtype == jnp.float32
    # one power iteration per training pass (the last layer's u, of size 1, is exact from the start)
    assert all(not np.array_equal(updates["batch_stats"][name]["u"], stats[name]["u"])
               for name in stats if stats[name]["u"].size > 1)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert all(float(jnp.abs(g["kernel"]).max()) > 0 for g in grads.values())


def test_stop_and_resume_is_bitwise_the_same_run(tmp_path):
    """u and v are model state: checkpointed and restored with the rest (an MLP critic on a toy)."""
    from ganjax.checkpoints import Checkpoints
    from ganjax.training import train
    from tests.test_checkpoints import assert_same_state, toy_config

    settings = dict(loss="hinge", d_norm="spectral", n_critic=2)
    whole = train(toy_config(**settings, steps=20, workdir=str(tmp_path / "whole")), progress=False)
    train(toy_config(**settings, steps=10, workdir=str(tmp_path / "split")), progress=False)
    resumed = train(toy_config(**settings, steps=20, workdir=str(tmp_path / "split")), progress=False)
    assert "batch_stats" in resumed.d.model_state
    assert_same_state(whole, resumed)
    assert_same_state(Checkpoints(str(tmp_path / "split")).restore(resumed), resumed)
