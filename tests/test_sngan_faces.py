"""The face experiment's tools: synthetic faces are deterministic images the folder loader reads,
and experiments.reproduce.sngan_faces refuses what it cannot run in one line, before training."""

import numpy as np
import pytest

from experiments.reproduce.sngan_faces import _run
from experiments.tools.synthetic_faces import draw_face, write_faces
from ganjax.errors import UserError


def test_synthetic_faces_are_seeded_rgb_and_differ(tmp_path):
    faces = [np.asarray(draw_face(np.random.default_rng(3))) for _ in range(2)]
    assert faces[0].shape == (64, 64, 3) and faces[0].dtype == np.uint8
    np.testing.assert_array_equal(faces[0], faces[1])  # the same seed draws the same face
    rng = np.random.default_rng(0)
    a, b = np.asarray(draw_face(rng)), np.asarray(draw_face(rng))
    assert np.abs(a.astype(int) - b).mean() > 10  # successive faces differ
    write_faces(str(tmp_path / "faces"), 3, seed=0)
    from ganjax.data.folder import load_folder
    array = load_folder(str(tmp_path / "faces"), resolution=64, channels=3, workers=1)
    assert array.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(array[0], np.asarray(draw_face(np.random.default_rng(0))))  # PNG is lossless


@pytest.mark.parametrize("argv, message", [
    (["--rows=nope", "--synthetic=4"], "unknown row 'nope'"),
    (["--rows=sngan"], "give one of --faces=FOLDER and --synthetic=N"),
    (["--rows=sngan", "--synthetic=4"], "no FID Inception weights"),  # conftest points the weights nowhere
])
def test_sngan_faces_refuses_before_training(argv, message, tmp_path):
    with pytest.raises(UserError, match=message):
        _run(argv + [f"--workdir={tmp_path}"])
    assert not any(tmp_path.iterdir())  # nothing trained, no faces written
