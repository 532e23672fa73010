"""Loss values against hand computations; the gradient penalty against known answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import losses, regularizers
from ganjax.config import Config, resolve

REAL = jnp.array([2.0, -1.0, 0.5])
FAKE = jnp.array([-3.0, 0.0, 1.5])


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def mean(xs):
    return sum(xs) / len(xs)


def test_gan_d_loss_is_mean_of_real_and_fake_bce():
    r = mean([-math.log(sigmoid(v)) for v in REAL.tolist()])
    f = mean([-math.log(1 - sigmoid(v)) for v in FAKE.tolist()])
    assert losses.gan_d_loss(REAL, FAKE) == pytest.approx((r + f) / 2, rel=1e-6)


def test_gan_generator_losses():
    ns = mean([-math.log(sigmoid(v)) for v in FAKE.tolist()])
    mm = mean([math.log(1 - sigmoid(v)) for v in FAKE.tolist()])
    assert losses.gan_g_loss_non_saturating(FAKE) == pytest.approx(ns, rel=1e-6)
    assert losses.gan_g_loss_minimax(FAKE) == pytest.approx(mm, rel=1e-6)


def test_bce_is_stable_for_large_logits():
    assert np.isfinite(float(losses.bce(jnp.array([200.0]), 0.0)))
    assert float(losses.bce(jnp.array([200.0]), 0.0)) == pytest.approx(200.0)


def test_wasserstein_hinge_lsgan_values():
    assert losses.wgan_d_loss(REAL, FAKE) == pytest.approx(-mean([2, -1, 0.5]) + mean([-3, 0, 1.5]))
    assert losses.wgan_g_loss(FAKE) == pytest.approx(-mean([-3, 0, 1.5]))
    hinge = mean([max(0, 1 - v) for v in [2, -1, 0.5]]) + mean([max(0, 1 + v) for v in [-3, 0, 1.5]])
    assert losses.hinge_d_loss(REAL, FAKE) == pytest.approx(hinge)
    ls = 0.5 * mean([(v - 1) ** 2 for v in [2, -1, 0.5]]) + 0.5 * mean([v ** 2 for v in [-3, 0, 1.5]])
    assert losses.lsgan_d_loss(REAL, FAKE) == pytest.approx(ls)
    assert losses.lsgan_g_loss(FAKE) == pytest.approx(0.5 * mean([(v - 1) ** 2 for v in [-3, 0, 1.5]]))


@pytest.mark.parametrize("name,terms,clipped", [("gan", (), False), ("wgan", (), True), ("wgan-gp", ("gp",), False),
                                               ("hinge", (), False), ("lsgan", (), False)])
def test_loss_variants_declare_their_terms_and_constraint(name, terms, clipped):
    config = resolve(Config(loss=name, dataset="toy:ring8"))
    assert tuple(t.name for t in regularizers.d_terms(config)) == terms
    params = {"w": jnp.array([-1.0, 0.5, 0.001])}
    projected = regularizers.d_constraint(config)(params)
    np.testing.assert_array_equal(projected["w"], np.float32([-0.01, 0.01, 0.001]) if clipped else params["w"])


def gradient_penalty(critic, real, fake, key):
    """The penalty with eps drawn from `key`, one per sample."""
    eps = regularizers.interpolation_weights(key, real.shape[0], real.ndim - 1, real.dtype)
    return regularizers.gradient_penalty(critic, real, fake, eps)


def test_gradient_penalty_of_linear_critic_is_known():
    # D(x) = <w, x>: the gradient is w everywhere, so the penalty is (||w|| - 1)^2.
    w = jax.random.normal(jax.random.PRNGKey(0), (4, 4, 3))
    critic = lambda x: jnp.sum(x * w, axis=(1, 2, 3))
    real = jax.random.normal(jax.random.PRNGKey(1), (5, 4, 4, 3))
    fake = jax.random.normal(jax.random.PRNGKey(2), (5, 4, 4, 3))
    gp = gradient_penalty(critic, real, fake, jax.random.PRNGKey(3))
    assert float(gp) == pytest.approx((float(jnp.linalg.norm(w)) - 1) ** 2, rel=1e-5)


def test_gradient_penalty_matches_finite_differences():
    # A nonlinear per-sample critic; gradient norms by central differences in float64.
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        a = jnp.asarray(rng.normal(size=(3, 2)))
        critic = lambda x: jnp.sum(jnp.tanh(x.reshape(x.shape[0], -1) @ a), axis=1)
        real = jnp.asarray(rng.normal(size=(4, 3)))
        fake = jnp.asarray(rng.normal(size=(4, 3)))
        key = jax.random.PRNGKey(7)
        gp = float(gradient_penalty(critic, real, fake, key))

        eps = np.asarray(jax.random.uniform(key, (4, 1), jnp.float64))
        x_hat = eps * np.asarray(real) + (1 - eps) * np.asarray(fake)
        f = lambda x: float(np.sum(np.tanh(x @ np.asarray(a))))
        h = 1e-6
        norms = []
        for i in range(4):
            g = []
            for j in range(3):
                up, down = x_hat[i].copy(), x_hat[i].copy()
                up[j] += h
                down[j] -= h
                g.append((f(up[None]) - f(down[None])) / (2 * h))
            norms.append(np.linalg.norm(g))
        assert gp == pytest.approx(np.mean((np.array(norms) - 1) ** 2), rel=1e-6)


def test_gradient_penalty_is_differentiable_in_critic_params():
    w0 = jnp.ones(3) * 2.0
    real, fake = jnp.ones((4, 3)), jnp.zeros((4, 3))
    grad = jax.grad(lambda w: gradient_penalty(lambda x: x @ w, real, fake, jax.random.PRNGKey(0)))(w0)
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    n = np.linalg.norm(np.asarray(w0))
    np.testing.assert_allclose(grad, 2 * (n - 1) * np.asarray(w0) / n, rtol=1e-5)


def test_clip_weights_bounds_every_leaf():
    params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array([[0.3, -0.001]])}}
    clipped = regularizers.clip_weights(params, 0.01)
    np.testing.assert_array_equal(clipped["a"], np.float32([-0.01, 0.005, 0.01]))
    np.testing.assert_array_equal(clipped["b"]["c"], np.float32([[0.01, -0.001]]))
