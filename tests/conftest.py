import os
import tempfile
import time

# One persistent compilation cache for the whole session, subprocesses included (they inherit the
# environment): many tests compile the same tiny programs. Set before jax is imported.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="ganjax-tests-xla-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
# No test finds the user's FID Inception weights (pytorch-fid's download in the torch hub cache),
# so folder runs train without Inception metrics; the tests that want weights make random ones.
os.environ["GANJAX_INCEPTION_WEIGHTS"] = os.path.join(tempfile.gettempdir(), "ganjax-tests-no-inception-weights.pth")

import pytest

from ganjax.config import Config, resolve


def small_config(**overrides) -> Config:
    """A DCGAN small enough for unit tests: 8x8 digits, width 8, batch 8; constant learning rates
    (a test that stops and resumes a run at another length keeps the same rates; the decay has
    tests/test_lr_decay.py), and no InfoGAN code unless asked for (tests/test_codes.py, and the
    resume and N-device tests of every technique at once)."""
    base = dict(dataset="digits", resolution=8, features=8, z_dim=8, batch_size=8, chunk_size=4, seed=0,
                lr_decay="none", latent_codes=0)
    base.update(overrides)
    return resolve(Config(**base))


@pytest.fixture
def tiny():
    return small_config


def wait_for_training(workdir, process, timeout=120):
    log = os.path.join(workdir, "metrics.jsonl")
    deadline = time.time() + timeout
    while not (os.path.exists(log) and os.path.getsize(log) > 0):
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "training did not start"
        time.sleep(0.1)


_TORCHVISION_OPS = []  # the torch.library namespace defined by `pytorch_fid`, kept alive


@pytest.fixture(scope="session")
def pytorch_fid():
    """pytorch-fid's `inception` and `fid_score` modules (skipped where pytorch-fid is not installed).

    PyPI's torchvision wheel is linked against the CUDA build of torch: with a CPU torch its
    import fails with "operator torchvision::nms does not exist", as it registers fake kernels
    for its compiled ops. Defining those two ops (nms, qnms) with torch.library first lets it
    import; pytorch-fid's Inception uses none of torchvision's compiled ops."""
    import sys

    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_fid")
    try:
        import torchvision  # noqa: F401
    except RuntimeError as e:
        if "torchvision::nms does not exist" not in str(e):
            raise
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        lib = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_OPS.append(lib)
    from pytorch_fid import fid_score, inception

    return inception, fid_score
