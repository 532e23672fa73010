"""Load a generator saved by the homework's PyTorch code (`torch.save(G.state_dict(), "G_49.pth")`).

The homework's G is Linear(no bias) + BatchNorm1d, then ConvTranspose2d(no bias) + BatchNorm2d
blocks and a last ConvTranspose2d (ML2022Spring HW6 sample code). Its state dict lists those modules in order;
they map one to one, in the same order, onto ganjax's `DCGANGenerator`:

    Linear.weight (out, in)                  -> Dense_k.kernel (in, out)
    ConvTranspose2d.weight (in, out, kh, kw) -> ConvTranspose2d_k.kernel (kh, kw, in, out)
    BatchNorm weight / bias                  -> BatchNorm_k scale / bias (params)
    BatchNorm running_mean / running_var     -> BatchNorm_k mean / var (batch_stats)

The Linear's output features are ordered (C, 4, 4) in both, so BatchNorm1d maps without a
permutation. The architecture (z_dim, width, channels, resolution) is read off the shapes.
torch is an optional dependency, imported only here.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ganjax.config import Config, resolve
from ganjax.errors import UserError


def read_state_dict(path: str) -> "OrderedDict[str, np.ndarray]":
    """The tensors of a .pth state dict as numpy arrays, in their saved order."""
    try:
        import torch
    except ImportError:
        raise UserError("--from_torch needs PyTorch: pip install torch (a CPU build is enough)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"--from_torch: no such file {path}") from None
    except Exception as e:
        raise UserError(f"--from_torch: {path} is not a PyTorch state dict ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160] if str(e) else ''}); save one with "
                        f"torch.save(G.state_dict(), path)") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise UserError(f"--from_torch: {path} does not hold a state dict of tensors")
    return OrderedDict((k.removeprefix("module."), v.detach().cpu().numpy()) for k, v in obj.items())


def _modules(state: dict) -> list[tuple[str, dict]]:
    """[(module prefix, {param name: array})] in saved order; num_batches_tracked is dropped."""
    modules: "OrderedDict[str, dict]" = OrderedDict()
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        if name != "num_batches_tracked":
            modules.setdefault(prefix, {})[name] = value
    return list(modules.items())


def convert_generator(state: dict) -> tuple[Config, dict]:
    """(config of the matching DCGANGenerator, flax variables {'params', 'batch_stats'})."""
    params, stats = {}, {}
    counts = {"Dense": 0, "ConvTranspose2d": 0, "BatchNorm": 0}
    linear = convs = None
    for prefix, p in _modules(state):
        if "running_mean" in p:
            name = f"BatchNorm_{counts['BatchNorm']}"
            params[name] = {"scale": p["weight"], "bias": p["bias"]}
            stats[name] = {"mean": p["running_mean"], "var": p["running_var"]}
            counts["BatchNorm"] += 1
        elif p.get("weight") is not None and p["weight"].ndim == 2 and "bias" not in p:
            params[f"Dense_{counts['Dense']}"] = {"kernel": p["weight"].T}
            linear = p["weight"]
            counts["Dense"] += 1
        elif p.get("weight") is not None and p["weight"].ndim == 4 and "bias" not in p:
            params[f"ConvTranspose2d_{counts['ConvTranspose2d']}"] = {"kernel": p["weight"].transpose(2, 3, 0, 1)}
            convs = (convs or []) + [p["weight"]]
            counts["ConvTranspose2d"] += 1
        else:
            raise UserError(f"--from_torch: unexpected module {prefix!r} with {sorted(p)}; expected the "
                            f"homework's DCGAN generator (Linear, BatchNorm, ConvTranspose2d without bias)")
    if linear is None or not convs or counts["Dense"] != 1 or counts["BatchNorm"] != len(convs):
        raise UserError(f"--from_torch: found {counts['Dense']} Linear, {counts['BatchNorm']} BatchNorm and "
                        f"{counts['ConvTranspose2d']} ConvTranspose2d layers; the homework's generator has 1 "
                        f"Linear, then as many BatchNorm as ConvTranspose2d layers")
    config = resolve(Config(arch="dcgan", resolution=4 * 2 ** len(convs), channels=int(convs[-1].shape[1]),
                            features=int(convs[-1].shape[0]), z_dim=int(linear.shape[1]), dataset="digits",
                            ema=0.0, latent_codes=0))  # a homework checkpoint holds one G, no average, no code
    as_f32 = lambda tree: {m: {k: np.asarray(v, np.float32) for k, v in d.items()} for m, d in tree.items()}
    return config, {"params": as_f32(params), "batch_stats": as_f32(stats)}


def check_against_template(variables: dict, template: dict) -> None:
    """UserError naming the first parameter whose shape differs from ganjax's generator."""
    import jax

    got = jax.tree_util.tree_flatten_with_path(variables)[0]
    want = dict(jax.tree_util.tree_flatten_with_path(template)[0])
    if len(got) != len(want):
        raise UserError(f"--from_torch: {len(got)} tensors, ganjax's generator has {len(want)}")
    for path, value in got:
        if path not in want or want[path].shape != value.shape:
            name = jax.tree_util.keystr(path)
            raise UserError(f"--from_torch: {name} has shape {value.shape}, expected "
                            f"{want[path].shape if path in want else 'no such parameter'}")


def load_torch_generator(path: str):
    """A `ganjax.generation.Generator` holding the weights of a homework .pth state dict."""
    from ganjax.generation import Generator, generator_template

    config, variables = convert_generator(read_state_dict(path))
    module, template = generator_template(config)
    check_against_template(variables, template)
    return Generator(config, module, variables)
