"""Evaluation of a run (metrics per dataset, `python -m ganjax.evaluate`) and what a run logs."""

import io
import json
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganjax.config import Config, resolve
from ganjax.data.digits import load_digits
from ganjax.data.toy import make_toy
from ganjax.evaluate import main
from ganjax.evaluation import FeatureFamily, N_DIGITS, family, has_metrics, sample_metrics
from ganjax.summaries import RunLog, plot_curves, read_log
from ganjax.training import train


def test_real_ring_samples_cover_every_mode():
    config = resolve(Config(dataset="toy:ring8"))
    m = sample_metrics(config, make_toy("toy:ring8", 2500, seed=5))
    assert m["modes"] == 8 and m["high_quality"] > 0.98 and m["reverse_kl"] < 0.01
    collapsed = np.tile([[1.0, 0.0]], (2500, 1))
    m = sample_metrics(config, collapsed)
    assert m["modes"] == 1 and m["reverse_kl"] == pytest.approx(np.log(8))


def test_1d_jsd_separates_data_from_a_shifted_copy():
    config = resolve(Config(dataset="toy:1d"))
    good = sample_metrics(config, make_toy("toy:1d", 2500, seed=7))["jsd"]
    bad = sample_metrics(config, make_toy("toy:1d", 2500, seed=7) + 3.0)["jsd"]
    assert good < 0.05 and bad > 0.5


def test_real_digits_score_the_real_vs_real_floor():
    config = resolve(Config())  # digits, 32x32, 1 channel
    images = load_digits(32, 1)
    order = np.random.default_rng(0).permutation(len(images))
    real = images[order[:N_DIGITS]].astype(np.float32) / 127.5 - 1
    m = sample_metrics(config, real, kid_subsets=2)
    assert m["fd"] == pytest.approx(m["fd_real"], rel=1e-6)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    assert sample_metrics(config, noise, kid_subsets=2)["fd"] > 50 * m["fd_real"]


def test_which_runs_have_metrics():
    assert has_metrics(resolve(Config()))
    assert has_metrics(resolve(Config(dataset="toy:grid25")))
    assert not has_metrics(resolve(Config(resolution=64)))
    assert [family(resolve(Config(dataset=d))).name for d in ("toy:ring8", "toy:1d", "digits")] == \
        ["modes", "jsd", "digits"]


def test_a_feature_family_is_an_extractor_and_its_real_images():
    """A new feature-based metric is one FeatureFamily: its reference statistics are computed once
    per dataset (whatever the KID subsets) and scored like the digits'."""
    calls = []
    projection = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)

    def extractor(images):
        calls.append(len(images))
        features = images.reshape(len(images), -1) @ projection
        probs = np.exp(features) / np.exp(features).sum(axis=1, keepdims=True)
        return features, probs

    real = np.random.default_rng(1).uniform(-1, 1, (130, 8, 8, 1)).astype(np.float32)
    test_family = FeatureFamily("test", lambda c: True, 60, extractor, lambda c: real)
    config = resolve(Config(resolution=8))
    fake = np.random.default_rng(2).uniform(-0.5, 1, (60, 8, 8, 1)).astype(np.float32)
    m = test_family.compute(fake, config, 2)
    assert set(m) == {f"{k}{s}" for k in ("fd", "kid", "kid_std", "is", "is_std") for s in ("", "_real")}
    assert test_family.compute(fake, config, 3)["fd"] == m["fd"] > m["fd_real"]
    assert calls == [60, 60, 60, 60]  # the two real sets once, then the fakes of each call


def test_evaluate_cli_writes_eval_json(tmp_path, capsys):
    config = resolve(Config(dataset="toy:ring8", toy_size=100, batch_size=8, mlp_width=16, mlp_depth=2, z_dim=2,
                            steps=4, chunk_size=4, workdir=str(tmp_path)))
    train(config, progress=False)
    assert main([f"--workdir={tmp_path}"]) == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["step"] == 4 and set(result["metrics"]) >= {"modes", "high_quality", "reverse_kl"}
    assert main(["--workdir=/nonexistent"]) == 2
    assert main([f"--workdir={tmp_path}", "--step=3"]) == 2
    assert "no checkpoint at step 3" in capsys.readouterr().err


def read_events(folder, kind: str = "simple_value") -> list:
    """(tag, step, value) of TensorBoard event files, read as TFRecords (length, crc, payload,
    crc) of Event protos: scalars, or with kind="image" the Image summaries."""
    from tensorboardX.proto import event_pb2

    values = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        i = 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + length])
            i += 12 + length + 4
            for v in event.summary.value:
                if v.HasField(kind):
                    values.append((v.tag, event.step, getattr(v, kind)))
    return values


def test_the_tensorboard_writer_loads_without_importing_torch(tmp_path):
    """tensorboardX imports torch whenever it is installed (1.2 s of a run's start); ganjax's
    writer hides it for that import only, so torch still imports afterwards."""
    pytest.importorskip("torch")
    code = ("import sys; from ganjax.summaries import RunLog; RunLog(sys.argv[1], 0).close(); "
            "print('torch' in sys.modules); import torch; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_run_log_writes_json_and_tensorboard_and_truncates_on_resume(tmp_path):
    log = RunLog(str(tmp_path), resume_step=0)
    for step in (10, 20, 30):
        log.write({"step": step, "epoch": 1, "loss_D": step / 10, "loss_G": float("nan"), "modes": 3})
    grid = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(6, 8, 3)
    Image.fromarray(grid).save(tmp_path / "grid.png")
    log.image("samples", str(tmp_path / "grid.png"), 30)
    log.close()
    [(tag, step, image)] = read_events(tmp_path / "tensorboard", "image")
    assert (tag, step, image.height, image.width, image.colorspace) == ("samples", 30, 6, 8, 3)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image.encoded_image_string))), grid)
    events = read_events(tmp_path / "tensorboard")
    assert ("loss/loss_D", 20, 2.0) in events and ("eval/modes", 30, 3.0) in events
    assert not [e for e in events if e[0] == "loss/loss_G"]  # NaN (no G step) is not plotted
    # resumed at step 20: the record of step 30 is dropped
    RunLog(str(tmp_path), resume_step=20).close()
    assert [r["step"] for r in read_log(str(tmp_path / "metrics.jsonl"))] == [10, 20]
    assert plot_curves(str(tmp_path / "metrics.jsonl"), str(tmp_path / "curves.png"))
    assert Image.open(tmp_path / "curves.png").size[0] > 300
