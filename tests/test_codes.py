"""InfoGAN's categorical code (--latent_codes): the code z carries, G's use of it, D's head Q, the
mutual-information term in both steps, the code-by-style grid, and bad settings."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax.errors import UserError
from ganjax.latent import sample_z
from ganjax.losses import info_loss
from ganjax.models import build_models
from ganjax.models.codes import code_grid_z, code_of, with_codes
from ganjax.state import create_state, make_spec
from ganjax.steps import apply_d, apply_net, d_step, g_step
from ganjax.training import train
from tests.conftest import small_config
from tests.test_cli import parse_config

K = 4


def test_the_code_z_carries_is_uniform_and_set_by_its_coordinate():
    z = sample_z(jax.random.PRNGKey(0), 40_000, 3)
    codes = np.asarray(code_of(z, K))
    # Phi(z_0) is U[0, 1): each code holds a quarter, within 4 binomial standard deviations
    np.testing.assert_allclose(np.bincount(codes, minlength=K) / len(codes), 1 / K, atol=4 * np.sqrt(0.25 * 0.75 / 40_000))
    # by hand: the quartiles of N(0, 1) are -0.6745, 0, 0.6745
    hand = np.array([-3.0, -0.7, -0.6, -0.01, 0.01, 0.66, 0.69, 5.0])
    np.testing.assert_array_equal(np.asarray(code_of(jnp.stack([hand, hand], 1), K)), [0, 0, 1, 1, 2, 2, 3, 3])
    wanted = jnp.array([3, 0, 2, 1, 1])
    np.testing.assert_array_equal(np.asarray(code_of(with_codes(z[:5], wanted, K), K)), wanted)


def test_info_loss_is_the_cross_entropy_by_hand():
    logits = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    codes = jnp.array([0, 1])
    p = np.exp(np.asarray(logits)) / np.exp(np.asarray(logits)).sum(1, keepdims=True)
    np.testing.assert_allclose(float(info_loss(logits, codes)), -(np.log(p[0, 0]) + np.log(p[1, 1])) / 2, rtol=1e-6)


@pytest.mark.parametrize("arch", ["dcgan", "mlp", "resnet"])
def test_g_sees_z_0_only_through_its_code_and_d_has_the_head(arch):
    overrides = {"arch": arch, "resolution": 32 if arch == "resnet" else 8, "features": 2 if arch == "resnet" else 8,
                 "mlp_width": 16, "mlp_depth": 2, "d_norm": "none" if arch != "resnet" else "spectral"}
    config = small_config(latent_codes=K, **overrides)
    g, d = build_models(config)
    z = sample_z(jax.random.PRNGKey(1), 6, config.z_dim)
    g_vars = g.init(jax.random.PRNGKey(2), z, train=False)
    out = lambda z: np.asarray(g.apply(g_vars, z, train=False))
    codes = code_of(z, K)
    # another z_0 of the same code: the same images; of the next code: other images
    np.testing.assert_array_equal(out(z), out(with_codes(z, codes, K)))
    assert np.abs(out(z) - out(with_codes(z, (codes + 1) % K, K))).min() > 0
    # D: one logit per sample as without the code, and Q's logits through apply_d
    spec = make_spec(config)
    d_vars = d.init(jax.random.PRNGKey(3), out(z), train=False)
    params, model_state = d_vars["params"], {k: v for k, v in d_vars.items() if k != "params"}
    logits, code_logits, _ = apply_d(spec, params, model_state, out(z))
    plain, _ = apply_net(d, params, model_state, out(z), True)
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(plain))
    assert logits.shape == (6,) and code_logits.shape == (6, K)
    assert "code_head" in params


def _info_losses_by_hand(spec, state, step):
    """The info term of one step, recomputed from the step's own z draw (ganjax.steps: d_step
    splits its key in 3, g_step in 2, z from the second)."""
    z_key = jax.random.split(state.key, 3 if step == "d" else 2)[1]
    z = sample_z(z_key, spec.batch_size, spec.z_dim)
    fake, _ = apply_net(spec.generator, state.g.params, state.g.model_state, z, True)
    _, code_logits, _ = apply_d(spec, state.d.params, state.d.model_state, fake)
    return float(info_loss(code_logits, code_of(z, spec.latent_codes)))


def test_both_steps_report_and_minimize_the_info_term(tmp_path):
    config = small_config(latent_codes=K, d_norm="none", loss="hinge")
    spec = make_spec(config)
    state = create_state(spec, 0)
    real = jnp.zeros((config.batch_size, 8, 8, 1))
    _, d_metrics = d_step(spec, state, real)
    np.testing.assert_allclose(float(d_metrics["D"]["info_D"]), _info_losses_by_hand(spec, state, "d"), rtol=1e-5)
    _, g_metrics = g_step(spec, state)
    np.testing.assert_allclose(float(g_metrics["info_G"]), _info_losses_by_hand(spec, state, "g"), rtol=1e-5)
    # the weight enters the losses: loss_G = G's adversarial loss + info_weight * info_G
    heavier = make_spec(small_config(latent_codes=K, d_norm="none", loss="hinge", info_weight=3.0))
    _, heavy = g_step(heavier, state)
    np.testing.assert_allclose(float(heavy["loss_G"] - g_metrics["loss_G"]), 2 * float(g_metrics["info_G"]), rtol=1e-5)
    # a short run: G and Q learn to agree on the code, from log(K) at the start
    final = train(small_config(latent_codes=K, steps=120, lr=2e-3, workdir=str(tmp_path)), progress=False)
    assert _info_losses_by_hand(spec, final, "g") < 0.5 * np.log(K)


def test_without_codes_nothing_changes():
    config = small_config()
    spec = make_spec(config)
    state = create_state(spec, 0)
    assert "code_head" not in state.d.params and "code_embedding" not in state.g.params
    _, metrics = g_step(spec, state)
    assert set(metrics) == {"loss_G"}


def test_code_grid_rows_hold_one_code_each():
    z = code_grid_z(jax.random.PRNGKey(0), 12, 5)
    assert z.shape == (100, 5)
    codes = np.asarray(code_of(z, 12)).reshape(10, 10)
    np.testing.assert_array_equal(codes, np.repeat(np.arange(10)[:, None], 10, axis=1))
    np.testing.assert_array_equal(np.asarray(z[:10, 1:]), np.asarray(z[10:20, 1:]))  # the same style per column


@pytest.mark.parametrize("argv,words", [
    (["--latent_codes=1"], "at least 2"),
    (["--latent_codes=-3"], "--latent_codes must be an integer >= 0"),
    (["--latent_codes=10", "--conditional=true"], "use one of them"),
    (["--latent_codes=10", "--z_dim=1"], "--z_dim >= 2"),
    (["--latent_codes=10", "--info_weight=-1"], "--info_weight must be a finite number >= 0"),
])
def test_bad_code_settings_are_refused(argv, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(")):
        parse_config(argv)


def test_generate_draws_the_requested_codes(tmp_path, capsys):
    from PIL import Image

    from ganjax.generate import carry_codes
    from ganjax.generate import main as generate_main
    from ganjax.generation import load_generator
    from ganjax.visualize import to_uint8

    run = tmp_path / "run"
    train(small_config(latent_codes=3, steps=4, workdir=str(run)), progress=False)
    out = tmp_path / "out"
    assert generate_main([f"--workdir={run}", "--n=5", "--code=2,0", "--format=png", f"--out={out}"]) == 0
    z = carry_codes(np.asarray(sample_z(jax.random.PRNGKey(0), 5, 8)), [2, 0], 3)
    np.testing.assert_array_equal(np.asarray(code_of(jnp.asarray(z), 3)), [2, 0, 2, 0, 2])
    expected = to_uint8(load_generator(str(run)).generate(z))[..., 0]
    written = np.stack([np.asarray(Image.open(out / f"{i}.png")) for i in range(1, 6)])
    np.testing.assert_array_equal(written, expected)
    # a code the generator does not have, and --code for a generator without codes: one line, exit 2
    assert generate_main([f"--workdir={run}", "--code=3", f"--out={out}"]) == 2
    assert "--code must be in 0 .. 2" in capsys.readouterr().err
    plain = tmp_path / "plain"
    train(small_config(steps=4, workdir=str(plain)), progress=False)
    assert generate_main([f"--workdir={plain}", "--code=1", f"--out={out}"]) == 2
    assert "has no InfoGAN code" in capsys.readouterr().err


def test_the_code_is_on_by_default_only_for_the_unconditional_digits():
    assert parse_config([]).latent_codes == 10
    assert parse_config(["--conditional=true"]).latent_codes == 0
    assert parse_config(["--dataset=toy:ring8"]).latent_codes == 0
    for preset in ("hw6-gan", "hw6-wgan", "hw6-wgan-gp", "dcgan-paper", "wgan-paper", "wgan-gp-paper", "sngan"):
        assert parse_config([f"--preset={preset}"]).latent_codes == 0, preset
    assert parse_config(["--preset=hw6-gan", "--latent_codes=5"]).latent_codes == 5
