"""The SNGAN ResNet networks (ganjax.models.resnet): shapes, widths, config rules, and a train step."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.config import Config, resolve
from ganjax.errors import UserError
from ganjax.models import build_models
from ganjax.models.conv import conv2d
from ganjax.models.resnet import (ResNetDiscriminator, ResNetGenerator, avg_pool, discriminator_blocks,
                                  generator_widths, upsample)
from ganjax.state import create_state, make_spec
from ganjax.steps import train_step


def test_shortcut_order_does_not_matter():
    """The shortcuts' 1x1 conv runs at the lower resolution: it commutes with nearest upsampling
    and average pooling, so the blocks are SNGAN's functions."""
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (1, 1, 3, 5))
    conv = lambda x: conv2d(x, k, 1, 0) + 0.5
    np.testing.assert_allclose(upsample(conv(x)), conv(upsample(x)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(avg_pool(conv(x)), conv(avg_pool(x)), rtol=1e-5, atol=1e-6)
    assert upsample(x)[0, 3, 5, 1] == x[0, 1, 2, 1] and avg_pool(x)[0, 1, 2, 0] == pytest.approx(
        float(jnp.mean(x[0, 2:4, 4:6, 0])), rel=1e-6)


def test_widths_are_sngans_at_the_default_features():
    assert generator_widths(32, 32) == [256] * 4
    assert discriminator_blocks(32, 32) == [(128, True), (128, True), (128, False), (128, False)]
    assert generator_widths(64, 64) == [1024, 512, 256, 128, 64]
    assert discriminator_blocks(64, 64) == [(64, True), (128, True), (256, True), (512, True), (1024, True)]
    gv = jax.eval_shape(lambda k: ResNetGenerator(32, 3, 32).init(k, jnp.zeros((1, 128)), train=False),
                        jax.random.PRNGKey(0))
    dv = jax.eval_shape(lambda k: ResNetDiscriminator(32, 32).init(k, jnp.zeros((1, 32, 32, 3)), train=False),
                        jax.random.PRNGKey(0))
    count = lambda tree: sum(np.prod(a.shape) for a in jax.tree.leaves(tree))
    # SNGAN's CIFAR-10 ResNet: about 4.3M parameters in G, 1.0M in D (as Mimicry's SNGAN 32)
    assert 4.2e6 < count(gv["params"]) < 4.4e6 and 0.95e6 < count(dv["params"]) < 1.1e6
    # the blocks that keep width and side have identity shortcuts
    assert "shortcut" in dv["params"]["DBlock_1"] and "shortcut" not in dv["params"]["DBlock_2"]


def run(g, d, z):
    gv = g.init(jax.random.PRNGKey(1), z, train=False)
    x, _ = g.apply(gv, z, train=True, mutable=["batch_stats"])
    dv = d.init(jax.random.PRNGKey(2), x, train=False)
    logits, _ = d.apply(dv, x, train=True, mutable=["batch_stats"])
    return x, logits, gv, dv


def test_output_range_and_mixed_precision():
    g, d = ResNetGenerator(32, 1, features=2), ResNetDiscriminator(32, features=2)
    z = jax.random.normal(jax.random.PRNGKey(0), (3, 16)) * 10
    x, logits, _, _ = jax.jit(run, static_argnums=(0, 1))(g, d, z)
    assert x.shape == (3, 32, 32, 1) and logits.shape == (3,)
    assert 0.5 < float(jnp.abs(x).max()) <= 1.0  # tanh output
    # bfloat16 compute: float32 params, statistics, u and v, images and logits (traced, not run)
    x16, logits16, gv16, dv16 = jax.eval_shape(
        functools.partial(run, g.clone(dtype=jnp.bfloat16), d.clone(dtype=jnp.bfloat16)), z)
    assert x16.dtype == logits16.dtype == jnp.float32
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves((gv16, dv16)))


def test_config_rules():
    config = resolve(Config(arch="resnet"))
    assert config.d_norm == "spectral" and config.features == 32 and config.resolution == 32
    assert resolve(Config(arch="resnet", loss="wgan-gp")).d_norm == "spectral"
    assert resolve(Config(arch="resnet", d_norm="none")).d_norm == "none"
    assert resolve(Config(arch="dcgan", d_norm="spectral", loss="wgan-gp")).d_norm == "spectral"
    with pytest.raises(UserError, match="--arch=resnet supports --resolution 32 or 64, got 16"):
        resolve(Config(arch="resnet", resolution=16))
    with pytest.raises(UserError, match="--d_norm=spectral"):
        resolve(Config(arch="resnet", d_norm="layer"))
    with pytest.raises(UserError, match="needs image data"):
        resolve(Config(arch="resnet", dataset="toy:ring8"))
    g, d = build_models(resolve(Config(arch="resnet", resolution=64, channels=3)), axis_name="devices")
    assert (g.resolution, g.channels, g.features, g.axis_name, d.features, d.norm) == (64, 3, 64, "devices", 64,
                                                                                      "spectral")


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_train_step(loss):
    config = resolve(Config(arch="resnet", loss=loss, features=2, z_dim=8, batch_size=4, seed=0))
    spec = make_spec(config, total_steps=10)  # the default rate decay needs the run's length
    state = create_state(spec, config.seed)
    real = jax.random.uniform(jax.random.PRNGKey(0), (4, 32, 32, 1), minval=-1, maxval=1)
    new_state, metrics = jax.jit(functools.partial(train_step, spec))(state, real)
    assert all(bool(jnp.all(jnp.isfinite(m))) for m in jax.tree.leaves(metrics))
    # D's power-iteration vectors are model state and came back updated; G's batch statistics too
    assert "batch_stats" in new_state.d.model_state and "batch_stats" in new_state.g.model_state
    assert not np.array_equal(new_state.d.model_state["batch_stats"]["DBlock_0"]["conv1_spectral"]["u"],
                              state.d.model_state["batch_stats"]["DBlock_0"]["conv1_spectral"]["u"])
