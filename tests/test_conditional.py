"""Conditional GANs (--conditional=true): labels from every source through both feeds, the label
modules of G and D, D's step (fakes of the real labels, the penalty within them), exact resume,
the class-by-style grid, generation by class, the conditional digit metrics, and bad inputs."""

import dataclasses
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from PIL import Image

from ganjax.checkpoints import Checkpoints
from ganjax.config import Config, resolve
from ganjax.data import Labeled, load_dataset
from ganjax.data.feed import OnDevice, Streamed
from ganjax.errors import UserError
from ganjax.generate import main as generate_main
from ganjax.generation import load_generator
from ganjax.models import build_models
from ganjax.models.conditioning import LABEL_EMBED_DIM, concat_embedding
from ganjax.parallel import Placement, place
from ganjax.regularizers import Term
from ganjax.state import create_state, make_spec
from ganjax.steps import d_step, gather_batch
from ganjax.training import train
from tests.conftest import small_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 3  # classes of the model tests


def leaves_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --- the label modules -----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["dcgan", "mlp", "resnet"])
def test_models_take_labels_and_are_unchanged_without(arch):
    overrides = {"arch": arch, "resolution": 32 if arch == "resnet" else 8, "features": 2 if arch == "resnet" else 8,
                 "mlp_width": 16, "mlp_depth": 2, "d_norm": "none" if arch != "resnet" else "spectral"}
    config = small_config(conditional=True, **overrides)
    (g, d), g0 = build_models(config, num_classes=K), build_models(config)[0]
    z, labels = jnp.ones((4, config.z_dim)), jnp.array([0, 1, 2, 1])
    shape = (4, config.resolution, config.resolution, 1)
    gv = g.init(jax.random.PRNGKey(0), z, train=False, labels=labels)
    dv = d.init(jax.random.PRNGKey(1), jnp.zeros(shape), train=False, labels=labels)
    assert g.apply(gv, z, train=False, labels=labels).shape == shape
    assert d.apply(dv, jnp.zeros(shape), train=False, labels=labels).shape == (4,)
    if arch == "resnet":  # conditional batch norm: a scale and a shift per class and channel
        cbn = gv["params"]["GBlock_0"]["ConditionalBatchNorm_0"]
        assert cbn["scale"]["embedding"].shape == (K, 8 * 2) and cbn["shift"]["embedding"].shape == (K, 8 * 2)
    else:  # z with a learned embedding of LABEL_EMBED_DIM entries, whatever z_dim
        assert gv["params"]["label_embedding"]["embedding"].shape == (K, LABEL_EMBED_DIM)
    # other labels, other images (conditional batch norm starts the same for every class: move it)
    noise = lambda path, x: x + 0.1 * jax.random.normal(jax.random.PRNGKey(3), x.shape) if "shift" in str(path) else x
    gv = jax.tree_util.tree_map_with_path(noise, gv)
    assert not np.allclose(g.apply(gv, z, train=False, labels=labels), g.apply(gv, z, train=False, labels=labels * 0))
    # without classes the models have exactly their unconditional parameters
    g0v = g0.init(jax.random.PRNGKey(0), z, train=False)
    names = lambda tree: sorted(jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(tree))
    assert not any("label" in n or "Conditional" in n for n in names(g0v))
    assert all("label" in n or "Conditional" in n for n in set(names(gv)) - set(names(g0v)))


class _GInput(nn.Module):
    @nn.compact
    def __call__(self, z, labels):
        return concat_embedding(z, labels, 10)


def test_the_label_is_a_small_share_of_a_conditional_g_input():
    """G's input is [z, embed(y)] with an embedding of 10 entries beside z's 100: at init the label
    holds ~10 % of the input's energy, not half (with z_dim entries the default conditional digit
    run ignored z, one digit per class: LABEL_EMBED_DIM)."""
    z, labels = jax.random.normal(jax.random.PRNGKey(0), (256, 100)), jnp.arange(256) % 10
    variables = _GInput().init(jax.random.PRNGKey(1), z, labels)
    x = _GInput().apply(variables, z, labels)
    assert LABEL_EMBED_DIM == 10 and x.shape == (256, 100 + LABEL_EMBED_DIM)
    np.testing.assert_array_equal(x[:, :100], z)
    share = float(jnp.sum(x[:, 100:] ** 2) / jnp.sum(x ** 2))
    assert 0.03 < share < 0.2
    assert concat_embedding(z, labels, 0) is z  # unconditional: z itself


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
def test_projection_is_the_inner_product_of_the_class_embedding_and_the_features(arch):
    config = small_config(conditional=True, arch=arch, mlp_width=16, mlp_depth=2, d_norm="none")
    d = build_models(config, num_classes=K + 1)[1]
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1))
    labels = jnp.array([0, 1, 2, 1])
    variables = d.init(jax.random.PRNGKey(1), x, train=False, labels=labels)
    embedding = variables["params"]["label_projection"]["embedding"]
    assert not embedding.any()  # starts at zero: D starts as the unconditional one
    features_dim = embedding.shape[1]
    assert features_dim == (16 if arch == "mlp" else 4 * 4 * 8)  # the last hidden layer / D's 4x4xf features
    moved = jax.random.normal(jax.random.PRNGKey(2), embedding.shape)
    with_embedding = lambda e: {"params": {**variables["params"], "label_projection": {"embedding": e}}}
    out = lambda e: d.apply(with_embedding(e), x, train=False, labels=labels)
    unconditional = out(jnp.zeros_like(embedding))
    # the gradient of sum D(x, y) for the embedding is, in row c, the sum of phi(x) over the samples of class c
    grads = jax.grad(lambda e: jnp.sum(out(e)))(moved)
    assert not np.asarray(grads[3]).any() and np.abs(grads[:3]).sum() > 0  # class 3 has no sample here
    phi = np.zeros((4, features_dim))
    for i in range(4):
        phi[i] = jax.grad(lambda e, i=i: out(e)[i])(moved)[labels[i]]
    np.testing.assert_allclose(grads[1], phi[1] + phi[3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out(moved) - unconditional, np.sum(np.asarray(moved)[labels] * phi, axis=1),
                               rtol=1e-4, atol=1e-4)


def test_concat_discriminator_takes_one_hot_label_channels():
    config = small_config(conditional=True, cond_d="concat")
    d = build_models(config, num_classes=K)[1]
    x, labels = jnp.zeros((2, 8, 8, 1)), jnp.array([0, 2])
    variables = d.init(jax.random.PRNGKey(1), x, train=False, labels=labels)
    assert variables["params"]["Conv2d_0"]["kernel"].shape[2] == 1 + K
    assert "label_projection" not in variables["params"]
    out = d.apply(variables, x, train=False, labels=labels)
    assert out[0] != d.apply(variables, x, train=False, labels=labels[::-1])[0]


# --- D's step --------------------------------------------------------------------------------

def test_d_step_fakes_take_the_real_labels_and_the_penalty_interpolates_within_them():
    config = small_config(conditional=True, loss="wgan-gp")
    spec = make_spec(config, class_counts=(500,) * 10)
    state = create_state(spec, 0)
    # a D whose labels matter (the projection starts at zero)
    params = dict(state.d.params)
    params["label_projection"] = {"embedding": jax.random.normal(jax.random.PRNGKey(5), (10, 128))}
    state = state.replace(d=state.d.replace(params=params))
    images = jax.random.uniform(jax.random.PRNGKey(1), (8, 8, 8, 1), minval=-1, maxval=1)
    labels = jnp.arange(8, dtype=jnp.int32) % 10
    probes = (Term("fake", lambda critic, real, fake, eps: jnp.mean(fake), 0.0),
              Term("critic_real", lambda critic, real, fake, eps: jnp.mean(critic(real)), 0.0),
              Term("gp", lambda critic, real, fake, eps: jnp.mean(critic(eps * real + (1 - eps) * fake)), 0.0))
    probe_spec = dataclasses.replace(spec, d_terms=probes)
    _, metrics = jax.jit(lambda s, b: d_step(probe_spec, s, b))(state, Labeled(images, labels))
    _, z_key, eps_key = jax.random.split(state.key, 3)
    z = jax.random.normal(z_key, (8, spec.z_dim))
    fake_of = lambda y: spec.generator.apply(state.g.variables(), z, train=True, labels=y, mutable=["batch_stats"])[0]
    critic = lambda x, y: spec.discriminator.apply(state.d.variables(), x, train=True, labels=y)
    np.testing.assert_allclose(metrics["D"]["fake"], jnp.mean(fake_of(labels)), rtol=1e-5)
    assert abs(float(metrics["D"]["fake"] - jnp.mean(fake_of((labels + 1) % 10)))) > 1e-6
    np.testing.assert_allclose(metrics["D"]["critic_real"], jnp.mean(critic(images, labels)), rtol=1e-5)
    eps = jax.random.uniform(eps_key, (8, 1, 1, 1))
    x_hat = eps * images + (1 - eps) * fake_of(labels)
    np.testing.assert_allclose(metrics["D"]["gp"], jnp.mean(critic(x_hat, labels)), rtol=1e-4)
    assert abs(float(metrics["D"]["gp"] - jnp.mean(critic(x_hat, (labels + 1) % 10)))) > 1e-4


# --- labels from every source, through both feeds --------------------------------------------

def test_digits_carry_their_labels():
    dataset = load_dataset(small_config())
    assert dataset.class_names == tuple("0123456789") and dataset.labels.dtype == np.int32
    assert dataset.class_counts() == [500] * 10
    from ganjax.metrics.classifier import load_digit_labels
    np.testing.assert_array_equal(dataset.labels, load_digit_labels())


def write_class_folder(root, classes=("cat", "ant", "bee"), per_class=3, bad=True):
    """root/<class>/i.png with pixel value 40 * class index + i (sorted classes: ant, bee, cat), one
    nested subfolder and a corrupt file."""
    for name in classes:
        folder = root / name / ("deeper" if name == "bee" else "")
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            value = 40 * sorted(classes).index(name) + i
            Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(folder / f"{i}.png")
    if bad:
        (root / "ant" / "broken.png").write_bytes(b"not an image")
    return root


def test_folder_subfolders_are_classes_in_sorted_order_and_cached(tmp_path):
    root = write_class_folder(tmp_path / "data")
    config = small_config(dataset=f"folder:{root}", channels=3)
    for _ in range(2):  # decoded, then from the cache
        dataset = load_dataset(config)
        assert dataset.class_names == ("ant", "bee", "cat")
        assert len(dataset.array) == 9  # the broken file skipped, its label with it
        np.testing.assert_array_equal(dataset.labels, dataset.array[:, 0, 0, 0] // 40)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "a.png")
    (flat / "sub").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(flat / "sub" / "b.png")
    flat_data = load_dataset(small_config(dataset=f"folder:{flat}", channels=3))
    assert flat_data.labels is None and flat_data.class_names == ()


def test_tfds_label_feature_and_class_names(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from ganjax.data.tfds_source import data_source

    with tfds.testing.mock_data(num_examples=6):
        config = small_config(dataset="tfds:mnist", cache_dir=str(tmp_path))
        expected = [int(data_source("mnist", "train")[1][i]["label"]) for i in range(6)]
        for _ in range(2):  # decoded, then from the cache
            dataset = load_dataset(config)
            assert dataset.class_names == tuple("0123456789")
            np.testing.assert_array_equal(dataset.labels, expected)


def labeled_data(n=40):
    images = np.arange(n, dtype=np.uint8)[:, None].repeat(2, axis=1)  # row i holds i
    return Labeled(images, (np.arange(n) % 7).astype(np.int32))


def test_labels_stay_with_their_images_on_the_device_and_streamed():
    data = labeled_data()
    key = jax.random.PRNGKey(3)
    on_device, streamed = OnDevice(data, key, place(1, 4)), Streamed(data, key, 4, 3, place(1, 4))
    try:
        for epoch, position in [(0, 0), (0, 3), (1, 6)]:
            for feed in (on_device, streamed):
                arrays, perm, start = feed.chunk(epoch, position, 3)
                for i in range(3):
                    batch = gather_batch(arrays, perm, start + i, 4)
                    rows = np.rint((np.asarray(batch.images[:, 0]) + 1) * 127.5).astype(int)  # decoded to [-1, 1]
                    np.testing.assert_array_equal(np.asarray(batch.labels), rows % 7)
            a, b = (gather_batch(*f.chunk(epoch, position, 3)[:2], f.chunk(epoch, position, 3)[2], 4)
                    for f in (on_device, streamed))
            leaves_equal(a, b)
    finally:
        streamed.close()


def test_sharded_stream_sends_each_device_the_labels_of_its_rows():
    """Process 1 of 2 with 2 devices each: each device's block holds its rows' images and labels."""
    data = labeled_data()
    devices = (jax.devices()[0],) * 2
    streamed = Streamed(data, jax.random.PRNGKey(0), 8, 3, Placement(devices, total_devices=4, process=1))
    try:
        rows = streamed.rows(epoch=1, position=2)
        block = streamed.host_block(epoch=1, position=2)
        assert isinstance(block, Labeled)
        np.testing.assert_array_equal(block.images[..., 0], rows.reshape(2, -1))
        np.testing.assert_array_equal(block.labels, rows.reshape(2, -1) % 7)
    finally:
        streamed.close()


@pytest.mark.slow
def test_eight_devices_follow_one_device_streamed_and_on_the_device(tmp_path):
    """A conditional wgan-gp run (labels drawn for the global batch, the penalty within the real
    labels) on 8 devices, with each device's rows and labels streamed, follows the one-device run
    with the data on the device."""
    from tests.test_parallel import assert_same_run, finish, launch

    flags = "--steps=8 --conditional=true --loss=wgan-gp --n_critic=2 --label_dist=data"
    one = launch(tmp_path / "1.npz", f"{flags} --devices=1 --workdir={tmp_path}/one")
    eight = launch(tmp_path / "8.npz", f"{flags} --devices=8 --data_on_device=false --workdir={tmp_path}/eight")
    finish(one), finish(eight)
    assert_same_run(dict(np.load(tmp_path / "1.npz")), dict(np.load(tmp_path / "8.npz")))


# --- exact resume, the checkpoint's classes ---------------------------------------------------

def test_conditional_stop_and_resume_is_bitwise_the_same_run(tmp_path):
    flags = {"conditional": True, "loss": "wgan-gp", "n_critic": 2, "label_dist": "data"}
    whole = train(small_config(**flags, steps=10, workdir=str(tmp_path / "whole")), progress=False)
    train(small_config(**flags, steps=5, workdir=str(tmp_path / "split")), progress=False)
    resumed = train(small_config(**flags, steps=10, workdir=str(tmp_path / "split")), progress=False)
    leaves_equal(whole, resumed)
    _, _, meta = Checkpoints(str(tmp_path / "split"), read_only=True).read_json()
    assert meta["classes"] == list("0123456789") and meta["class_counts"] == [500] * 10
    assert os.path.exists(tmp_path / "split" / "samples" / "epoch_001.png")


@pytest.mark.slow
def test_resume_with_other_classes_or_conditioning_is_refused(tmp_path):
    root = write_class_folder(tmp_path / "data", bad=False)
    config = lambda **kw: small_config(dataset=f"folder:{root}", channels=3, batch_size=4,
                                       workdir=str(tmp_path / "run"), **kw)
    train(config(conditional=True, steps=2), progress=False)
    with pytest.raises(UserError, match="--conditional: True in the checkpoint, False now"):
        train(config(steps=4), progress=False)
    os.rename(root / "cat", root / "cow")  # the same number of images, another class
    with pytest.raises(UserError, match=r"classes changed since checkpoint 2: 3 classes \(ant, bee, cat\) then, "
                                        r"3 classes \(ant, bee, cow\) now"):
        train(config(conditional=True, steps=4), progress=False)


# --- generation by class ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("cond")
    train(small_config(conditional=True, steps=4, workdir=str(workdir)), progress=False)
    return workdir


def test_load_generator_samples_by_class(conditional_run):
    gen = load_generator(str(conditional_run))
    key = jax.random.PRNGKey(0)
    assert gen.class_names == tuple("0123456789")
    sevens, named = gen.sample(key, 4, labels=7), gen.sample(key, 4, labels="7")
    np.testing.assert_array_equal(sevens, named)
    assert sevens.shape == (4, 8, 8, 1) and not np.allclose(sevens, gen.sample(key, 4, labels=3))
    # the same z and labels in a batch of 2: the same images, to float rounding (the CPU's matmul
    # forms of the convolutions may split their sums differently at another batch size)
    np.testing.assert_allclose(gen.sample(key, 2, labels=[7, 7]), sevens[:2], rtol=1e-5, atol=1e-6)
    assert gen.sample(key, 4).shape == (4, 8, 8, 1)  # classes drawn uniformly
    with pytest.raises(ValueError, match="no class 10"):
        gen.sample(key, 2, labels=10)
    with pytest.raises(ValueError, match="give labels"):
        gen.from_z(np.zeros((2, 8)))


def test_generate_class_names_the_files(conditional_run, tmp_path):
    out = tmp_path / "out"
    generate_main([f"--workdir={conditional_run}", "--n=5", "--class=7", "--class=3,1", f"--out={out}", "--format=png"])
    assert sorted(os.listdir(out)) == ["1_7.png", "2_3.png", "3_1.png", "4_7.png", "5_3.png"]
    generate_main([f"--workdir={conditional_run}", "--n=20", f"--out={tmp_path / 'uniform'}"])
    names = os.listdir(tmp_path / "uniform")
    assert len(names) == 20 and all(n.split("_")[1] in [f"{c}.jpg" for c in range(10)] for n in names)
    assert len({n.split("_")[1] for n in names}) > 3  # drawn uniformly
    generate_main([f"--workdir={conditional_run}", "--n=4", "--class=2,5", "--per_class_dirs",
                   f"--out={tmp_path / 'dirs'}"])
    assert sorted(os.listdir(tmp_path / "dirs")) == ["2", "5"]
    assert sorted(os.listdir(tmp_path / "dirs" / "5")) == ["2.jpg", "4.jpg"]


def run_cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def assert_one_line(result, message):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and message in lines[-1], lines


@pytest.mark.parametrize("flag,message", [
    ("--class=10", "--class: no class '10': this generator has 10 classes, indices 0 .. 9"),
    ("--class=seven", "--class: no class 'seven'"),
])
def test_generate_bad_class_is_one_line(conditional_run, tmp_path, flag, message):
    assert_one_line(run_cli("ganjax.generate", f"--workdir={conditional_run}", "--n=2", flag,
                            f"--out={tmp_path}"), message)


def test_generate_class_of_an_unconditional_run_is_one_line(tmp_path):
    train(small_config(steps=4, workdir=str(tmp_path / "run")), progress=False)
    assert_one_line(run_cli("ganjax.generate", f"--workdir={tmp_path / 'run'}", "--class=1", f"--out={tmp_path}"),
                    "--class=1: this generator is unconditional")


# --- bad settings ----------------------------------------------------------------------------

def test_conditional_on_data_without_labels_is_one_line(tmp_path):
    with pytest.raises(UserError, match="toy:ring8 has no labels"):
        resolve(Config(conditional=True, dataset="toy:ring8"))
    with pytest.raises(UserError, match="--cond_d=concat is offered for --arch=dcgan and mlp"):
        resolve(Config(conditional=True, arch="resnet", cond_d="concat"))
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(flat / f"{i}.png")
    assert_one_line(run_cli("ganjax.train", "--conditional=true", f"--dataset=folder:{flat}", "--resolution=8",
                            "--batch_size=2", "--steps=1", f"--workdir={tmp_path / 'w'}"),
                    f"--conditional=true needs labelled data, and folder:{flat} has no classes")
    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(one / "only" / f"{i}.png")
    with pytest.raises(UserError, match="needs at least 2 classes"):
        train(small_config(conditional=True, dataset=f"folder:{one}", channels=3, batch_size=2, steps=1,
                           workdir=str(tmp_path / "w1")), progress=False)


# --- the conditional digit metrics -----------------------------------------------------------

def test_conditional_digit_metrics_on_real_digits():
    from ganjax.data.digits import load_labelled_digits
    from ganjax.evaluation import N_DIGITS, sample_metrics
    from ganjax.metrics.classifier import to_model_input

    config = resolve(Config(conditional=True))
    images, labels = load_labelled_digits(32, 1)
    rng = np.random.default_rng(1)
    pick = rng.permutation(len(images))[:N_DIGITS]
    real = sample_metrics(config, to_model_input(images[pick]), kid_subsets=2, labels=labels[pick])
    wrong = sample_metrics(config, to_model_input(images[pick]), kid_subsets=2, labels=(labels[pick] + 1) % 10)
    assert real["class_accuracy"] > 0.95 and wrong["class_accuracy"] < 0.05
    assert real["intra_fd"] < 2 * real["intra_fd_real"] < wrong["intra_fd"]
