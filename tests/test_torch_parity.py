"""ganjax's train step against the homework's PyTorch loop (ML2022Spring HW6), step by step.

The PyTorch side is written here as the homework writes it: per step, a D update on D(real) and
D(G(z).detach()) (two forward passes, everything in train mode), then the weight clamp for wgan;
G updated with a fresh z when step % n_critic == 0; wgan-gp's penalty on interpolates through
autograd.grad(create_graph=True). Both sides start from the same weights (ganjax's initial
parameters copied into the torch modules), see the same batches, and draw the same z and eps
(`mirrored_draws`). After every step, losses, parameters, batch-norm running statistics and
optimizer moments must agree to float32 tolerance.

One known difference is asserted, not hidden: PyTorch's BatchNorm updates running_var with the
UNBIASED batch variance (times n/(n-1), n = values per channel), flax with the biased one.
"""

import functools

import jax
import numpy as np
import optax
import pytest
import torch
from torch import nn

from ganjax.data import decode
from ganjax.steps import train_step
from tests import homework_torch as hw
from tests.conftest import small_config

STEPS = 5
# Scale-aware float32 tolerance: |a - b| <= RTOL * (|b| + max|b| of the tensor) (+ atol).
# 5e-4: on a 2-core AVX2 EPYC the Adam moments differ from torch's by up to 3e-4 of their scale
# after a step through batch norm (XLA's and oneDNN's float32 reduction orders); 1e-4 held on the
# AVX-512 Xeon. A semantic difference (biased running_var, another momentum) shows at ~1e-2.
RTOL = 5e-4
# Parameters are compared by their change since init, |d_ganjax - d_torch| <= RTOL_UPDATE *
# (|d_torch| + max|d_torch|) + a few ulp of the value + `ill_conditioned` below.
RTOL_UPDATE = 2e-3
# Float32 gradients carry an absolute rounding noise of ~1e-6 of the layer's largest gradient
# (cancelling sums; measured 2.6e-6). Adam and RMSprop divide each gradient by its own RMS, so an
# element whose RMS gradient is that small (~1e-7 against 5e-3) gets an update that differs by
# a visible fraction between the frameworks (measured 8e-7 of a 1e-4 step) although the moments
# agree to 1e-4 of their scale. GRAD_NOISE bounds that noise, relative to the layer's max RMS.
GRAD_NOISE = 2e-5
LOSS_ATOL = 2e-5  # losses are differences of means of logits (wgan): rounding of the terms


# --- the one place that knows ganjax's state layout (renames land here) ---

def ganjax_run(config):
    """(jitted train_step, initial state) through ganjax's public-ish builders."""
    from ganjax.state import create_state, make_spec

    spec = make_spec(config)
    return jax.jit(functools.partial(train_step, spec)), create_state(spec, config.seed)


def net_arrays(net):
    """(params, batch_stats, opt_state) of one network of ganjax's GANState."""
    return net.params, net.model_state.get("batch_stats", {}), net.opt_state


def step_losses(metrics):
    """(loss_D, loss_G (NaN without a G update), gp or None) from train_step's metrics."""
    d, g = metrics["D"], metrics["G"]
    return float(d["loss_D"]), float(g["loss_G"]), (float(d["gp"]) if "gp" in d else None)


def mirrored_draws(key, batch: int, z_dim: int, g_update: bool):
    """The random draws of one ganjax train_step, mirrored from ganjax.steps:
    d_step:  key, z_key, eps_key = split(state.key, 3)
             z   = normal(z_key, (batch, z_dim))               the D step's fake batch
             eps = uniform(eps_key, (batch, 1, 1, 1))          the penalty's interpolation weights
                                                               (drawn for every loss, used by wgan-gp)
    g_step (only when step % n_critic == 0):  key, z_key = split(key); z = normal(z_key, (batch, z_dim))
    Returns (next state.key, d_z, eps, g_z or None); the test checks next key == ganjax's."""
    key, z_key, eps_key = jax.random.split(key, 3)
    d_z = jax.random.normal(z_key, (batch, z_dim), np.float32)
    eps = jax.random.uniform(eps_key, (batch, 1, 1, 1), np.float32)
    g_z = None
    if g_update:
        key, z_key = jax.random.split(key)
        g_z = jax.random.normal(z_key, (batch, z_dim), np.float32)
    return key, *(None if a is None else torch.from_numpy(np.array(a)) for a in (d_z, eps, g_z))


# --- the homework's loop in PyTorch ---

def torch_optimizer(config, params, lr):
    if config.optimizer == "adam":  # gan and wgan-gp
        return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2), eps=1e-8)
    return torch.optim.RMSprop(params, lr=lr, alpha=config.rmsprop_decay, eps=1e-8)  # wgan


def gradient_penalty(D, real, fake, eps):
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grads, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return ((grads.view(grads.size(0), -1).norm(2, dim=1) - 1) ** 2).mean()


def torch_step(config, G, D, opt_G, opt_D, real, d_z, eps, g_z, literal_wgan_g=False):
    """One step of the homework's loop; returns (loss_D, loss_G or NaN, gp or None).
    literal_wgan_g: the G loss as the homework's note writes it for (W)GAN,
    `f_logit = D(f_imgs); loss_G = -torch.mean(D(f_imgs))`, i.e. two D forwards."""
    bs = real.size(0)
    criterion = nn.BCELoss()
    # Train D
    f_imgs = G(d_z)
    r_logit = D(real.detach())
    f_logit = D(f_imgs.detach())
    gp = None
    if config.loss == "gan":
        loss_D = (criterion(r_logit, torch.ones(bs)) + criterion(f_logit, torch.zeros(bs))) / 2
    else:
        loss_D = -torch.mean(r_logit) + torch.mean(f_logit)
        if config.loss == "wgan-gp":
            gp = gradient_penalty(D, real, f_imgs.detach(), eps)
            loss_D = loss_D + config.gp_weight * gp
    D.zero_grad()
    loss_D.backward()
    opt_D.step()
    if config.loss == "wgan":
        for p in D.parameters():
            p.data.clamp_(-config.clip_value, config.clip_value)
    # Train G
    loss_G = torch.tensor(float("nan"))
    if g_z is not None:
        f_imgs = G(g_z)
        f_logit = D(f_imgs)
        if config.loss == "gan":
            loss_G = criterion(f_logit, torch.ones(bs))
        else:
            loss_G = -torch.mean(D(f_imgs) if literal_wgan_g else f_logit)
        G.zero_grad()
        loss_G.backward()
        opt_G.step()
    return loss_D.item(), loss_G.item(), None if gp is None else gp.item()


def torch_nets(config, g_params, d_params, g_stats, d_stats):
    """The homework's G and D, with ganjax's initial variables copied in."""
    torch.manual_seed(0)
    G = hw.Generator(config.z_dim, config.features, config.resolution, config.channels)
    D = hw.Discriminator(config.channels, config.features, config.resolution, config.d_norm,
                         sigmoid=config.loss == "gan")
    for net, params, stats in ((G, g_params, g_stats), (D, d_params, d_stats)):
        with torch.no_grad():
            for coll, mod, leaf, m, attr, axes in hw.flax_pairs(net):
                src = (params if coll == "params" else stats)[mod][leaf]
                getattr(m, attr).copy_(hw.to_torch(src, axes))
    G.train(), D.train()
    return G, D


# --- comparison ---

def assert_close(what, got, want, rtol=RTOL, atol=0.0):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = np.abs(want).max() if want.size else 0.0
    err = np.abs(got - want) - rtol * (np.abs(want) + scale)
    assert (err <= atol + 1e-12).all(), f"{what}: max |ganjax - torch| {np.abs(got - want).max():.3g}, max |torch| {scale:.3g}"


def dead_biases(torch_net) -> dict:
    """{flax conv name: flax norm name} for the conv biases directly followed by a batch or
    instance norm (D's inner blocks): the norm subtracts every per-channel constant, so their
    gradient is exactly zero in exact arithmetic and only rounding noise (~1e-5 of the kernel's)
    in float32. Adam and RMSprop normalize that noise into steps of about lr with random signs,
    differently in the two frameworks, so these biases (and the running_mean of the batch norm
    after them, which averages conv outputs that include the bias) cannot agree to float32
    tolerance. They never change a loss or another parameter; `compare_net` bounds them instead."""
    mods = []
    for coll, mod, leaf, m, attr, axes in hw.flax_pairs(torch_net):
        if not mods or mods[-1][0] != mod:
            mods.append((mod, m))
    return {a: b for (a, ma), (b, mb) in zip(mods, mods[1:])
            if isinstance(ma, nn.Conv2d) and ma.bias is not None and isinstance(mb, (nn.BatchNorm2d, nn.InstanceNorm2d))}


def ill_conditioned(opt, p, axes, allowance):
    """Per element, how far float32 gradient noise can have moved the parameter through the
    optimizer's normalization, summed over the updates so far (kept in `allowance`, a dict this
    test owns): per update, max step * min(2, noise / (RMS + eps)), noise = GRAD_NOISE * the
    layer's largest RMS gradient (torch's second moment, bias-corrected); max step = lr for Adam,
    lr / sqrt(1 - alpha) for RMSprop (its first step). Negligible (< 1e-3 of a step) for elements
    with an RMS gradient above 2% of the layer's largest."""
    state, group = opt.state[p], opt.param_groups[0]
    t = int(state["step"])
    if "exp_avg_sq" in state:
        v, decay, step = state["exp_avg_sq"], group["betas"][1], group["lr"]
    else:
        v, decay, step = state["square_avg"], group["alpha"], group["lr"] / np.sqrt(1 - group["alpha"])
    rms = np.sqrt(hw.to_flax(v, axes).astype(np.float64) / (1 - decay ** t))
    last, total = allowance.get(id(p), (0, 0.0))
    total = total + (t - last) * step * np.minimum(2.0, GRAD_NOISE * rms.max() / (rms + group["eps"]))
    allowance[id(p)] = (t, total)
    return total


def compare_net(tag, torch_net, torch_opt, jax_net, init, bn_sizes, dead_gap, checked_factor):
    """Every variable of one network, ganjax against torch. init: {(module, leaf): initial
    value}; dead_gap: this network's record across steps, updated here: {norm name: per-channel
    max so far of |ganjax - torch| of the dead bias feeding it, "allowance": ill_conditioned's}."""
    params, stats, opt_state = net_arrays(jax_net)
    adam = optax.tree_utils.tree_get(opt_state, "mu") is not None
    moments = {"exp_avg": optax.tree_utils.tree_get(opt_state, "mu"),
               "exp_avg_sq": optax.tree_utils.tree_get(opt_state, "nu")} if adam else \
              {"square_avg": optax.tree_utils.tree_get(opt_state, "nu")}
    dead = dead_biases(torch_net)
    seen = set()
    for coll, mod, leaf, m, attr, axes in hw.flax_pairs(torch_net):
        what = f"{tag} {mod}.{leaf}"
        seen.add((coll, mod, leaf))
        t = hw.to_flax(getattr(m, attr), axes)
        if coll == "params" and mod in dead and leaf == "bias":
            # Dead bias (see dead_biases): its gradient is noise on both sides (moments within 3e-4
            # (first) / 9e-8 (second) of the kernel's; measured ~3e-5), and each optimizer step moves it
            # by at most ~16 lr (Adam: |m_hat|/sqrt(v_hat) <= (1-b1)/sqrt(1-b2) = 15.8 for betas
            # (0.5, 0.999); RMSprop: <= 1/sqrt(1-alpha) = 10).
            p = getattr(m, attr)
            for name, tree in moments.items():
                power = 2 if name != "exp_avg" else 1
                kernel = np.abs(np.asarray(tree[mod]["kernel"])).max()
                for side, value in (("ganjax", tree[mod][leaf]), ("torch", torch_opt.state[p][name].numpy())):
                    assert np.abs(np.asarray(value)).max() <= 3e-4 ** power * kernel, (what, name, side)
            gap = np.abs(np.asarray(params[mod][leaf]) - t)
            updates = int(torch_opt.state[p]["step"])
            assert (gap <= 2 * updates * 16 * torch_opt.defaults["lr"]).all(), (what, gap.max())
            dead_gap[dead[mod]] = np.maximum(dead_gap.get(dead[mod], 0.0), gap)
            continue
        if coll == "params":
            p0 = init[(mod, leaf)]
            p = getattr(m, attr)
            atol = 4 * np.spacing(np.float32(np.abs(t).max())) + ill_conditioned(torch_opt, p, axes, dead_gap.setdefault("allowance", {}))
            assert_close(what + " (change since init)", np.asarray(params[mod][leaf], np.float64) - p0, t - p0,
                         RTOL_UPDATE, atol=atol)
            for name, tree in moments.items():
                assert_close(f"{what} {name}", tree[mod][leaf], hw.to_flax(torch_opt.state[p][name], axes))
            if adam:
                assert int(optax.tree_utils.tree_get(opt_state, "count")) == int(torch_opt.state[p]["step"])
        elif leaf == "mean":
            # running_mean averages conv outputs, dead bias included: the gap is at most the
            # largest gap of that bias so far (the momentum weights sum to <= 1).
            got = np.asarray(stats[mod][leaf])
            gap = dead_gap.get(mod, 0.0)
            assert (np.abs(got - t) <= gap + RTOL * (np.abs(t) + np.abs(t).max())).all(), (what, np.abs(got - t).max())
        else:
            # KNOWN DIFFERENCE (documented, asserted): running_var <- (1 - m) * running_var + m * v.
            # PyTorch takes v = the UNBIASED batch variance, var * n / (n - 1) with n values per
            # channel (batch for BatchNorm1d, batch * H * W for BatchNorm2d); flax the biased var.
            # From running_var = 1 at init, after T updates (T = num_batches_tracked, momentum 0.1):
            #     running_var = 0.9**T + c * sum_k 0.1 * 0.9**(T-k) * var_k,  c = n/(n-1) (torch), 1 (flax)
            # so (torch - 0.9**T) == n/(n-1) * (flax - 0.9**T) exactly, when both saw the same batches.
            # (A bias before the norm does not change the variance.)
            # Stored in float32 near 0.9**T, running_var resolves only ~1 ulp of its value: D's
            # conv outputs have batch variances ~1e-5 here, so there the factor (1 + 1/127) is
            # below the resolution; in G (BatchNorm1d: n = 8, factor 8/7) it is far above it,
            # and there a plain comparison must fail, so the test sees the difference.
            n, T = bn_sizes[mod], int(m.num_batches_tracked)
            decay = 0.9 ** T
            flax_var = np.asarray(stats[mod][leaf], np.float64)
            ulps = (T + 2) * np.spacing(np.float32(np.abs(t).max()))
            assert_close(what + " (unbiased n/(n-1) factor)", n / (n - 1) * (flax_var - decay), t - decay, atol=ulps)
            if (np.abs(flax_var - decay) / (n - 1)).max() > 20 * (ulps + RTOL * np.abs(t - decay).max()):
                assert np.abs(flax_var - t).max() > 10 * ulps, f"{what}: the n/(n-1) difference vanished"
                checked_factor.add(f"{tag.split()[-1]} {mod}")
    flat = {(c, k[0].key, k[1].key) for c, tree in (("params", params), ("batch_stats", stats))
            for k, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}
    assert flat == seen, f"{tag}: ganjax variables without a torch counterpart: {flat - seen}"


def bn_sizes(config, torch_net):
    """{flax BatchNorm module: values per channel in one training forward pass (the n of n/(n-1))}."""
    batch_norms = [(mod, m) for coll, mod, leaf, m, attr, axes in hw.flax_pairs(torch_net)
                   if coll == "batch_stats" and leaf == "mean"]
    sizes, side = {}, 4 if isinstance(torch_net, hw.Generator) else config.resolution // 2
    for mod, m in batch_norms:
        if isinstance(m, nn.BatchNorm1d):  # G's first norm, on the Linear's output
            sizes[mod] = config.batch_size
            continue
        side = side * 2 if isinstance(torch_net, hw.Generator) else side // 2  # G doubles the side, D halves it
        sizes[mod] = config.batch_size * side * side
    return sizes


CASES = [  # (loss, D's norm, n_critic); wgan-gp refuses batch norm in D. Each loss once, each norm
    # and n_critic 1 / 5 at least once (gan and wgan with instance norm added 55 s and no new path)
    ("gan", "batch", 1),
    ("wgan", "batch", 5),
    ("wgan-gp", "instance", 1),
    ("wgan-gp", "instance", 5),
]


@pytest.mark.parametrize("loss,norm,n_critic", CASES)
def test_train_step_matches_homework_pytorch_loop(loss, norm, n_critic):
    torch.set_num_threads(1)
    config = small_config(resolution=16, loss=loss, d_norm=norm, n_critic=n_critic, lr=1e-4)  # the homework's
    assert (config.channels, config.features, config.z_dim, config.batch_size) == (1, 8, 8, 8)
    step, state = ganjax_run(config)
    g_params, g_stats, _ = net_arrays(state.g)
    d_params, d_stats, _ = net_arrays(state.d)
    G, D = torch_nets(config, g_params, d_params, g_stats, d_stats)
    opt_G, opt_D = torch_optimizer(config, G.parameters(), config.lr_g), torch_optimizer(config, D.parameters(), config.lr_d)
    g_sizes, d_sizes = bn_sizes(config, G), bn_sizes(config, D)
    g_init, d_init = ({(mod, leaf): hw.to_flax(getattr(m, attr), axes).astype(np.float64)
                       for coll, mod, leaf, m, attr, axes in hw.flax_pairs(net) if coll == "params"} for net in (G, D))

    # digits-like uint8 images, decoded as ganjax decodes them (x / 127.5 - 1), the same floats on both sides
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (STEPS + 1, config.batch_size, 16, 16, 1), dtype=np.uint8)
    steps = STEPS if n_critic == 1 else STEPS + 1  # n_critic 5: G updates at steps 0 and 5
    key, dead_gap, checked_factor = state.key, {"G": {}, "D": {}}, set()
    for i in range(steps):
        real = np.asarray(decode(images[i % len(images)]))
        # the homework's ToTensor + Normalize(0.5, 0.5) gives the same values up to float rounding
        np.testing.assert_allclose((images[i % len(images)] / 255.0 - 0.5) / 0.5, real, atol=1e-6)
        g_update = i % n_critic == 0
        key, d_z, eps, g_z = mirrored_draws(key, config.batch_size, config.z_dim, g_update)

        state, metrics = step(state, real)
        t_loss_d, t_loss_g, t_gp = torch_step(config, G, D, opt_G, opt_D,
                                               torch.from_numpy(real.transpose(0, 3, 1, 2).copy()), d_z, eps, g_z)

        assert np.array_equal(np.asarray(key), np.asarray(state.key)), \
            f"step {i}: mirrored_draws no longer mirrors ganjax.steps' key splitting"
        loss_d, loss_g, gp = step_losses(metrics)
        assert_close(f"step {i} loss_D", loss_d, t_loss_d, atol=LOSS_ATOL)
        if g_update:
            assert_close(f"step {i} loss_G", loss_g, t_loss_g, atol=LOSS_ATOL)
        else:
            assert np.isnan(loss_g)
        if loss == "wgan-gp":
            assert_close(f"step {i} gp", gp, t_gp, atol=LOSS_ATOL)
        compare_net(f"step {i} D", D, opt_D, state.d, d_init, d_sizes, dead_gap["D"], checked_factor)
        compare_net(f"step {i} G", G, opt_G, state.g, g_init, g_sizes, dead_gap["G"], checked_factor)
    assert int(state.step) == steps
    assert "G BatchNorm_0" in checked_factor  # the n/(n-1) difference was visible and asserted


def test_homework_literal_wgan_g_loss_only_moves_d_running_stats():
    """The homework's note writes the (W)GAN G loss as `-torch.mean(self.D(f_imgs))` after
    `f_logit = self.D(f_imgs)`: a second D forward in train mode. It changes nothing but D's
    batch-norm running statistics (one extra momentum update per G step); D always trains in
    train mode, so the training trajectory is the same. ganjax forwards D once."""
    torch.set_num_threads(1)
    config = small_config(resolution=16, loss="wgan", d_norm="batch", lr=1e-4)
    nets = []
    for literal in (False, True):
        torch.manual_seed(0)
        G = hw.Generator(config.z_dim, config.features, config.resolution, config.channels)
        D = hw.Discriminator(config.channels, config.features, config.resolution, "batch", sigmoid=False)
        opt_G, opt_D = torch_optimizer(config, G.parameters(), 1e-4), torch_optimizer(config, D.parameters(), 1e-4)
        gen = torch.Generator().manual_seed(1)
        for _ in range(3):
            real = torch.rand(8, 1, 16, 16, generator=gen) * 2 - 1
            d_z, g_z = torch.randn(8, 8, generator=gen), torch.randn(8, 8, generator=gen)
            torch_step(config, G, D, opt_G, opt_D, real, d_z, None, g_z, literal_wgan_g=literal)
        nets.append((G, D))
    (G0, D0), (G1, D1) = nets
    for a, b in zip(list(G0.parameters()) + list(D0.parameters()), list(G1.parameters()) + list(D1.parameters())):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    bn0, bn1 = D0.l1[2][1], D1.l1[2][1]
    assert int(bn1.num_batches_tracked) == int(bn0.num_batches_tracked) + 3  # one extra update per G step
    assert not torch.allclose(bn0.running_mean, bn1.running_mean)
