"""ganjax's DCGAN initialization against the homework's PyTorch modules + weights_init.

The homework (ML2022Spring HW6) builds its G and D from torch.nn modules and applies
`weights_init`: Conv*/ConvTranspose* weights ~ N(0, 0.02), BatchNorm weight ~ N(1, 0.02), bias 0;
everything else keeps PyTorch's default init: Linear weight U(+-1/sqrt(fan_in)) (kaiming-uniform
with a = sqrt(5)), Conv2d bias U(+-1/sqrt(in_channels * kh * kw)); G has no Linear / ConvTranspose
biases. Here every initial variable of ganjax's DCGAN G and D (params and batch-norm statistics)
is compared, tensor by tensor, with the same tensor of the homework's modules (tests/homework_torch.py),
each drawn many times with fixed seeds:
- a tensor PyTorch initializes to a constant (BatchNorm bias 0, running stats 0 / 1) must be that
  constant exactly;
- otherwise a two-sample Kolmogorov-Smirnov test (p > 1e-6, samples >= 512 values), the mean and
  std within 6 standard errors, and for PyTorch's default uniform inits the exact bound
  1/sqrt(fan_in): no ganjax value beyond it, and its largest value within 10% of it.
A zero-initialized tensor against U(+-b) has KS statistic 1/2, p < 1e-30 at these sizes: these
tests cannot pass by accident, and fixed seeds make them deterministic.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from ganjax.models import build_models
from tests import homework_torch as hw
from tests.conftest import small_config

MIN_SAMPLE = 512
MAX_SAMPLE = 40_000  # per tensor and side; iid values, so the first ones are a fair sample


def ganjax_draws(module, example, draws: int):
    """{(collection, module, leaf): (draws, *shape) array} of `draws` independent inits."""
    keys = jax.random.split(jax.random.PRNGKey(0), draws)
    variables = jax.jit(jax.vmap(lambda k: module.init(k, example, train=False)))(keys)
    return {(coll, path[0].key, path[1].key): np.asarray(v)
            for coll, tree in variables.items()
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def torch_draws(build, draws: int):
    """The same keys for `draws` homework modules (torch.manual_seed(1000 + i)), in flax layout,
    plus each tensor's (module, attribute)."""
    out, modules = {}, {}
    for i in range(draws):
        torch.manual_seed(1000 + i)
        net = build()
        for coll, mod, leaf, m, attr, axes in hw.flax_pairs(net):
            out.setdefault((coll, mod, leaf), []).append(hw.to_flax(getattr(m, attr), axes))
            modules[(coll, mod, leaf)] = (m, attr)
    return {k: np.stack(v) for k, v in out.items()}, modules


def default_uniform_bound(m: nn.Module, attr: str):
    """1/sqrt(fan_in) for the tensors that keep PyTorch's default uniform init in the homework
    (weights_init touches only *Conv* weights and *BatchNorm* affine parameters), else None."""
    if (isinstance(m, nn.Linear) and attr == "weight") or (isinstance(m, nn.Conv2d) and attr == "bias"):
        # Linear weight: kaiming_uniform_(a=sqrt(5)), gain * sqrt(3 / fan_in) = 1/sqrt(fan_in);
        # Conv2d bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * kh * kw.
        return 1 / np.sqrt(nn.init._calculate_fan_in_and_fan_out(m.weight)[0])
    return None


def check_same_distribution(name, ours, theirs, bound):
    ours, theirs = ours.ravel().astype(np.float64), theirs.ravel().astype(np.float64)
    summary = (f"{name}: ganjax mean {ours.mean():.4g} std {ours.std():.4g} range [{ours.min():.4g}, {ours.max():.4g}]; "
               f"pytorch mean {theirs.mean():.4g} std {theirs.std():.4g} range [{theirs.min():.4g}, {theirs.max():.4g}]")
    if theirs.min() == theirs.max():
        assert ours.min() == ours.max() == theirs[0], summary
        return
    assert min(ours.size, theirs.size) >= MIN_SAMPLE, f"{name}: sample too small for the test"
    ours, theirs = ours[:MAX_SAMPLE], theirs[:MAX_SAMPLE]
    ks = stats.ks_2samp(ours, theirs)
    assert ks.pvalue > 1e-6, f"{summary}; KS statistic {ks.statistic:.3f}, p {ks.pvalue:.2g}"
    se = np.sqrt(ours.var() / ours.size + theirs.var() / theirs.size)
    assert abs(ours.mean() - theirs.mean()) < 6 * se, summary
    assert abs(ours.std() / theirs.std() - 1) < 6 * np.sqrt(1 / ours.size + 1 / theirs.size), summary
    if bound is not None:
        assert np.abs(theirs).max() <= bound  # the bound is PyTorch's
        assert np.abs(ours).max() <= bound * (1 + 1e-6), f"{summary}; PyTorch's bound {bound:.4g}"
        assert np.abs(ours).max() >= 0.9 * bound, f"{summary}; PyTorch's bound {bound:.4g}"


def compare_init(module, example, build, draws, names=None):
    ours = ganjax_draws(module, example, draws)
    theirs, modules = torch_draws(build, draws)
    assert set(ours) == set(theirs), (sorted(set(ours) ^ set(theirs)))
    checked = 0
    for key in sorted(theirs):
        if names is not None and key[1] not in names:
            continue
        if np.ptp(theirs[key]) > 0 and theirs[key].size < MIN_SAMPLE:
            continue  # too few values at this size: covered by the small config's many draws
        m, attr = modules[key]
        check_same_distribution(".".join(key), ours[key], theirs[key], default_uniform_bound(m, attr))
        checked += 1
    return checked


# (resolution, features, channels, z_dim, draws): many draws of a small net (every tensor, even
# D's last one-element bias, gets >= 512 values), a few of a wider one (other fan-ins, 3 channels).
CONFIGS = [(16, 8, 1, 8, 512), (32, 16, 3, 100, 16)]


@pytest.mark.parametrize("resolution,features,channels,z_dim,draws", CONFIGS)
def test_generator_init_matches_homework(resolution, features, channels, z_dim, draws):
    torch.set_num_threads(1)
    config = small_config(resolution=resolution, features=features, channels=channels, z_dim=z_dim)
    generator, _ = build_models(config)
    checked = compare_init(generator, jnp.zeros((2, z_dim)), lambda: hw.Generator(z_dim, features, resolution, channels), draws)
    assert checked >= 9


@pytest.mark.parametrize("resolution,features,channels,z_dim,draws", CONFIGS)
def test_discriminator_init_matches_homework(resolution, features, channels, z_dim, draws):
    """Conv weights N(0, 0.02) and Conv2d biases PyTorch's default U(+-1/sqrt(in*4*4)); batch norm
    weight N(1, 0.02), bias 0, running mean 0, var 1."""
    torch.set_num_threads(1)
    config = small_config(resolution=resolution, features=features, channels=channels, z_dim=z_dim, d_norm="batch")
    _, discriminator = build_models(config)
    build = lambda: hw.Discriminator(channels, features, resolution, "batch")
    checked = compare_init(discriminator, jnp.zeros((2, resolution, resolution, channels)), build, draws)
    assert checked >= 8


def test_instance_norm_init_matches_homework():
    """The homework's WGAN-GP note swaps BatchNorm2d for InstanceNorm2d in D. weights_init does not
    touch it (its class name has no 'BatchNorm'), so with affine=True its weight starts at exactly
    1 and its bias at 0 (with PyTorch's default affine=False it has no parameters: scale 1, bias 0
    fixed)."""
    torch.set_num_threads(1)
    config = small_config(resolution=16, loss="wgan-gp", d_norm="instance")
    _, discriminator = build_models(config)
    build = lambda: hw.Discriminator(1, 8, 16, "instance", sigmoid=False)
    assert compare_init(discriminator, jnp.zeros((2, 16, 16, 1)), build, 512, names={"InstanceNorm_0"}) == 2
