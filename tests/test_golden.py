"""Training semantics are pinned: small runs reproduce the results recorded before the refactor
(tests/golden_runs.py), and a checkpoint written by that code (format 1) still resumes to them.

On a machine like the recording one (the same CPU model and vector width, the same jax) the runs
must be bitwise equal. Elsewhere float rounding differs, and Adam turns the rounding noise of
gradients that are exactly zero in theory (conv biases right before a norm) into steps of about
lr: there the losses must agree to 1e-4 and every leaf to 2e-3 (10 steps of lr 1e-4 for the
digits runs)."""

import json
import os
import shutil

import numpy as np
import pytest

from golden_runs import GOLDEN_DIR, LOSS_KEYS, RUNS, losses, machine, run

pytestmark = pytest.mark.slow
FIXTURE = os.path.join(os.path.dirname(__file__), "data", "checkpoint_format1")


with open(os.path.join(GOLDEN_DIR, "machine.json")) as f:
    SAME_MACHINE = json.load(f) == machine()
LOSS_TOL, LEAF_TOL = (dict(rtol=0, atol=0), dict(rtol=0, atol=0)) if SAME_MACHINE else \
    (dict(rtol=1e-4, atol=1e-6), dict(rtol=0, atol=2e-3))


def assert_matches_golden(name: str, records: list[dict], leaves: dict[str, np.ndarray]) -> None:
    with open(os.path.join(GOLDEN_DIR, f"{name}.json")) as f:
        expected = json.load(f)
    got = losses(records)
    assert [r["step"] for r in got] == [r["step"] for r in expected]
    for g, e in zip(got, expected):
        for key in LOSS_KEYS:
            if key in g and key in e:
                np.testing.assert_allclose(g[key], e[key], **LOSS_TOL, err_msg=f"{key} at step {e['step']}")
        assert "loss_D" in g and "loss_G" in g
    recorded = np.load(os.path.join(GOLDEN_DIR, f"{name}.npz"))
    assert sorted(leaves) == sorted(recorded.files)
    for path in recorded.files:
        np.testing.assert_allclose(leaves[path], recorded[path], **LEAF_TOL, err_msg=path)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_run_matches_recorded(name, tmp_path):
    records, leaves = run(name, str(tmp_path / "w"))
    assert_matches_golden(name, records, leaves)


def test_format1_checkpoint_resumes_to_the_recorded_run(tmp_path):
    workdir = tmp_path / "w"
    shutil.copytree(FIXTURE, workdir)  # steps 0-5 of toy-wgan-gp, written by the code before the refactor
    records, leaves = run("toy-wgan-gp", str(workdir))
    assert_matches_golden("toy-wgan-gp", records, leaves)
