"""Shapes, layer structure and initialization of the networks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.models import build_models, data_shape
from ganjax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganjax.models.resnet import ResNetDiscriminator, ResNetGenerator
from tests.conftest import small_config


@pytest.mark.parametrize("models,resolution,channels", [
    ((DCGANGenerator, DCGANDiscriminator), 64, 3), ((DCGANGenerator, DCGANDiscriminator), 32, 1),
    ((DCGANGenerator, DCGANDiscriminator), 16, 3),
    ((ResNetGenerator, ResNetDiscriminator), 32, 1), ((ResNetGenerator, ResNetDiscriminator), 32, 3),
    ((ResNetGenerator, ResNetDiscriminator), 64, 1), ((ResNetGenerator, ResNetDiscriminator), 64, 3),
], ids=["dcgan-64-3", "dcgan-32-1", "dcgan-16-3", "resnet-32-1", "resnet-32-3", "resnet-64-1", "resnet-64-3"])
def test_model_shapes(models, resolution, channels):
    generator, discriminator = models
    g, d = generator(resolution, channels, features=8), discriminator(resolution, features=8)
    z = jnp.zeros((2, 100))
    # shapes only: traced, not run (the numbers are checked against PyTorch in test_torch_import.py)
    gv = jax.eval_shape(lambda k: g.init(k, z, train=False), jax.random.PRNGKey(0))
    x = jax.eval_shape(lambda v: g.apply(v, z, train=False), gv)
    assert x.shape == (2, resolution, resolution, channels)
    dv = jax.eval_shape(lambda k: d.init(k, jnp.zeros(x.shape), train=False), jax.random.PRNGKey(1))
    assert jax.eval_shape(lambda v: d.apply(v, jnp.zeros(x.shape), train=False), dv).shape == (2,)


def test_dcgan_64_matches_the_homework_layer_list():
    g, d = DCGANGenerator(64, 3, 64), DCGANDiscriminator(64, 64, "batch")
    # one compiled init each (op by op, the 64x64 networks' init takes 20 s)
    gv = jax.jit(lambda key: g.init(key, jnp.zeros((1, 100)), train=False))(jax.random.PRNGKey(0))
    dv = jax.jit(lambda key: d.init(key, jnp.zeros((1, 64, 64, 3)), train=False))(jax.random.PRNGKey(0))
    gp = gv["params"]
    assert gp["Dense_0"]["kernel"].shape == (100, 512 * 16) and "bias" not in gp["Dense_0"]
    # Transposed convs 8f -> 4f -> 2f -> f -> 3, kernel 5, no bias.
    shapes = [gp[f"ConvTranspose2d_{i}"]["kernel"].shape for i in range(4)]
    assert shapes == [(5, 5, 512, 256), (5, 5, 256, 128), (5, 5, 128, 64), (5, 5, 64, 3)]
    assert all("bias" not in gp[f"ConvTranspose2d_{i}"] for i in range(4))
    assert [gp[f"BatchNorm_{i}"]["scale"].shape for i in range(4)] == [(8192,), (256,), (128,), (64,)]
    dp = dv["params"]
    shapes = [dp[f"Conv2d_{i}"]["kernel"].shape for i in range(5)]
    assert shapes == [(4, 4, 3, 64), (4, 4, 64, 128), (4, 4, 128, 256), (4, 4, 256, 512), (4, 4, 512, 1)]
    assert sorted(k for k in dp if k.startswith("BatchNorm")) == ["BatchNorm_0", "BatchNorm_1", "BatchNorm_2"]
    # Reference init: conv weights N(0, 0.02), batch-norm scale N(1, 0.02), bias 0.
    w = np.asarray(gp["ConvTranspose2d_0"]["kernel"])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    s = np.asarray(gp["BatchNorm_1"]["scale"])
    assert abs(s.mean() - 1) < 0.01 and abs(s.std() - 0.02) < 0.005
    assert np.all(np.asarray(gp["BatchNorm_1"]["bias"]) == 0)


@pytest.mark.parametrize("norm,collections", [("batch", {"params", "batch_stats"}), ("instance", {"params"}),
                                              ("layer", {"params"}), ("none", {"params"})])
def test_discriminator_norms(norm, collections):
    d = DCGANDiscriminator(16, 8, norm)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 16, 16, 1))
    v = d.init(jax.random.PRNGKey(1), x, train=False)
    assert set(v) == collections
    if norm != "none":
        assert any(k.endswith("Norm_0") for k in v["params"])
    if norm in ("instance", "layer", "none"):
        # Per-sample norms: one sample's output does not depend on the others.
        full = d.apply(v, x, train=True)
        alone = d.apply(v, x[:1], train=True)
        np.testing.assert_allclose(full[:1], alone, rtol=1e-5, atol=1e-6)


def test_mlp_models_for_toy_and_images():
    cfg = small_config(dataset="toy:ring8")
    g, d = build_models(cfg)
    assert data_shape(cfg) == (2,)
    gv = g.init(jax.random.PRNGKey(0), jnp.zeros((4, cfg.z_dim)))
    x = g.apply(gv, jnp.ones((4, cfg.z_dim)))
    assert x.shape == (4, 2) and float(jnp.abs(x).max()) > 0
    dv = d.init(jax.random.PRNGKey(0), x)
    assert d.apply(dv, x).shape == (4,)
    cfg = small_config(arch="mlp")
    g, _ = build_models(cfg)
    x = g.apply(g.init(jax.random.PRNGKey(0), jnp.zeros((4, cfg.z_dim))), jnp.ones((4, cfg.z_dim)) * 50)
    assert x.shape == (4, 8, 8, 1) and float(jnp.abs(x).max()) <= 1.0  # tanh output for images


def test_dcgan_conv_impls_compute_the_same_function():
    """conv_impl="xla" (lax's own strided and transposed convolutions, what GPUs run) and the CPU
    default (sub-pixel / space-to-depth forms) give the same outputs and gradients."""
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 100))
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 16, 16, 3), minval=-1, maxval=1)
    for module, inp in ((DCGANGenerator(resolution=16, channels=3, features=8), z),
                        (DCGANDiscriminator(resolution=16, features=8), x)):
        variables = jax.jit(functools.partial(module.init, train=False))(jax.random.PRNGKey(2), inp)

        def loss(params, m):
            out, _ = m.apply({**variables, "params": params}, inp, train=True, mutable=["batch_stats"])
            return jnp.sum(out ** 2), out

        grad_fn = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)
        (_, out), grads = grad_fn(variables["params"], module)
        (_, out_xla), grads_xla = grad_fn(variables["params"], module.clone(conv_impl="xla"))
        np.testing.assert_allclose(out_xla, out, rtol=1e-4, atol=1e-5)
        for g, g_xla in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_xla)):
            np.testing.assert_allclose(g_xla, g, rtol=1e-3, atol=1e-5)
