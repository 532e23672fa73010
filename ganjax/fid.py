"""Command line: `python -m ganjax.fid PATH [PATH2]`: Inception FID, KID, IS, precision/recall and
density/coverage, with pytorch-fid's network and weights (ganjax.metrics.inception).

    python -m ganjax.fid output/ faces/                   # FID of a folder against another
    python -m ganjax.fid runs/gan-folder-faces folder:faces --resolution=64 --json
    python -m ganjax.fid faces/ --save_stats=faces.npz     # pytorch-fid's statistics (mu, sigma)

Each PATH is one of: a folder of images (searched recursively, the extensions of --dataset=folder:,
read as they are with PIL's convert('RGB'), as pytorch-fid reads them); a .npz of pytorch-fid
statistics (mu, sigma); a run's workdir (--n samples of its latest checkpoint's G, in inference
mode, quantized to uint8 as image files of them would be); or a dataset as --dataset takes it
(digits, folder:PATH, tfds:NAME[:SPLIT]: its cached uint8 images at --resolution, whose statistics
are cached beside them). PATH is the generated side, PATH2 the reference: precision is the share
of PATH's images inside PATH2's manifold.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from typing import Iterator, NamedTuple

import numpy as np

from ganjax.config import Parser
from ganjax.errors import UserError, run_command, warn

N_REFERENCE = 10_000  # real images of a dataset kept as features for KID, precision/recall, density/coverage
STATS_VERSION = 1  # bump when the cached statistics of a dataset change for the same images and weights
SPLITS = 10  # Inception-Score splits (Salimans et al. 2016)
TORCH_FIDELITY_SEED = 2020  # torch-fidelity's rng_seed: its KID subsets and its IS shuffle
KID_SUBSET_SIZE = 1000  # Binkowski et al. 2018, torch-fidelity's kid_subset_size
MIN_FID_SAMPLES = 2048  # below the feature dimension the covariance is singular and FID biased upward
DATASET_PREFIXES = ("folder:", "tfds:")


class Side(NamedTuple):
    """What the metrics need of one set of images (or of a .npz of statistics)."""
    label: str
    count: int
    mu: np.ndarray | None  # None below 2 images
    sigma: np.ndarray | None
    features: np.ndarray | None = None  # pool3 (rows, 2048) for KID, precision/recall, density/coverage
    logits: np.ndarray | None = None  # logits without the fc bias (rows, 1008), for IS


def side_of_outputs(label: str, outputs: dict, rows: np.ndarray | None = None) -> Side:
    """A Side from `inception_outputs`: statistics of every image, features of `rows` (all)."""
    from ganjax.metrics.image import fit_gaussian

    pool3 = outputs["pool3"]
    mu, sigma = fit_gaussian(pool3) if len(pool3) >= 2 else (None, None)
    keep = slice(None) if rows is None else rows
    return Side(label, len(pool3), mu, sigma, pool3[keep], outputs["logits_unbiased"][keep])


# --- the sources a PATH can name ------------------------------------------------------------------

def read_stats(path: str) -> Side:
    """A .npz of pytorch-fid statistics: mu (2048,), sigma (2048, 2048); UserError otherwise."""
    from ganjax.metrics.inception import POOL3_DIM

    try:
        with np.load(path) as f:
            mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
    except KeyError as e:
        raise UserError(f"{path} has no {e} array: pytorch-fid statistics hold mu and sigma") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {path} as a .npz of FID statistics: {str(e).splitlines()[0] or e}") from None
    if mu.shape != (POOL3_DIM,) or sigma.shape != (POOL3_DIM, POOL3_DIM):
        raise UserError(f"{path} holds mu {mu.shape} and sigma {sigma.shape}; pool3 statistics are "
                        f"({POOL3_DIM},) and ({POOL3_DIM}, {POOL3_DIM})")
    return Side(path, 0, mu, sigma)


def folder_images(root: str) -> tuple[Iterator[np.ndarray], int, list]:
    """(uint8 RGB images of every file under root, in sorted order; their count; a list that
    collects the files PIL cannot read, filled as the images are read)."""
    from PIL import Image

    from ganjax.data.folder import EXTENSIONS, list_images

    listing = list_images(root)
    if not listing.files:
        raise UserError(f"{root} holds no images ({', '.join(EXTENSIONS)}, searched recursively)")
    bad: list = list(listing.unreadable)

    def images():
        for name in listing.files:
            try:
                with Image.open(os.path.join(root, name)) as image:
                    yield np.asarray(image.convert("RGB"))
            except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
                bad.append((name, str(e).splitlines()[0] if str(e) else type(e).__name__))
    return images(), len(listing.files), bad


def folder_side(root: str, weights, batch_size: int, listed=None) -> Side:
    """The images of a folder (`listed`: folder_images(root) if already called)."""
    from ganjax.metrics.inception import inception_outputs

    images, count, bad = listed or folder_images(root)
    outputs = inception_outputs(images, weights.variables, batch_size, total=count, progress=True)
    if bad:
        warn(f"skipped {len(bad)} file(s) under {root} that could not be read as images: "
             + ", ".join(name for name, _ in bad[:5]) + (", ..." if len(bad) > 5 else ""))
    if not len(outputs["pool3"]):
        raise UserError(f"none of the {count} image files under {root} could be read")
    return side_of_outputs(root, outputs)


def workdir_side(workdir: str, n: int, seed: int, step: int | None, weights, batch_size: int) -> Side:
    """`n` samples of the run's G (latest checkpoint, or `step`), z drawn from `seed`."""
    import jax

    from ganjax.generation import BATCH, load_generator
    from ganjax.latent import sample_z
    from ganjax.metrics.inception import inception_outputs

    gen = load_generator(workdir, step)
    if gen.kind != "image":
        raise UserError(f"{workdir} is a run on {gen.config.dataset}: the Inception metrics are for images")
    z = np.asarray(sample_z(jax.random.PRNGKey(seed), n, gen.z_dim))
    images = (image for start in range(0, n, BATCH) for image in gen.generate(z[start:start + BATCH]))
    outputs = inception_outputs(images, weights.variables, batch_size, total=n, progress=True)
    return side_of_outputs(f"{workdir} (step {gen.step}, {n} samples)", outputs)


def _reference_stem(config, array) -> tuple[str, dict]:
    """(where the dataset's Inception statistics are cached, what they depend on): beside the
    uint8 cache of a folder: or tfds: dataset, keyed on its manifest's key (the source's
    fingerprint); under the user cache folder for data built in memory (digits)."""
    from ganjax.config import dataset_slug
    from ganjax.data import cache

    filename = getattr(array, "filename", None)
    if filename and str(filename).endswith(".npy"):
        stem = str(filename)[:-4]
        try:
            with open(stem + ".json") as f:
                return stem, {"data": json.load(f)["key"]}
        except (OSError, ValueError, KeyError):
            pass
    folder = config.cache_dir or cache.user_cache_dir()
    stem = os.path.join(folder, f"{dataset_slug(config.dataset)}-{cache.tag(config.resolution, config.channels)}")
    return stem, {"data": {"dataset": config.dataset, "resolution": config.resolution, "channels": config.channels}}


def dataset_reference(config, weights, batch_size: int | None = None, progress: bool = True) -> Side:
    """The reference of the config's dataset (its uint8 images at the run's resolution and
    channels): statistics of every image, features and logits of N_REFERENCE random ones (seed 0).
    Cached in STEM.inception-<weights sha256[:12]>.npz beside the dataset's cache (pytorch-fid
    reads its mu and sigma), keyed on the data and the weights' SHA-256."""
    from ganjax.data import load_dataset
    from ganjax.metrics.inception import inception_outputs

    array = load_dataset(config).array
    stem, key = _reference_stem(config, array)
    key = dict(key, weights=weights.sha256, version=STATS_VERSION)
    path = f"{stem}.inception-{weights.sha256[:12]}.npz"
    label = f"{config.dataset} ({config.resolution}px)"
    try:
        with np.load(path) as f:
            if json.loads(str(f["key"])) == key:
                return Side(label, int(f["count"]), f["mu"], f["sigma"], f["features"], f["logits"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass  # missing or stale: computed again
    outputs = inception_outputs(iter(array), weights.variables, batch_size, total=len(array), progress=progress)
    rows = np.sort(np.random.default_rng(0).permutation(len(array))[:N_REFERENCE])
    side = side_of_outputs(label, outputs, rows)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, mu=side.mu, sigma=side.sigma, features=side.features, logits=side.logits,
                     count=side.count, key=json.dumps(key))
        os.replace(tmp, path)
    except OSError as e:
        warn(f"cannot cache the Inception statistics of {config.dataset} in {path} ({e.strerror or e})")
        if os.path.exists(tmp):
            os.remove(tmp)
    return side


# --- the metrics -----------------------------------------------------------------------------------

def inception_score_of(side: Side, notes: list) -> tuple[float, float] | None:
    """IS (mean, std over 10 splits) of a side's images, as torch-fidelity: the rows shuffled with
    its seed, the softmax of the logits without the fc bias (Salimans et al.'s code)."""
    from ganjax.metrics.image import inception_score, softmax

    if side.logits is None:
        return None
    if len(side.logits) < SPLITS:
        notes.append(f"no IS for {side.label}: {len(side.logits)} images, fewer than its {SPLITS} splits")
        return None
    order = np.random.RandomState(TORCH_FIDELITY_SEED).permutation(len(side.logits))
    return inception_score(softmax(side.logits[order]), SPLITS)


def compare(fake: Side, real: Side, kid_subsets: int = 100, kid_subset_size: int = KID_SUBSET_SIZE,
            notes: list | None = None) -> dict:
    """{"fid", "kid", "kid_std", "precision", "recall", "density", "coverage"} of `fake` against
    `real`, those that their sizes allow; what is missing or biased is said in `notes`.

    FID as pytorch-fid; KID as torch-fidelity (cubic kernel, `kid_subsets` subsets of 1,000 drawn
    with its seed 2020); precision/recall with k = 3 and density/coverage with k = 5."""
    from ganjax.metrics.image import gaussian_frechet_distance, kid, manifold_scores

    notes = [] if notes is None else notes
    out: dict = {}
    if fake.mu is None or real.mu is None:
        notes.append("no FID: it needs at least 2 images per side")
    else:
        small = [s for s in (fake, real) if 0 < s.count < MIN_FID_SAMPLES]
        if small:
            notes.append(f"FID from {min(s.count for s in small)} < {MIN_FID_SAMPLES} samples is biased upward (the "
                         f"covariance is singular below the 2,048 feature dimensions): compare FIDs at equal counts")
        out["fid"] = gaussian_frechet_distance(fake.mu, fake.sigma, real.mu, real.sigma)
    if fake.features is None or real.features is None:
        notes.append("no KID, precision/recall or density/coverage against a .npz: it holds only mu and sigma")
        return out
    n = min(len(fake.features), len(real.features))
    if n >= 2:
        if n < kid_subset_size:
            notes.append(f"KID in subsets of {n}, fewer than {kid_subset_size} images (torch-fidelity refuses this)")
        out["kid"], out["kid_std"] = kid(fake.features, real.features, kid_subsets, kid_subset_size,
                                         np.random.RandomState(TORCH_FIDELITY_SEED))
    else:
        notes.append("no KID: it needs at least 2 images per side")
    if n > 5:
        out.update(manifold_scores(real.features, fake.features, k_pr=3, k_dc=5))
    else:
        notes.append("no precision/recall/density/coverage: they need more than 5 images per side")
    return out


# --- the command ------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None):
    p = Parser(prog="python -m ganjax.fid", description=__doc__.split("\n\n")[0],
               epilog=__doc__.split("\n\n", 2)[2])
    p.add_argument("paths", nargs="+", metavar="PATH", help="One or two: folder, .npz, workdir or dataset.")
    p.add_argument("--save_stats", metavar="OUT.npz",
                   help="With one PATH: write its pytorch-fid statistics (mu, sigma as float64).")
    p.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")
    p.add_argument("--inception_weights", metavar="FILE",
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (default: $GANJAX_INCEPTION_WEIGHTS, "
                        "else the torch hub cache).")
    p.add_argument("--batch_size", type=int,
                   help="Images per Inception call (default: 10 on CPU, where XLA runs small batches faster; 50, "
                        "pytorch-fid's, elsewhere).")
    p.add_argument("--n", type=int, default=10_000, help="Samples of a workdir's G (default 10,000).")
    p.add_argument("--step", type=int, help="Checkpoint of a workdir (default: the latest).")
    p.add_argument("--seed", type=int, default=0, help="Seed of a workdir's latent draws (default 0).")
    p.add_argument("--resolution", type=int,
                   help="Resolution of a dataset PATH (default: the other PATH's run's, else 32).")
    p.add_argument("--channels", type=int, choices=(1, 3), help="Channels of a dataset PATH (default: its own).")
    p.add_argument("--cache_dir", help="Cache folder of a dataset PATH, as --cache_dir of training.")
    p.add_argument("--kid_subsets", type=int, default=100, help="KID subsets (default 100, as torch-fidelity).")
    args = p.parse_args(argv)
    if len(args.paths) > 2:
        raise UserError(f"give one or two PATHs, got {len(args.paths)}")
    if args.save_stats and len(args.paths) != 1:
        raise UserError("--save_stats writes the statistics of one PATH; give only one")
    if args.save_stats and not args.save_stats.endswith(".npz"):
        raise UserError(f"--save_stats needs a .npz file name, got {args.save_stats}")
    for name in ("batch_size", "n", "kid_subsets"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name} must be positive, got {getattr(args, name)}")
    return args


def _kind(path: str) -> str:
    from ganjax.checkpoints import checkpoint_dir

    if path.endswith(".npz") and not os.path.isdir(path):
        return "npz"
    if path == "digits" or path.startswith(DATASET_PREFIXES):
        return "dataset"
    if os.path.isdir(path):
        is_run = os.path.isdir(checkpoint_dir(path)) or os.path.exists(os.path.join(path, "config.json"))
        return "workdir" if is_run else "folder"
    raise UserError(f"{path}: no such folder or file; a PATH is a folder of images, a .npz of statistics, a run's "
                    f"workdir, or a dataset (digits, folder:PATH, tfds:NAME)")


def _workdir_shape(args, kinds: list[str]) -> tuple[int | None, int | None]:
    """(resolution, channels) of the run a workdir PATH names, for a dataset PATH beside it."""
    from ganjax.checkpoints import Checkpoints

    for path, kind in zip(args.paths, kinds):
        if kind == "workdir":
            checkpoints = Checkpoints(path, read_only=True)
            try:
                _, saved, _ = checkpoints.read_json(args.step)
            finally:
                checkpoints.close()
            return saved.get("resolution"), saved.get("channels")
    return None, None


def _checked(path: str, kind: str):
    """What can be checked of a PATH before the weights are read: a .npz's statistics, a folder's
    listing (not empty); None for the others (a workdir's checkpoint: `_workdir_shape`)."""
    return read_stats(path) if kind == "npz" else folder_images(path) if kind == "folder" else None


def _side(path: str, kind: str, checked, args, weights, shape: tuple) -> Side:
    if kind == "npz":
        return checked
    if kind == "folder":
        return folder_side(path, weights, args.batch_size, checked)
    if kind == "workdir":
        return workdir_side(path, args.n, args.seed, args.step, weights, args.batch_size)
    from ganjax.config import Config, resolve

    resolution = args.resolution or shape[0] or 32
    channels = args.channels or shape[1]
    config = resolve(Config(dataset=path, resolution=resolution, channels=channels, cache_dir=args.cache_dir))
    return dataset_reference(config, weights, args.batch_size)


def save_stats(side: Side, out: str) -> None:
    """mu and sigma (float64) as pytorch-fid's save_fid_stats writes them, via a temporary file."""
    if side.mu is None:
        raise UserError(f"{side.label}: statistics need at least 2 images, it has {side.count}")
    tmp = f"{out}.tmp-{os.getpid()}.npz"
    try:
        np.savez_compressed(tmp, mu=np.asarray(side.mu, np.float64), sigma=np.asarray(side.sigma, np.float64))
        os.replace(tmp, out)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise UserError(f"cannot write --save_stats={out}: {e.strerror or e}") from None


def _run(argv: list[str] | None) -> int | None:
    args = parse_args(argv)
    from ganjax.metrics.inception_weights import find_weights, load_weights

    kinds = [_kind(path) for path in args.paths]  # bad paths fail before the weights are read
    checked = [_checked(path, kind) for path, kind in zip(args.paths, kinds)]
    shape = _workdir_shape(args, kinds)
    weights = load_weights(*find_weights(args.inception_weights))
    sides = [_side(*source, args, weights, shape) for source in zip(args.paths, kinds, checked)]
    notes: list = []
    result = compare(sides[0], sides[1], args.kid_subsets, notes=notes) if len(sides) == 2 else {}
    for i, side in enumerate(sides, start=1):
        score = inception_score_of(side, notes)
        if score is not None:
            result[f"is_{i}"], result[f"is_{i}_std"] = score
    if args.save_stats:
        save_stats(sides[0], args.save_stats)
    for note in notes:
        warn(note)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if not k.startswith("is_") or not k.endswith("_std")}))
    else:
        print(_lines(result, sides, args))


def _lines(result: dict, sides: list[Side], args) -> str:
    lines = []
    if "fid" in result:
        counts = " vs ".join(f"{s.count} images" if s.count else "statistics" for s in sides)
        lines.append(f"FID {result['fid']:.4f}  ({counts})")
    if "kid" in result:
        lines.append(f"KID {result['kid']:.6f} ± {result['kid_std']:.6f}  ({args.kid_subsets} subsets)")
    if "precision" in result:
        lines.append(f"precision {result['precision']:.4f}, recall {result['recall']:.4f}  (k = 3)")
        lines.append(f"density {result['density']:.4f}, coverage {result['coverage']:.4f}  (k = 5)")
    for i, side in enumerate(sides, start=1):
        if f"is_{i}" in result:
            lines.append(f"IS {result[f'is_{i}']:.4f} ± {result[f'is_{i}_std']:.4f}  ({side.label})")
    if args.save_stats:
        lines.append(f"statistics of {sides[0].label} ({sides[0].count} images) -> {args.save_stats}")
    return "\n".join(lines) if lines else "nothing to report"


def main(argv: list[str] | None = None) -> int:
    return run_command("ganjax.fid", lambda: _run(argv))


if __name__ == "__main__":
    sys.exit(main())
