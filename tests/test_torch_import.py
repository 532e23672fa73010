"""Loading a generator saved by the homework's PyTorch code (`--from_torch`): same images as PyTorch."""

import os

import numpy as np
import pytest
import torch  # in the test extra: pip install -e ".[test]"

from ganjax.generate import main
from tests.homework_torch import Generator as HomeworkGenerator


@pytest.mark.parametrize("features,channels,blocks,z_dim", [(64, 3, 3, 100), (8, 1, 2, 16)])
def test_from_torch_matches_pytorch(tmp_path, features, channels, blocks, z_dim):
    from ganjax.torch_import import load_torch_generator

    torch.manual_seed(0)
    g = HomeworkGenerator(z_dim, features, 4 * 2 ** (blocks + 1), channels)  # the homework's G, blocks + 1 upsamplings
    with torch.no_grad():  # non-trivial batch-norm state, as after training
        for m in g.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.normal_(1, 0.2); m.bias.normal_(0, 0.2)
                m.running_mean.normal_(0, 0.5); m.running_var.uniform_(0.5, 2)
    g.eval()
    torch.save(g.state_dict(), tmp_path / "G_49.pth")
    z = np.random.default_rng(0).standard_normal((4, z_dim)).astype(np.float32)
    with torch.no_grad():
        expected = g(torch.from_numpy(z)).numpy().transpose(0, 2, 3, 1)
    gen = load_torch_generator(str(tmp_path / "G_49.pth"))
    assert (gen.config.resolution, gen.config.channels, gen.config.features) == (4 * 2 ** (blocks + 1), channels, features)
    np.testing.assert_allclose(np.asarray(gen.from_z(z)), expected, atol=1e-4)
    # and through the command line
    assert main([f"--from_torch={tmp_path / 'G_49.pth'}", "--n=3", f"--out={tmp_path / 'out'}"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["1.jpg", "2.jpg", "3.jpg"]


def test_from_torch_refuses_other_models(tmp_path, capsys):
    torch.save({"conv.weight": torch.zeros(3, 3, 4, 4), "conv.bias": torch.zeros(3)}, tmp_path / "d.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert main([f"--from_torch={tmp_path / 'd.pth'}"]) == 2
    assert "expected the homework's DCGAN generator" in capsys.readouterr().err
    assert main([f"--from_torch={tmp_path / 'junk.pth'}"]) == 2
    assert "is not a PyTorch state dict" in capsys.readouterr().err
