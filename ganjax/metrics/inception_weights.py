"""pytorch-fid's Inception weights for `ganjax.metrics.inception`: where they are, and their Flax form.

No package ships them: pytorch-fid (and torchmetrics, clean-fid's legacy mode) download one public
file, `pt_inception-2015-12-05-6726825d.pth` (FID_WEIGHTS_URL in `pytorch_fid.inception`), into
torch hub's cache. `find_weights` looks, in this order, at `--inception_weights=FILE`,
$GANJAX_INCEPTION_WEIGHTS and `<torch hub>/checkpoints/pt_inception-2015-12-05-6726825d.pth`
(torch hub: $TORCH_HOME/hub, by default ~/.cache/torch/hub, as `torch.hub.get_dir`).

`load_weights` converts the file once into Flax variables, kept in
`~/.cache/ganjax/inception/<sha256 prefix>.msgpack`, so that later runs need no torch. The
conversion reads tensors only (`torch.load(..., weights_only=True)`, which runs no pickled code);
a file whose tensors do not fit the network is a UserError, one whose SHA-256 does not start
with the 8 hex digits of the published name gets one warning and is used. Within a process the
loaded variables are cached per file (path, size, modification time): `load_weights.cache_clear()`.
"""

from __future__ import annotations

import functools
import hashlib
import os
from typing import NamedTuple

import numpy as np

from ganjax.errors import UserError, warn

FILE_NAME = "pt_inception-2015-12-05-6726825d.pth"
PUBLISHED_SHA256_PREFIX = "6726825d"  # pytorch-fid's file name carries the start of its SHA-256
ENV_VAR = "GANJAX_INCEPTION_WEIGHTS"
# Torch (O, I, kh, kw) / (O, I) tensors to Flax (kh, kw, I, O) / (I, O); the others as they are.
_LEAVES = {("params", "kernel"): "weight", ("params", "scale"): "weight", ("params", "bias"): "bias",
           ("batch_stats", "mean"): "running_mean", ("batch_stats", "var"): "running_var"}


class Weights(NamedTuple):
    path: str
    sha256: str
    variables: dict  # {"params": ..., "batch_stats": ...} of FIDInceptionV3


def hub_path() -> str:
    """Where pytorch-fid's download lands: <torch hub dir>/checkpoints/FILE_NAME."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch")
    return os.path.join(torch_home, "hub", "checkpoints", FILE_NAME)


def find_weights(flag: str | None = None) -> tuple[str, str]:
    """(path, how it was chosen): the flag, else $GANJAX_INCEPTION_WEIGHTS, else the torch hub
    cache. The first one given is the one used, whether or not the file is there."""
    if flag:
        return os.path.expanduser(flag), "--inception_weights"
    if os.environ.get(ENV_VAR):
        return os.path.expanduser(os.environ[ENV_VAR]), f"${ENV_VAR}"
    return hub_path(), "the torch hub cache"


def missing_message(path: str, source: str) -> str:
    """The one line that says where the weights go and how to get them."""
    fetch = (f"on a machine with network, `pip install pytorch-fid` and one FID call (python -m pytorch_fid DIR1 "
             f"DIR2) download it to {hub_path()}")
    if path == hub_path():
        return (f"no FID Inception weights at {path}: put pytorch-fid's {FILE_NAME} there, or pass "
                f"--inception_weights=FILE (or set ${ENV_VAR}); {fetch}")
    return f"no FID Inception weights at {path} (from {source}): put pytorch-fid's {FILE_NAME} there; {fetch}"


def weights_problem(flag: str | None = None) -> str | None:
    """Why the weights cannot be loaded (one line), or None when they load."""
    try:
        load_weights(*find_weights(flag))
    except UserError as e:
        return str(e)
    return None


def converted_dir() -> str:
    from ganjax.data.cache import user_cache_dir

    return os.path.join(user_cache_dir(), "inception")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_tensors() -> dict[str, tuple[tuple, tuple, tuple[int, ...] | None]]:
    """torch name -> (path in the Flax variables, torch shape, axes that turn the torch tensor
    into the Flax one (None: as it is)), for every tensor of the FID Inception-v3."""
    from flax import traverse_util

    from ganjax.metrics.inception import variable_shapes

    table = {}
    for path, leaf in traverse_util.flatten_dict(variable_shapes()).items():
        collection, *modules, name = path
        axes = {4: (3, 2, 0, 1), 2: (1, 0)}.get(len(leaf.shape)) if name == "kernel" else None
        shape = tuple(leaf.shape[a] for a in axes) if axes else tuple(leaf.shape)
        inverse = tuple(int(i) for i in np.argsort(axes)) if axes else None
        table[".".join(modules + [_LEAVES[collection, name]])] = (path, shape, inverse)
    return table


def convert_state_dict(state_dict: dict, origin: str) -> dict:
    """Flax variables of FIDInceptionV3 from pytorch-fid's state dict (name -> array, torch
    layout); UserError naming the first tensor that is missing, unexpected or of another shape."""
    from flax import traverse_util

    table = expected_tensors()
    given = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    extra = [k for k in given if k not in table]
    wrong = [k for k in given if k in table and tuple(np.shape(given[k])) != table[k][1]]
    missing = [k for k in table if k not in given]
    if extra or wrong or missing:
        what = (f"has {len(extra)} tensor(s) the FID Inception-v3 does not (first: {extra[0]})" if extra else
                f"has its tensor {wrong[0]} of shape {tuple(np.shape(given[wrong[0]]))}, where the FID "
                f"Inception-v3 needs {table[wrong[0]][1]}" if wrong else
                f"lacks {len(missing)} tensor(s) of the FID Inception-v3 (first: {missing[0]})")
        raise UserError(f"{origin} is not pytorch-fid's {FILE_NAME}: it {what}")
    flat = {}
    for name, (path, _, axes) in table.items():
        value = np.asarray(given[name], np.float32)
        flat[path] = np.ascontiguousarray(value.transpose(axes) if axes else value)
    return traverse_util.unflatten_dict(flat)


def read_torch_file(path: str) -> dict:
    """name -> numpy array of a PyTorch state dict, read with weights_only=True (tensors only)."""
    try:
        import torch
    except ImportError:
        raise UserError(f"{path} is a PyTorch file: converting it once needs torch (pip install torch); the "
                        f"converted copy is then kept in {converted_dir()} and torch is not needed again") from None
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle.UnpicklingError for code or foreign objects, RuntimeError for a bad zip, ...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path} cannot be read as a PyTorch state dict of tensors: {reason}") from None
    if not isinstance(state_dict, dict) or not all(torch.is_tensor(v) for v in state_dict.values()):
        raise UserError(f"{path} is not a state dict of tensors (pytorch-fid's {FILE_NAME} is one)")
    return {k: v.detach().cpu().numpy() for k, v in state_dict.items()}


def _read_converted(path: str) -> dict | None:
    from flax import serialization

    try:
        with open(path, "rb") as f:
            return serialization.msgpack_restore(f.read())
    except (OSError, ValueError):
        return None


def _write_converted(path: str, variables: dict) -> None:
    """Written under a temporary name and renamed, so a killed run never leaves half a file."""
    from flax import serialization

    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(serialization.msgpack_serialize(variables))
        os.replace(tmp, path)
    except OSError as e:
        warn(f"cannot keep the converted Inception weights in {path} ({e.strerror or e}); they are converted "
             f"again next time")
        if os.path.exists(tmp):
            os.remove(tmp)


def _fits(variables: dict) -> bool:
    """Whether `variables` (a converted file read back) have every tensor at its shape."""
    from flax import traverse_util

    from ganjax.metrics.inception import variable_shapes

    try:
        flat = traverse_util.flatten_dict(variables)
    except (AttributeError, TypeError):
        return False
    shapes = traverse_util.flatten_dict(variable_shapes())
    return flat.keys() == shapes.keys() and all(np.shape(flat[k]) == shapes[k].shape for k in shapes)


def load_weights(path: str, source: str = "--inception_weights") -> Weights:
    """The weights file at `path` as Flax variables, converted once (see the module docstring);
    UserError with one line when it is missing or does not fit."""
    if not os.path.isfile(path):
        raise UserError(missing_message(path, source))
    st = os.stat(path)
    return _load(os.path.realpath(path), st.st_size, st.st_mtime_ns)


def _load(path: str, size: int, mtime_ns: int) -> Weights:
    loaded = _load_or_error(path, size, mtime_ns)
    if isinstance(loaded, UserError):
        raise loaded
    return loaded


@functools.lru_cache(maxsize=None)
def _load_or_error(path: str, size: int, mtime_ns: int) -> Weights | UserError:
    """Weights, or the UserError of a file that does not fit (kept too: not read again)."""
    try:
        return _convert_or_read(path)
    except UserError as e:
        return e


def _convert_or_read(path: str) -> Weights:
    try:
        sha = sha256_of(path)
    except OSError as e:
        raise UserError(f"cannot read the Inception weights {path}: {e.strerror or e}") from None
    converted = os.path.join(converted_dir(), f"{sha[:16]}.msgpack")
    variables = _read_converted(converted)
    if variables is None or not _fits(variables):
        variables = convert_state_dict(read_torch_file(path), path)
        _write_converted(converted, variables)
    if not sha.startswith(PUBLISHED_SHA256_PREFIX):
        warn(f"{path} is not the published {FILE_NAME} (its SHA-256 starts {sha[:8]}, not "
             f"{PUBLISHED_SHA256_PREFIX}); using it anyway: its FID is not comparable with published ones")
    return Weights(path, sha, variables)


load_weights.cache_clear = _load_or_error.cache_clear
