"""The Inception metrics: ganjax's Flax FID Inception-v3 against pytorch-fid's own module with the
same random weights, the preprocessing against torch's interpolate, the weights' lookup and
conversion, FID / KID / IS / precision / recall / density / coverage against direct
implementations, the reference statistics of a dataset, and the commands' one-line errors."""

import json
import os
import sys
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from ganjax.evaluate import main as evaluate_main
from ganjax.fid import Side, compare, dataset_reference, inception_score_of
from ganjax.fid import main as fid_main
from ganjax.metrics import inception_weights as iw
from ganjax.metrics.image import gaussian_frechet_distance, kid, knn_radii, manifold_scores, softmax
from ganjax.metrics.inception import inception_outputs, preprocess


def smooth_images(rng, n, side, channels):
    """uint8 (n, side, side, channels): random 8x8 images upsampled, plus noise (image-like)."""
    out = []
    for _ in range(n):
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        pixels = np.asarray(small.convert("L" if channels == 1 else "RGB"), np.int64).reshape(side, side, channels)
        out.append(np.clip(pixels + rng.integers(-20, 21, pixels.shape), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return {"rgb64": smooth_images(rng, 3, 64, 3), "gray32": smooth_images(rng, 3, 32, 1)}


def to_torch(batch):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path, module_cache):
    """No weights in the environment, a torch hub of the test's own, the converted weights in a
    cache of this module's (each test that checks the conversion uses its own)."""
    monkeypatch.delenv(iw.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", module_cache)
    iw.load_weights.cache_clear()
    yield
    iw.load_weights.cache_clear()


@pytest.fixture(scope="module")
def fid_net(pytorch_fid, images, tmp_path_factory):
    """pytorch-fid's FID Inception-v3 with random weights, saved as a weights file: (path,
    pytorch-fid's InceptionV3([3]) built from that file through its own loader, the fc layer).

    The random state dict is torchvision's Inception-v3 (the FID blocks have the same tensors),
    with random batch-norm scales and shifts, served to pytorch-fid's loader by patching
    `load_state_dict_from_url`; the batch-norm statistics are then calibrated by one train-mode
    pass over images like the tests' (cumulative average), so activations stay O(1)."""
    import torch
    import torchvision

    inception, _ = pytorch_fid
    torch.manual_seed(0)
    source = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    with torch.no_grad():
        for m in source.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    with mock.patch.object(inception, "load_state_dict_from_url", lambda *a, **k: source.state_dict()):
        net = inception.fid_inception_v3()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    calibration = torch.cat([torch.nn.functional.interpolate(to_torch(batch), size=(299, 299), mode="bilinear",
                                                             align_corners=False) for batch in images.values()])
    with torch.no_grad():
        net.train()(2 * calibration - 1)
    path = str(tmp_path_factory.mktemp("weights") / "random_inception.pth")
    torch.save(net.state_dict(), path)
    with mock.patch.object(inception, "load_state_dict_from_url",
                           lambda *a, **k: torch.load(path, weights_only=True)):
        reference = inception.InceptionV3([3]).eval()
    return path, reference, net.fc.eval()


def test_pool3_and_logits_equal_pytorch_fids(fid_net, images):
    """64x64 RGB and 32x32 gray, 3 each in a batch of 4 (padded).

    Float32 rounding: this random network's pool3 in float32, pytorch-fid's and ganjax's alike,
    differs from a float64 run by up to 4e-5 of its largest value; the two differ by up to 6e-5."""
    import torch

    path, reference, fc = fid_net
    variables = iw.load_weights(path).variables
    for batch in images.values():
        ours = inception_outputs(iter(batch), variables, batch_size=4)
        with torch.no_grad():
            pool3 = reference(to_torch(batch))[0][:, :, 0, 0]
            logits = fc(pool3).numpy()
            unbiased = (pool3 @ fc.weight.T).numpy()
        pool3 = pool3.numpy()
        assert 0.1 < pool3.std() < 100  # calibrated: O(1) activations, not 0 and not blown up
        for name, theirs in (("pool3", pool3), ("logits", logits), ("logits_unbiased", unbiased)):
            assert ours[name].shape == theirs.shape
            assert np.abs(ours[name] - theirs).max() <= 2e-4 * np.abs(theirs).max(), name


@pytest.mark.parametrize("shape", [(2, 32, 32, 1), (2, 64, 64, 3), (1, 299, 299, 3), (1, 512, 384, 3), (1, 7, 5, 3)])
def test_preprocessing_equals_torch_interpolate(shape):
    """Up- and downsampling, non-square, gray: F.interpolate(bilinear, align_corners=False) on
    uint8 / 255, then 2x - 1."""
    import torch

    x = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    theirs = torch.nn.functional.interpolate(to_torch(x), size=(299, 299), mode="bilinear", align_corners=False)
    theirs = (2 * theirs - 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(np.asarray(preprocess(x)) - theirs).max() < 1e-6


def write_folder(root, batch):
    os.makedirs(root, exist_ok=True)
    for i, image in enumerate(batch):
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(os.path.join(root, f"{i}.png"))
    return str(root)


def low_rank_sqrtm(matrix, disp=None):
    """A stand-in for scipy.linalg.sqrtm in the end-to-end test, where sigma1 @ sigma2 has rank
    < 16 (7 images a side): a matrix with the same trace as its principal root, the sum of the
    square roots of its eigenvalues, which are those of Q^T M Q for an orthonormal basis Q of its
    range, in milliseconds instead of the minute that two 2048x2048 Schur decompositions take on 2
    cores. FID's handling of the root itself is checked against pytorch-fid's at small sizes
    (test_fid_equals_pytorch_fids_*)."""
    q, _ = np.linalg.qr(matrix @ np.random.default_rng(0).normal(size=(len(matrix), 16)))
    assert np.abs(matrix - q @ (q.T @ matrix)).max() <= 1e-9 * np.abs(matrix).max()  # the range is all of it
    roots = np.sqrt(np.linalg.eigvals(q.T @ matrix @ q).astype(complex)).real
    root = np.diag(np.concatenate([roots, np.zeros(len(matrix) - len(roots))]))
    return (root, 0.0) if disp is not None else root


def test_fid_of_two_folders_and_save_stats_equal_pytorch_fids(fid_net, pytorch_fid, images, tmp_path, capsys):
    import torch

    path, _, _ = fid_net
    inception, fid_score = pytorch_fid
    rng = np.random.default_rng(5)  # 7 images a side: more than the k-NN metrics' 5 neighbours
    rgb = write_folder(tmp_path / "rgb", np.concatenate([images["rgb64"], smooth_images(rng, 4, 64, 3)]))
    gray = write_folder(tmp_path / "gray", np.concatenate([images["gray32"], smooth_images(rng, 4, 32, 1)]))
    flags = [f"--inception_weights={path}", "--batch_size=4"]
    assert fid_main([gray, f"--save_stats={tmp_path / 'gray.npz'}"] + flags) == 0
    capsys.readouterr()
    with mock.patch("scipy.linalg.sqrtm", low_rank_sqrtm):
        assert fid_main([rgb, gray, "--json"] + flags) == 0
        printed = capsys.readouterr()
        ours = json.loads(printed.out)
        with mock.patch.object(inception, "load_state_dict_from_url",
                               lambda *a, **k: torch.load(path, weights_only=True)):
            model = inception.InceptionV3([3])
            mu, sigma = fid_score.compute_statistics_of_path(rgb, model, 4, 2048, "cpu", num_workers=0)
            mu2, sigma2 = fid_score.compute_statistics_of_path(gray, model, 4, 2048, "cpu", num_workers=0)
        theirs = fid_score.calculate_frechet_distance(mu, sigma, mu2, sigma2)  # = calculate_fid_given_paths
    assert ours["fid"] == pytest.approx(theirs, rel=1e-3)
    with np.load(tmp_path / "gray.npz") as saved:
        assert saved["mu"].dtype == saved["sigma"].dtype == np.float64
        np.testing.assert_allclose(saved["mu"], mu2, rtol=1e-3, atol=1e-3 * np.abs(mu2).max())
        np.testing.assert_allclose(saved["sigma"], sigma2, rtol=1e-3, atol=1e-3 * np.abs(sigma2).max())
    # Fewer than IS's 10 splits: no is_1 / is_2, said on stderr, not a crash.
    assert set(ours) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"}
    assert "no IS for" in printed.err


# --- weights: lookup, conversion, errors ---------------------------------------------------------

def test_lookup_order_conversion_once_and_hash_warning(fid_net, tmp_path, monkeypatch, capsys):
    path = fid_net[0]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a fresh converted cache
    hub = iw.hub_path()
    assert hub == str(tmp_path / "torch" / "hub" / "checkpoints" / iw.FILE_NAME)
    assert iw.find_weights() == (hub, "the torch hub cache")
    os.makedirs(os.path.dirname(hub))
    os.symlink(path, hub)
    monkeypatch.setenv(iw.ENV_VAR, str(tmp_path / "env.pth"))
    assert iw.find_weights() == (str(tmp_path / "env.pth"), f"${iw.ENV_VAR}")
    assert iw.find_weights(path) == (path, "--inception_weights")
    monkeypatch.delenv(iw.ENV_VAR)
    weights = iw.load_weights(*iw.find_weights())
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not the published" in err and "using it anyway" in err
    assert os.listdir(iw.converted_dir()) == [f"{weights.sha256[:16]}.msgpack"]
    # Later processes read the converted copy: torch is not needed.
    iw.load_weights.cache_clear()
    monkeypatch.setitem(sys.modules, "torch", None)
    again = iw.load_weights(hub)
    kernel = ("params", "Mixed_7c", "branch_pool", "conv", "kernel")
    np.testing.assert_array_equal(_leaf(again.variables, kernel), _leaf(weights.variables, kernel))
    assert weights.sha256 == again.sha256 == iw.sha256_of(path)


def _leaf(tree, path):
    for key in path:
        tree = tree[key]
    return np.asarray(tree)


def test_without_torch_and_without_a_converted_copy_one_line(fid_net, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, "torch", None)
    problem = iw.weights_problem(fid_net[0])
    assert "needs torch" in problem and "\n" not in problem


def one_line_error(capsys, prog="ganjax.fid"):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def test_files_that_are_not_the_weights_exit_2_with_one_line(tmp_path, images, capsys):
    import torch

    folder = write_folder(tmp_path / "rgb", images["rgb64"][:2])
    # One tensor each: the names are checked first (unknown, then of a wrong shape, then missing).
    cases = {"partial.pth": {"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)},
             "reshaped.pth": {"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3),
                              "fc.weight": torch.zeros(1000, 2048)},
             "extra.pth": {"fc.weight": torch.zeros(1008, 2048), "AuxLogits.fc.weight": torch.zeros(1000, 768)},
             "code.pth": {"x": len}}
    for name, contents in cases.items():
        torch.save(contents, tmp_path / name)
    (tmp_path / "garbage.pth").write_bytes(os.urandom(1000))
    words = {"partial.pth": "lacks", "reshaped.pth": "fc.weight of shape (1000, 2048)", "extra.pth": "AuxLogits",
             "code.pth": "cannot be read", "garbage.pth": "cannot be read"}
    for name, word in words.items():
        out = tmp_path / "stats.npz"
        assert fid_main([folder, f"--save_stats={out}", f"--inception_weights={tmp_path / name}"]) == 2
        assert word in one_line_error(capsys), name
        assert not out.exists()


@pytest.mark.slow  # a training run
def test_missing_weights_one_line_from_fid_evaluate_and_once_in_training(tmp_path, capsys):
    from conftest import small_config
    from ganjax.training import train

    folder = write_folder(tmp_path / "faces", smooth_images(np.random.default_rng(2), 16, 8, 3))
    assert fid_main([folder, folder]) == 2
    line = one_line_error(capsys)
    assert iw.hub_path() in line and "pip install pytorch-fid" in line
    workdir = tmp_path / "run"
    config = small_config(dataset=f"folder:{folder}", channels=3, steps=2, chunk_size=2, workdir=str(workdir),
                          tensorboard=False)
    train(config, progress=False)
    out = capsys.readouterr()
    said = (out.out + out.err).count("no Inception metrics in this run")
    assert said == 1 and (workdir / "checkpoints").is_dir()
    assert evaluate_main([f"--workdir={workdir}"]) == 2
    assert "pip install pytorch-fid" in one_line_error(capsys, "ganjax.evaluate")
    assert not (workdir / "eval.json").exists()


def test_bad_paths_exit_2_with_one_line_and_write_nothing(fid_net, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "small.npz", mu=np.zeros(3), sigma=np.eye(3))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    out = tmp_path / "out.npz"
    cases = {"empty": "holds no images", "bad.npz": "cannot read", "small.npz": "(2048,)", "run": "checkpoint",
             "absent": "no such folder or file"}
    for name, word in cases.items():
        assert fid_main([str(tmp_path / name), f"--save_stats={out}", f"--inception_weights={fid_net[0]}"]) == 2
        assert word in one_line_error(capsys), name
        assert not out.exists()


# --- the reference of a dataset, and the metrics during training -----------------------------------

def test_dataset_statistics_are_cached_and_the_training_family_scores(fid_net, pytorch_fid, tmp_path, monkeypatch,
                                                                      capsys):
    from conftest import small_config
    from ganjax import evaluation
    from ganjax.metrics import inception as inception_module

    weights = iw.load_weights(fid_net[0])
    folder = write_folder(tmp_path / "faces", smooth_images(np.random.default_rng(3), 6, 8, 3))
    config = small_config(dataset=f"folder:{folder}", channels=3, eval_samples=10, inception_weights=fid_net[0])
    calls = []
    real_outputs = inception_module.inception_outputs
    monkeypatch.setattr(inception_module, "default_batch_size", lambda: 4)  # the batch the other tests compiled
    monkeypatch.setattr(inception_module, "inception_outputs", lambda *a, **k: calls.append(1) or real_outputs(*a, **k))
    first = dataset_reference(config, weights, batch_size=4)
    second = dataset_reference(config, weights, batch_size=4)
    assert len(calls) == 1 and first.count == second.count == 6
    np.testing.assert_array_equal(first.sigma, second.sigma)
    cached = [name for name in os.listdir(os.path.join(folder, ".ganjax-cache")) if ".inception-" in name]
    assert cached == [f"8px-rgb.inception-{weights.sha256[:12]}.npz"]
    _, fid_score = pytorch_fid  # pytorch-fid reads the cached statistics as its own .npz
    mu, sigma = fid_score.compute_statistics_of_path(os.path.join(folder, ".ganjax-cache", cached[0]), None, 1, 2048,
                                                     "cpu")
    np.testing.assert_array_equal(mu, first.mu)
    # The family of folder runs: every Inception metric under its own name (FID by eigenvalues
    # here: the 2048x2048 sqrtm is checked against pytorch-fid's elsewhere).
    monkeypatch.setattr("ganjax.metrics.image.gaussian_frechet_distance", _symmetric_fid)
    assert [f.name for f in evaluation.families(config)] == ["inception"]
    samples = np.random.default_rng(4).uniform(-1, 1, (10, 8, 8, 3)).astype(np.float32)
    capsys.readouterr()
    metrics = evaluation.sample_metrics(config, samples, kid_subsets=2)
    assert set(metrics) == {"fid", "inception_kid", "inception_kid_std", "precision", "recall", "density", "coverage",
                            "inception_score", "inception_score_std"}
    assert metrics["fid"] > 0 and 1 <= metrics["inception_score"] < 1008
    assert "biased upward" in capsys.readouterr().err  # 10 samples: said, not a crash
    assert len(calls) == 2  # the samples only: the reference came from the cache
    # Digits keep their classifier; the Inception metrics join only when asked for.
    assert [f.name for f in evaluation.families(small_config(resolution=32, features=8))] == ["digits"]
    asked = small_config(resolution=32, features=8, inception_weights=fid_net[0])
    assert [f.name for f in evaluation.families(asked)] == ["digits", "inception"]


def _symmetric_fid(mu1, sigma1, mu2, sigma2):
    w, v = np.linalg.eigh(sigma1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma2 @ root), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr)


# --- the metrics against direct implementations ----------------------------------------------------

def test_fid_equals_pytorch_fids_also_for_singular_covariances(pytorch_fid):
    _, fid_score = pytorch_fid
    rng = np.random.default_rng(0)
    for n in (200, 5):  # 5 samples in 16 dimensions: singular covariances
        a, b = rng.normal(size=(n, 16)), rng.normal(1.0, 2.0, size=(n, 16)) @ rng.normal(size=(16, 16))
        stats = [a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)]
        assert gaussian_frechet_distance(*stats) == pytest.approx(fid_score.calculate_frechet_distance(*stats),
                                                                  rel=1e-9)
    a = rng.normal(size=(300, 16))
    assert gaussian_frechet_distance(a.mean(0), np.cov(a, rowvar=False), a.mean(0), np.cov(a, rowvar=False)) == \
        pytest.approx(0, abs=1e-9)


def test_fid_retries_a_non_finite_root_with_eps_and_checks_the_imaginary_part(capsys):
    """pytorch-fid's handling: a non-finite sqrtm is retried on (sigma1 + eps I)(sigma2 + eps I);
    a complex root within 1e-3 on the diagonal is taken as real, beyond it nan (pytorch-fid raises)."""
    from scipy import linalg

    real_sqrtm = linalg.sqrtm
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    mu = np.zeros(2)
    seen = []

    def sqrtm(m):
        seen.append(m)
        return np.full((2, 2), np.inf) if len(seen) == 1 else real_sqrtm(m)

    with mock.patch("scipy.linalg.sqrtm", sqrtm):
        value = gaussian_frechet_distance(mu, s1, mu, s2, eps=0.5)
    np.testing.assert_allclose(seen[1], (s1 + 0.5 * np.eye(2)) @ (s2 + 0.5 * np.eye(2)))
    assert value == pytest.approx(5 + 10 - 2 * (np.sqrt(1.5 * 9.5) + np.sqrt(4.5 * 1.5)))
    root = np.diag([3.0, 2.0]).astype(complex)
    with mock.patch("scipy.linalg.sqrtm", lambda m: root + 1e-4j):
        assert gaussian_frechet_distance(mu, s1, mu, s2) == pytest.approx(15 - 10)
    capsys.readouterr()
    with mock.patch("scipy.linalg.sqrtm", lambda m: root + 0.1j):
        assert np.isnan(gaussian_frechet_distance(mu, s1, mu, s2))
    assert "imaginary component" in capsys.readouterr().err


def test_kid_equals_the_unbiased_mmd_by_loops():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(0.5, 1, size=(25, 4))
    draws = np.random.RandomState(2020)
    values = []
    for _ in range(3):  # torch-fidelity's draws: x's subset, then y's
        a, b = x[draws.choice(30, 10, replace=False)], y[draws.choice(25, 10, replace=False)]
        k = lambda u, v: (u @ v / 4 + 1) ** 3
        within = sum(k(a[i], a[j]) + k(b[i], b[j]) for i in range(10) for j in range(10) if i != j) / 90
        values.append(within - 2 * sum(k(a[i], b[j]) for i in range(10) for j in range(10)) / 100)
    mean, std = kid(x, y, subsets=3, subset_size=10, seed=np.random.RandomState(2020))
    assert (mean, std) == pytest.approx((np.mean(values), np.std(values)), rel=1e-10)


def test_inception_score_by_splits_and_of_uniform_logits():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(37, 6)) * 3
    shuffled = logits[np.random.RandomState(2020).permutation(37)]
    scores = []
    for i in range(10):  # torch-fidelity's parts and log-softmax
        part = shuffled[i * 37 // 10:(i + 1) * 37 // 10]
        log_p = part - np.log(np.exp(part).sum(1, keepdims=True))
        p = np.exp(log_p)
        scores.append(np.exp(np.mean(np.sum(p * (log_p - np.log(p.mean(0))), axis=1))))
    side = Side("x", 37, None, None, None, logits)
    assert inception_score_of(side, []) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-9)
    uniform = Side("u", 50, None, None, None, np.zeros((50, 1008)))
    assert inception_score_of(uniform, []) == pytest.approx((1.0, 0.0))
    notes = []
    assert inception_score_of(Side("few", 5, None, None, None, logits[:5]), notes) is None and "splits" in notes[0]


def test_precision_recall_density_coverage_by_loops():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(30, 5)), rng.normal(0.4, 1.2, size=(25, 5))

    def radius(points, i, k):
        return sorted(np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i)[k - 1]

    r3 = [radius(real, i, 3) for i in range(30)]
    r5 = [radius(real, i, 5) for i in range(30)]
    f3 = [radius(fake, j, 3) for j in range(25)]
    d = [[np.linalg.norm(fake[j] - real[i]) for i in range(30)] for j in range(25)]
    expected = {
        "precision": np.mean([any(d[j][i] <= r3[i] for i in range(30)) for j in range(25)]),
        "recall": np.mean([any(d[j][i] <= f3[j] for j in range(25)) for i in range(30)]),
        "density": sum(d[j][i] < r5[i] for i in range(30) for j in range(25)) / (5 * 25),
        "coverage": np.mean([min(d[j][i] for j in range(25)) < r5[i] for i in range(30)]),
    }
    assert manifold_scores(real, fake) == pytest.approx(expected)
    np.testing.assert_allclose(knn_radii(real, (3,))[3], r3)
    assert 0 < expected["precision"] < 1 and 0 < expected["coverage"] < 1  # the case is not trivial
    same = manifold_scores(real, real)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0


def test_compare_says_what_it_cannot_compute():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    side = lambda x: Side("s", len(x), x.mean(0), np.cov(x, rowvar=False), x, None)
    notes = []
    out = compare(side(a), Side("stats.npz", 0, b.mean(0), np.cov(b, rowvar=False)), notes=notes)
    assert set(out) == {"fid"} and any("biased" in n for n in notes) and any(".npz" in n for n in notes)
    notes = []
    out = compare(side(a), side(b), kid_subsets=2, notes=notes)
    assert set(out) == {"fid", "kid", "kid_std"} and any("subsets of 4" in n for n in notes)
    assert any("more than 5" in n for n in notes)
