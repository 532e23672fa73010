"""`python -m ganjax.generate`, the generator API, and loading the homework's PyTorch generator."""

import os
import shutil
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ganjax.config import Config, resolve
from ganjax.generate import interpolation_z, main, slerp
from ganjax.generation import load_generator
from ganjax.training import train
from ganjax.visualize import to_uint8
from tests.conftest import small_config


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    state = train(small_config(steps=6, workdir=str(workdir)), progress=False)
    return str(workdir), state


def test_writes_the_homework_submission(image_run, tmp_path):
    workdir, _ = image_run
    out = tmp_path / "output"
    assert main([f"--workdir={workdir}", "--n=30", f"--out={out}", "--tar", "--grid", "--interpolate=4"]) == 0
    names = sorted(os.listdir(out), key=lambda n: (len(n), n))
    assert [f"{i}.jpg" for i in range(1, 31)] == [n for n in names if n.endswith(".jpg")]
    assert {"grid.png", "interpolate_linear.png", "interpolate_slerp.png"} <= set(names)
    assert Image.open(out / "7.jpg").size == (8, 8)
    with tarfile.open(f"{out}.tgz") as tar:
        assert sorted(tar.getnames(), key=lambda n: (len(n), n)) == [f"{i}.jpg" for i in range(1, 31)]
    grid = Image.open(out / "interpolate_slerp.png")
    assert grid.size == (4 * 10 + 2, 8 * 10 + 2)  # 8 rows of 4 images of 8 px, 2 px padding


def test_png_is_g_in_inference_mode_and_seeded(image_run, tmp_path):
    workdir, state = image_run
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, 1), (b, 1), (c, 2)):
        assert main([f"--workdir={workdir}", "--n=5", f"--out={out}", "--format=png", f"--seed={seed}"]) == 0
    read = lambda d: np.stack([np.asarray(Image.open(d / f"{i}.png")) for i in range(1, 6)])
    np.testing.assert_array_equal(read(a), read(b))
    assert not np.array_equal(read(a), read(c))
    # the pixels are G(z) with the running batch statistics, for z drawn from the seed (G's EMA: the default)
    gen = load_generator(workdir)
    z = jax.random.normal(jax.random.PRNGKey(1), (5, gen.z_dim))
    expected = gen.module.apply(state.g_ema, z, train=False)
    np.testing.assert_array_equal(read(a), to_uint8(expected)[..., 0])
    # inference mode: a sample does not depend on the others in its batch
    np.testing.assert_allclose(gen.from_z(z[:1]), gen.from_z(z)[:1], atol=1e-6)


def test_z_from_file(image_run, tmp_path):
    workdir, _ = image_run
    gen = load_generator(workdir)
    z = np.random.default_rng(0).standard_normal((3, gen.z_dim)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    assert main([f"--workdir={workdir}", f"--z={tmp_path / 'z.npy'}", f"--out={tmp_path}", "--format=png"]) == 0
    assert not (tmp_path / "4.png").exists()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "3.png")), to_uint8(gen.from_z(z))[2, ..., 0])


def test_needs_neither_data_nor_discriminator(image_run, tmp_path, monkeypatch):
    workdir, _ = image_run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    for step in os.listdir(copy / "checkpoints"):
        shutil.rmtree(copy / "checkpoints" / step / "train")  # D and the optimizer states
    import ganjax.data
    monkeypatch.setattr(ganjax.data, "load_dataset", lambda *a: pytest.fail("generate loaded the data"))
    assert main([f"--workdir={copy}", "--n=2", f"--out={tmp_path / 'out'}"]) == 0


@pytest.mark.parametrize("args,words", [
    ([], "give one of --workdir"),
    (["--workdir=/nonexistent/run"], "no checkpoints in /nonexistent/run"),
    (["--step=999"], "no checkpoint at step 999"),
    (["--n=0"], "--n and --rows must be positive"),
    (["--z=missing.npy"], "--z: cannot read missing.npy"),
    (["--format=gif"], "invalid choice"),
])
def test_mistakes_exit_2_with_one_line(image_run, capsys, args, words):
    workdir, _ = image_run
    if args and args[0] in ("--step=999", "--n=0", "--z=missing.npy", "--format=gif"):
        args = [f"--workdir={workdir}"] + args
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err


def test_wrong_z_shape(image_run, tmp_path, capsys):
    workdir, _ = image_run
    np.save(tmp_path / "z.npy", np.zeros((4, 3), np.float32))
    assert main([f"--workdir={workdir}", f"--z={tmp_path / 'z.npy'}", f"--out={tmp_path}"]) == 2
    assert "has shape (4, 3); this generator needs (N, 8)" in capsys.readouterr().err


def test_toy_writes_points_and_a_plot(tmp_path):
    config = resolve(Config(dataset="toy:ring8", toy_size=100, batch_size=8, mlp_width=16, mlp_depth=2,
                            z_dim=2, steps=4, chunk_size=4, workdir=str(tmp_path / "run")))
    train(config, progress=False)
    assert main([f"--workdir={tmp_path / 'run'}", "--n=50", f"--out={tmp_path / 'out'}"]) == 0
    points = np.load(tmp_path / "out" / "samples.npy")
    assert points.shape == (50, 2) and np.isfinite(points).all()
    assert Image.open(tmp_path / "out" / "samples.png").size[0] > 100


def test_slerp_and_lerp_paths():
    key = jax.random.PRNGKey(0)
    a, b = jax.random.normal(key, (2, 1, 16))
    t = jnp.linspace(0, 1, 5)[:, None]
    path = slerp(a, b, t)
    np.testing.assert_allclose(path[0], a[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], b[0], atol=1e-5)
    unit_a, unit_b = a / jnp.linalg.norm(a), b / jnp.linalg.norm(b)
    np.testing.assert_allclose(jnp.linalg.norm(slerp(unit_a, unit_b, t), axis=-1), 1.0, atol=1e-5)  # on the sphere
    z = interpolation_z(key, 3, 4, 16, spherical=False).reshape(3, 4, 16)
    np.testing.assert_allclose(z[:, 1] - z[:, 0], z[:, 3] - z[:, 2], atol=1e-5)  # evenly spaced line
