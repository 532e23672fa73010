"""PyTorch eager port of the homework's training loop (ML2022Spring HW6), the baseline ganjax is timed against.

Same networks layer for layer as ganjax: the DCGAN G and D of the homework's sample code (4 resampling
blocks at 64x64, 3 at 32x32) and the MLP G and D of ganjax/models/mlp.py for toy data; the same
losses (gan: BCE with logits; wgan: RMSprop by default, every D weight clipped after each D step;
wgan-gp: gradient penalty via torch.autograd.grad(create_graph=True), per-sample norm, instance
norm in D) and the same step as ganjax.steps: a D step (real and fake batch in two forward passes,
G run in train mode without a graph) then a G step (n_critic = 1). Settings come as the field
names of ganjax's resolved `Config`, so a preset means the same on both sides.

Optional dependency (`pip install torch==2.13.0` gives a CPU build). Used by experiments/bench/bench.py;
alone it times one configuration:

    python -m experiments.tools.torch_reference --arch dcgan --resolution 64 --loss wgan-gp --steps 3
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from torch import nn


def _conv_init(m):
    """The homework's weights_init: conv weights N(0, 0.02), batch-norm weight N(1, 0.02), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _norm2d(kind: str, c: int) -> nn.Module:
    # ganjax's instance norm (flax InstanceNorm) has a learned scale and bias: affine=True.
    return {"batch": lambda: nn.BatchNorm2d(c), "instance": lambda: nn.InstanceNorm2d(c, affine=True),
            "none": nn.Identity}[kind]()


def _norm1d(kind: str, c: int) -> nn.Module:
    return {"batch": lambda: nn.BatchNorm1d(c), "layer": lambda: nn.LayerNorm(c), "none": nn.Identity}[kind]()


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim=100, features=64, resolution=64, channels=3):
        super().__init__()
        n = int(math.log2(resolution)) - 2
        w = features * 2 ** (n - 1)
        self.width = w
        self.l1 = nn.Sequential(nn.Linear(z_dim, w * 4 * 4, bias=False), nn.BatchNorm1d(w * 4 * 4), nn.ReLU())
        blocks = []
        for _ in range(n - 1):
            blocks += [nn.ConvTranspose2d(w, w // 2, 5, 2, padding=2, output_padding=1, bias=False),
                       nn.BatchNorm2d(w // 2), nn.ReLU()]
            w //= 2
        blocks += [nn.ConvTranspose2d(w, channels, 5, 2, padding=2, output_padding=1, bias=False), nn.Tanh()]
        self.l2 = nn.Sequential(*blocks)
        self.apply(_conv_init)

    def forward(self, z):
        return self.l2(self.l1(z).view(z.shape[0], self.width, 4, 4))


class DCGANDiscriminator(nn.Module):
    """No final sigmoid: the losses take logits (as ganjax)."""

    def __init__(self, features=64, resolution=64, channels=3, norm="batch"):
        super().__init__()
        n = int(math.log2(resolution)) - 2
        w = features
        layers = [nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2)]
        for _ in range(n - 1):
            layers += [nn.Conv2d(w, 2 * w, 4, 2, 1), _norm2d(norm, 2 * w), nn.LeakyReLU(0.2)]
            w *= 2
        layers += [nn.Conv2d(w, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.apply(_conv_init)

    def forward(self, x):
        return self.net(x).view(-1)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim, data_shape, width=512, depth=3, tanh=False):
        super().__init__()
        self.data_shape = tuple(data_shape)
        layers, d = [], z_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.ReLU()]
            d = width
        layers += [nn.Linear(d, math.prod(data_shape))] + ([nn.Tanh()] if tanh else [])
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z).view((z.shape[0],) + self.data_shape)


class MLPDiscriminator(nn.Module):
    def __init__(self, data_shape, width=512, depth=3, norm="none"):
        super().__init__()
        layers, d = [], math.prod(data_shape)
        for _ in range(depth):
            layers += [nn.Linear(d, width), _norm1d(norm, width), nn.LeakyReLU(0.2)]
            d = width
        layers += [nn.Linear(d, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1)).view(-1)


def _optimizer(params, c: dict, lr: float):
    if c["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(c["beta1"], c["beta2"]), eps=1e-8)
    return torch.optim.RMSprop(params, lr=lr, alpha=c["rmsprop_decay"], eps=1e-8)


def build(c: dict, data_shape: tuple):
    """(G, D, opt_G, opt_D) for a config given as ganjax Config field names; data_shape is one
    sample's shape in ganjax's layout (HWC for images), converted to NCHW here."""
    if c["arch"] == "dcgan":
        g = DCGANGenerator(c["z_dim"], c["features"], c["resolution"], c["channels"])
        d = DCGANDiscriminator(c["features"], c["resolution"], c["channels"], c["d_norm"])
    else:
        g = MLPGenerator(c["z_dim"], data_shape, c["mlp_width"], c["mlp_depth"], tanh=len(data_shape) > 1)
        d = MLPDiscriminator(data_shape, c["mlp_width"], c["mlp_depth"], c["d_norm"])
    return g, d, _optimizer(g.parameters(), c, c["lr_g"]), _optimizer(d.parameters(), c, c["lr_d"])


def gradient_penalty(d, real, fake):
    """E[(||grad D(x_hat)||_2 - 1)^2], x_hat = eps*x + (1-eps)*G(z), eps ~ U[0,1] per sample."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grads, = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
    return ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def train_step(c: dict, g, d, opt_g, opt_d, real):
    """One D step then one G step, as the homework (n_critic = 1)."""
    bce = nn.functional.binary_cross_entropy_with_logits
    b, device = real.shape[0], real.device
    with torch.no_grad():  # the homework detaches G(z); no graph at all is the cheaper equivalent
        fake = g(torch.randn(b, c["z_dim"], device=device))
    r_logit, f_logit = d(real), d(fake)
    if c["loss"] == "gan":
        loss_d = (bce(r_logit, torch.ones_like(r_logit)) + bce(f_logit, torch.zeros_like(f_logit))) / 2
    else:
        loss_d = -r_logit.mean() + f_logit.mean()
        if c["loss"] == "wgan-gp":
            loss_d = loss_d + c["gp_weight"] * gradient_penalty(d, real, fake)
    d.zero_grad()
    loss_d.backward()
    opt_d.step()
    if c["loss"] == "wgan":
        for p in d.parameters():
            p.data.clamp_(-c["clip_value"], c["clip_value"])

    f_logit = d(g(torch.randn(b, c["z_dim"], device=device)))
    loss_g = bce(f_logit, torch.ones_like(f_logit)) if c["loss"] == "gan" else -f_logit.mean()
    g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def random_batch(c: dict, data_shape: tuple, device: str = "cpu"):
    """A real batch of the right shape (NCHW in [-1, 1] for images, N(0, 1) points for toy data)."""
    b = c["batch_size"]
    if len(data_shape) == 3:
        h, w, ch = data_shape
        return torch.rand(b, ch, h, w, device=device) * 2 - 1
    return torch.randn((b,) + tuple(data_shape), device=device)


class Runner:
    """Built once per configuration, so that timing calls can be interleaved with ganjax's.

    device: "cpu" or "cuda". On CUDA, cuDNN picks its fastest algorithms (cudnn.benchmark) and
    float32 matmuls may use TF32 as XLA's do by default, so both sides run the same arithmetic.
    dtype "bfloat16": PyTorch's mixed precision (torch.autocast), weights and gradients float32,
    the counterpart of ganjax's --dtype=bfloat16."""

    def __init__(self, c: dict, data_shape: tuple, seed: int = 0, threads: int | None = None,
                 device: str = "cpu", dtype: str = "float32"):
        torch.set_num_threads(threads or os.cpu_count())
        torch.manual_seed(seed)
        if device == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
        self.c, self.device = c, device
        self.nets = build(c, data_shape)
        for net in self.nets[:2]:
            net.to(device)  # in place: the optimizers keep the same parameters
        self.real = random_batch(c, data_shape, device)
        self.autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

    def run(self, steps: int) -> float:
        """Seconds for `steps` train steps (each ends in .item(), a host sync, as the homework's logging)."""
        tic = time.perf_counter()
        with self.autocast:
            for _ in range(steps):
                train_step(self.c, *self.nets, self.real)
        return time.perf_counter() - tic


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="dcgan", choices=["dcgan", "mlp"])
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--loss", default="gan", choices=["gan", "wgan", "wgan-gp"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    wgan = a.loss == "wgan"
    c = dict(arch=a.arch, loss=a.loss, resolution=a.resolution, channels=3, features=64, z_dim=100 if a.arch == "dcgan" else 2,
             mlp_width=512, mlp_depth=3, d_norm=("instance" if a.loss == "wgan-gp" else "batch") if a.arch == "dcgan" else "none",
             optimizer="rmsprop" if wgan else "adam", lr_g=5e-5 if wgan else 1e-4, lr_d=5e-5 if wgan else 1e-4,
             beta1=0.5, beta2=0.999, rmsprop_decay=0.99, clip_value=0.01, gp_weight=10.0, batch_size=a.batch)
    shape = (a.resolution, a.resolution, 3) if a.arch == "dcgan" else (2,)
    r = Runner(c, shape)
    r.run(1)
    t = r.run(a.steps)
    print(f"{a.arch} {a.resolution} {a.loss} batch {a.batch}: {a.steps / t:.3f} steps/s")


if __name__ == "__main__":
    main()
