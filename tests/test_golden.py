"""Training semantics are pinned: small runs reproduce the results recorded before the refactor
(tests/golden_runs.py), and a checkpoint written by that code (format 1) still resumes to them.

The recording machine gives bitwise equality; the tolerance only absorbs another CPU's float
rounding (a changed update rule moves these values by far more)."""

import json
import os
import shutil

import numpy as np
import pytest

from golden_runs import GOLDEN_DIR, LOSS_KEYS, RUNS, _QUIET, losses, run

pytestmark = pytest.mark.slow
FIXTURE = os.path.join(os.path.dirname(__file__), "data", "checkpoint_format1")


def assert_matches_golden(name: str, records: list[dict], leaves: dict[str, np.ndarray]) -> None:
    with open(os.path.join(GOLDEN_DIR, f"{name}.json")) as f:
        expected = json.load(f)
    got = losses(records)
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for g, e in zip(got, expected):
        for key in LOSS_KEYS:
            if key in g and key in e:
                np.testing.assert_allclose(g[key], e[key], rtol=1e-5, atol=1e-7, err_msg=f"{key} at step {e['step']}")
        assert "loss_D" in g and "loss_G" in g
    recorded = np.load(os.path.join(GOLDEN_DIR, f"{name}.npz"))
    assert sorted(leaves) == sorted(recorded.files)
    for path in recorded.files:
        np.testing.assert_allclose(leaves[path], recorded[path], rtol=1e-5, atol=1e-7, err_msg=path)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_run_matches_recorded(name, tmp_path):
    records, leaves = run(name, str(tmp_path / "w"))
    assert_matches_golden(name, records, leaves)


def test_format1_checkpoint_resumes_to_the_recorded_run(tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(FIXTURE, workdir)  # steps 0-5 of toy-wgan-gp, written by the code before the refactor
    records, leaves = run("toy-wgan-gp", str(workdir))
    assert_matches_golden("toy-wgan-gp", records, leaves)
