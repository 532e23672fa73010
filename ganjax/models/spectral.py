"""Spectral normalization of a layer's weight (Miyato et al. 2018, "Spectral Normalization for
Generative Adversarial Networks").

`SpectralNorm(layer)` runs `layer` with its `kernel` divided by an estimate of the kernel's
largest singular value sigma, so that the layer is (about) 1-Lipschitz. As in the paper and in
PyTorch's `torch.nn.utils.spectral_norm`:

- the kernel is seen as a matrix W of shape (out, in * kh * kw): here the HWIO kernel reshaped
  to (kh * kw * in, out), which is W transposed up to a permutation of its rows, so it has the
  same singular values;
- sigma = u^T W v with left and right singular vector estimates u (out,) and v (kh*kw*in,),
  which one power iteration per forward pass in training mode refines (v <- W^T u / |W^T u|,
  u <- W v / |W v|) and stores; in inference mode the stored u and v are used as they are, so
  the output is deterministic and the variables do not change;
- u and v are constants for autodiff (stop_gradient), so the gradient flows through W only.

u and v live in the non-trainable collection "batch_stats" (the collection flax's own
`nn.SpectralNorm` uses), beside the wrapped layer, under this wrapper's scope: they are model
state like batch-norm statistics (checkpointed, carried through resume and pmap). They are the
same on every device, since each one runs the same deterministic iteration on the same weights.
At initialization u and v are random unit vectors refined by 15 power iterations (as PyTorch's
`torch.nn.utils.parametrizations.spectral_norm`), so that inference before any training step
already divides by a good estimate of sigma.

`module.init` stores the raw kernel as the param (the optimizer updates the raw kernel, as
PyTorch's `weight_orig`); its own output comes from the raw kernel too (ganjax discards it).

Why not flax's `nn.SpectralNorm`: at init it stores the *normalized* kernel as the param (its
`map_variables(init=True)` writes back the transformed view), which changes the scale the
optimizer works at; its inference mode runs a further power iteration (not stored) instead of
using the stored vectors; it stores u but not v. The training-mode computation is the same.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

INIT_ITERATIONS = 15


def _normalize(x, eps):
    """x / max(|x|, eps), as torch.nn.functional.normalize."""
    return x / jnp.maximum(jnp.linalg.norm(x), eps)


def power_iteration(w, u, v, n: int, eps: float = 1e-12):
    """n power iterations on w = W^T (`as_matrix`: a row per input, a column per output) from
    the unit vectors u (one entry per output) and v (one per input); returns the new (u, v)."""
    def iteration(_, uv):
        v = _normalize(w @ uv[0], eps)
        return _normalize(w.T @ v, eps), v

    return lax.fori_loop(0, n, iteration, (u, v), unroll=n == 1)


def as_matrix(kernel):
    """The kernel as a (kh * kw * in, out) matrix: W transposed, rows permuted."""
    return kernel.reshape(-1, kernel.shape[-1]).astype(jnp.float32)


def spectral_norm_estimate(kernel, u, v):
    """sigma = u^T W v, the estimate of the kernel's largest singular value from u and v."""
    return v @ as_matrix(kernel) @ u


class SpectralNorm(nn.Module):
    """`layer` (a Dense or Conv2d, or any module with one `kernel` param of shape
    (..., out)) with its kernel spectrally normalized; biases are left as they are. Call as
    `SpectralNorm(layer)(x, train=...)`."""
    layer: nn.Module
    eps: float = 1e-12

    @nn.compact
    def __call__(self, x, train: bool):
        def normalize(variables):  # {"params": the layer's params}
            params = variables["params"]
            if "kernel" not in params:  # map_variables' first pass at init, before the layer made its params
                return variables
            kernel = params["kernel"]
            w = lax.stop_gradient(as_matrix(kernel))  # the power iteration is not differentiated
            if not self.has_variable("batch_stats", "u"):
                # a random unit u; the first iteration computes v from u alone
                u0 = _normalize(jax.random.normal(self.make_rng("params"), (w.shape[1],)), self.eps)
                u0, v0 = power_iteration(w, u0, jnp.zeros(w.shape[0]), INIT_ITERATIONS, self.eps)
            u_var = self.variable("batch_stats", "u", lambda: u0)
            v_var = self.variable("batch_stats", "v", lambda: v0)
            if self.is_initializing():
                # map_variables stores what this returns at init as the params: keep the raw kernel
                return variables
            u, v = u_var.value, v_var.value
            if train:
                u, v = power_iteration(w, u, v, 1, self.eps)
                u_var.value, v_var.value = u, v
            sigma = spectral_norm_estimate(kernel, u, v)  # differentiated through the kernel only
            return {"params": {**params, "kernel": (kernel / sigma).astype(kernel.dtype)}}

        return nn.map_variables(lambda layer, x: layer(x), "params", trans_in_fn=normalize,
                                init=self.is_initializing())(self.layer, x)


def weight_wrapper(norm: str, train: bool):
    """For a model's `norm` setting: a function layer -> callable that runs the layer with its
    kernel spectrally normalized if norm == "spectral", as it is otherwise."""
    if norm == "spectral":
        # named after the layer: batch_stats/Conv2d_3_spectral/{u, v} beside params/Conv2d_3
        return lambda layer: lambda x: SpectralNorm(layer, name=f"{layer.name}_spectral")(x, train=train)
    return lambda layer: layer
