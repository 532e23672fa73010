"""The homework's networks in plain PyTorch (ML2022Spring HW6 sample code), for the parity tests.

Written as the homework writes them: G = Linear(no bias) + BatchNorm1d + ReLU, view (C, 4, 4),
[ConvTranspose2d(k5 s2 p2 op1, no bias) + BatchNorm2d + ReLU] blocks, ConvTranspose2d + Tanh;
D = Conv2d(k4 s2 p1) + LeakyReLU(0.2), [Conv2d + norm + LeakyReLU(0.2)] blocks, Conv2d(k4 s1 p0),
Sigmoid (kept for gan, removed for wgan / wgan-gp as the homework says); both `apply(weights_init)`.
Sized like ganjax's DCGAN: log2(resolution) - 2 resampling layers, widths f * 2^k.

`flax_pairs` maps every torch tensor onto ganjax's flax variables (module names, layouts), in
both directions; the tests import ganjax nothing from here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def weights_init(m):
    """The homework's init, verbatim: only classes named *Conv* and *BatchNorm* are touched; every
    other parameter (Conv2d biases, Linear weights, InstanceNorm affine) keeps PyTorch's default."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def blocks(resolution: int) -> int:
    return int(math.log2(resolution)) - 2


class Generator(nn.Module):
    def __init__(self, z_dim: int, features: int, resolution: int, channels: int):
        super().__init__()
        n = blocks(resolution)
        width = features * 2 ** (n - 1)
        self.l1 = nn.Sequential(nn.Linear(z_dim, width * 4 * 4, bias=False), nn.BatchNorm1d(width * 4 * 4), nn.ReLU())
        self.l2 = nn.Sequential(*[self.dconv_bn_relu(width // 2 ** i, width // 2 ** (i + 1)) for i in range(n - 1)])
        self.l3 = nn.Sequential(nn.ConvTranspose2d(features, channels, kernel_size=5, stride=2, padding=2,
                                                   output_padding=1, bias=False), nn.Tanh())
        self.apply(weights_init)

    @staticmethod
    def dconv_bn_relu(in_dim, out_dim):
        return nn.Sequential(nn.ConvTranspose2d(in_dim, out_dim, kernel_size=5, stride=2, padding=2,
                                                output_padding=1, bias=False), nn.BatchNorm2d(out_dim), nn.ReLU(True))

    def forward(self, z):
        y = self.l1(z)
        y = y.view(y.size(0), -1, 4, 4)
        return self.l3(self.l2(y))


def norm2d(kind: str, c: int) -> nn.Module:
    # instance: affine=True, since ganjax's flax InstanceNorm has a learned scale and bias
    # (PyTorch's default InstanceNorm2d has affine=False: no parameters at all).
    return nn.BatchNorm2d(c) if kind == "batch" else nn.InstanceNorm2d(c, affine=True)


class Discriminator(nn.Module):
    def __init__(self, channels: int, features: int, resolution: int, norm: str = "batch", sigmoid: bool = True):
        super().__init__()
        n = blocks(resolution)
        layers = [nn.Conv2d(channels, features, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for i in range(n - 1):
            w = features * 2 ** i
            layers.append(nn.Sequential(nn.Conv2d(w, 2 * w, 4, 2, 1), norm2d(norm, 2 * w), nn.LeakyReLU(0.2)))
        layers.append(nn.Conv2d(features * 2 ** (n - 1), 1, kernel_size=4, stride=1, padding=0))
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.l1 = nn.Sequential(*layers)
        self.apply(weights_init)

    def forward(self, x):
        return self.l1(x).view(-1)


# --- torch <-> flax: module names (flax numbers each module type in call order) and layouts ---

_FLAX_NAME = {nn.Linear: "Dense", nn.ConvTranspose2d: "ConvTranspose2d", nn.Conv2d: "Conv2d",
              nn.BatchNorm1d: "BatchNorm", nn.BatchNorm2d: "BatchNorm", nn.InstanceNorm2d: "InstanceNorm"}
# torch layout -> flax layout (numpy axes), per (module type, torch attribute)
_TO_FLAX = {
    (nn.Linear, "weight"): (1, 0),  # (out, in) -> (in, out)
    (nn.ConvTranspose2d, "weight"): (2, 3, 0, 1),  # (in, out, kh, kw) -> (kh, kw, in, out), no flip
    (nn.Conv2d, "weight"): (2, 3, 1, 0),  # (out, in, kh, kw) -> (kh, kw, in, out)
}
_FLAX_PARAM = {"weight": "kernel", "bias": "bias"}
_NORM_PARAM = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def flax_pairs(net: nn.Module):
    """[(collection, flax module name, flax leaf name, torch module, torch attribute, axes)] for
    every parameter and running statistic of `net`, in module order. collection is "params" or
    "batch_stats"; axes permute the torch tensor into flax's layout (None: same layout)."""
    counts, out = {}, []
    for m in net.modules():
        kind = _FLAX_NAME.get(type(m))
        if kind is None:
            continue
        name = f"{kind}_{counts.get(kind, 0)}"
        counts[kind] = counts.get(kind, 0) + 1
        is_norm = kind in ("BatchNorm", "InstanceNorm")
        for attr, _ in m.named_parameters(recurse=False):
            leaf = _NORM_PARAM[attr] if is_norm else _FLAX_PARAM[attr]
            out.append(("params", name, leaf, m, attr, _TO_FLAX.get((type(m), attr))))
        if kind == "BatchNorm":
            for attr in ("running_mean", "running_var"):
                out.append(("batch_stats", name, _NORM_PARAM[attr], m, attr, None))
    return out


def to_flax(tensor: torch.Tensor, axes) -> np.ndarray:
    a = tensor.detach().cpu().numpy()
    return a.transpose(axes) if axes else a


def to_torch(array, axes) -> torch.Tensor:
    a = np.asarray(array, np.float32)
    return torch.from_numpy(np.array(a.transpose(np.argsort(axes)) if axes else a))
