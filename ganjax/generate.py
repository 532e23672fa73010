"""Command line: samples of a trained generator, in the homework's submission format.

    python -m ganjax.generate --workdir=runs/wgan-digits --n=1000 --out=output --tar
    python -m ganjax.generate --from_torch=G_49.pth --n=1000 --out=output

Images are written as 1.jpg ... N.jpg (or .png) and optionally packed as OUT.tgz; `--grid` adds
one grid image and `--interpolate=K` rows of K images along straight and spherical paths between
random latent points. Toy-data generators write `samples.npy` (N x dim) and a plot over the data.
Only G's weights are read (its EMA if the run kept one, unless --ema_samples=false), and the
training data are not needed.

A conditional run's generator draws the classes given by `--class=K` or `--class=NAME`
(repeatable, or a comma list; in turn, as evenly as N allows), or without --class classes drawn
uniformly; the file names carry the class (`1_7.jpg`), or `--per_class_dirs` writes
`OUT/<class>/1.jpg ...`. A generator with InfoGAN's code (--latent_codes) draws the codes given by
`--code=K` (repeatable, or a comma list; in turn), or without --code the codes that z carries.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ganjax.config import Parser, parse_bool, seed_value
from ganjax.errors import UserError, run_command
from ganjax.latent import balanced_labels, sample_z


def parse_args(argv: list[str] | None):
    p = Parser(prog="python -m ganjax.generate", description=__doc__.split("\n\n")[0])
    source = p.add_argument_group("generator (one of)")
    source.add_argument("--workdir", help="Folder of a training run; its checkpoints/ are read.")
    source.add_argument("--from_torch", metavar="FILE.pth",
                        help="A generator state dict saved by the homework's PyTorch code (needs torch).")
    p.add_argument("--step", type=int, help="Checkpoint step to load (default: the latest).")
    p.add_argument("--ema_samples", type=lambda text: parse_bool("ema_samples", text), default=True,
                   metavar="BOOL", help="Sample with G's exponential moving average if the run kept one (default "
                                        "true); false: the raw G of the last update.")
    p.add_argument("--n", type=int, default=1000, help="Number of samples (default 1000, the homework's).")
    p.add_argument("--out", help="Output folder (default: <workdir>/generated, or ./generated).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the latent draws (default 0).")
    p.add_argument("--z", metavar="FILE.npy", help="Latent vectors (N x z_dim) to use instead of drawing them.")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg", help="jpg (the homework's) or lossless png.")
    p.add_argument("--tar", action="store_true", help="Also pack the images as OUT.tgz.")
    p.add_argument("--grid", action="store_true", help="Also write grid.png with all N samples.")
    p.add_argument("--interpolate", type=int, default=0, metavar="K",
                   help="Also write interpolate_linear.png and interpolate_slerp.png: rows of K images.")
    p.add_argument("--rows", type=int, default=8, help="Rows of --interpolate (default 8).")
    p.add_argument("--class", dest="classes", action="append", default=[], metavar="K|NAME",
                   help="Conditional runs: draw only this class, by index or name (repeatable, or a comma list); "
                        "several are drawn in turn. Default: classes drawn uniformly.")
    p.add_argument("--code", dest="codes", action="append", default=[], metavar="K",
                   help="Runs with InfoGAN's code (--latent_codes): draw only this code (repeatable, or a comma "
                        "list); several are drawn in turn. Default: the code each z carries (uniform).")
    p.add_argument("--per_class_dirs", action="store_true",
                   help="Conditional runs: write OUT/<class>/1.jpg ... instead of OUT/1_<class>.jpg ...")
    args = p.parse_args(argv)
    if (args.workdir is None) == (args.from_torch is None):
        raise UserError("give one of --workdir (a training run) or --from_torch (a .pth state dict)")
    if args.from_torch and args.step is not None:
        raise UserError("--step selects a checkpoint of --workdir; it does not apply to --from_torch")
    if args.n < 1 or args.rows < 1 or args.interpolate < 0 or args.interpolate == 1:
        raise UserError("--n and --rows must be positive, and --interpolate at least 2 (or 0 for none)")
    seed_value("seed", args.seed)
    args.classes = [c.strip() for text in args.classes for c in text.split(",") if c.strip()]
    codes = [c.strip() for text in args.codes for c in text.split(",") if c.strip()]
    if not all(re.fullmatch(r"\d+", c) for c in codes):
        raise UserError(f"--code expects code indices 0, 1, ..., got {','.join(codes)}")
    args.codes = [int(c) for c in codes]
    return args


def code_choices(gen, args) -> list[int] | None:
    """The requested --code values (None: none requested); UserError for a generator without
    InfoGAN's code or a code it does not have."""
    if not args.codes:
        return None
    k = gen.config.latent_codes
    if not k:
        raise UserError("--code: this generator has no InfoGAN code (its run had --latent_codes=0)")
    if max(args.codes) >= k:
        raise UserError(f"--code must be in 0 .. {k - 1} for this generator's {k} codes, got {max(args.codes)}")
    return args.codes


def carry_codes(z: np.ndarray, codes: list[int] | None, num_codes: int, per: int = 1) -> np.ndarray:
    """z whose rows carry `codes` in turn (each for `per` consecutive rows); z itself if None."""
    if codes is None:
        return z
    from ganjax.models.codes import with_codes

    rows = np.repeat(balanced_labels(-(-len(z) // per), num_codes, codes), per)[:len(z)]
    return np.asarray(with_codes(jnp.asarray(z), rows, num_codes))


def class_indices(gen, args) -> list[int] | None:
    """The labels of the requested --class values (None: none requested); UserError for a class
    that the generator does not have, or for --class / --per_class_dirs on an unconditional one."""
    if not gen.num_classes:
        if args.classes or args.per_class_dirs:
            flag = f"--class={','.join(args.classes)}" if args.classes else "--per_class_dirs"
            raise UserError(f"{flag}: this generator is unconditional (its run had --conditional=false); --class "
                            f"and --per_class_dirs apply to runs trained with --conditional=true")
        return None
    try:
        return [gen.class_index(c) for c in args.classes] or None
    except ValueError as e:
        raise UserError(f"--class: {e}") from None


def file_name(name: str) -> str:
    """A class name as part of a file name: path separators and other odd characters become '_'."""
    return re.sub(r"[^\w.+-]+", "_", name).strip(".") or "_"


def load_z(path: str, z_dim: int) -> np.ndarray:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"--z: cannot read {path} as a .npy array ({e}); save one with np.save") from None
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise UserError(f"--z: {path} has shape {z.shape}; this generator needs (N, {z_dim})")
    if len(z) == 0:
        raise UserError(f"--z: {path} holds no latent vectors (shape {z.shape}); give at least one row")
    if not np.issubdtype(z.dtype, np.floating):  # complex would lose its imaginary part in the cast
        raise UserError(f"--z: {path} has dtype {z.dtype}; latent vectors must be a real floating-point array "
                        f"(float16, float32 or float64)")
    if not np.isfinite(z).all():
        raise UserError(f"--z: {path} contains NaN or infinite values")
    return z.astype(np.float32)


def slerp(a, b, t):
    """Spherical interpolation between latent vectors a and b (Shoemake 1985; White 2016 for GANs)."""
    a_n, b_n = a / jnp.linalg.norm(a, axis=-1, keepdims=True), b / jnp.linalg.norm(b, axis=-1, keepdims=True)
    omega = jnp.arccos(jnp.clip(jnp.sum(a_n * b_n, -1, keepdims=True), -1.0, 1.0))
    so = jnp.sin(omega)
    safe = jnp.where(so < 1e-6, 1.0, so)
    spherical = (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / safe
    return jnp.where(so < 1e-6, (1 - t) * a + t * b, spherical)


def interpolation_z(key, rows: int, k: int, z_dim: int, spherical: bool) -> np.ndarray:
    """(rows * k, z_dim): row r goes from a random z_a to a random z_b in k steps."""
    a_key, b_key = jax.random.split(key)
    a = sample_z(a_key, rows, z_dim)[:, None]
    b = sample_z(b_key, rows, z_dim)[:, None]
    t = jnp.linspace(0.0, 1.0, k)[None, :, None]
    z = slerp(a, b, t) if spherical else (1 - t) * a + t * b
    return np.asarray(z.reshape(rows * k, z_dim), np.float32)


def write_images(images: np.ndarray, out: str, fmt: str, classes: list[str] | None = None,
                 per_class_dirs: bool = False) -> list[str]:
    """Writes 1.<fmt> ... N.<fmt> (the homework's names), or with each image's class name
    (`classes`) 1_<class>.<fmt> ..., or <class>/1.<fmt> ... with `per_class_dirs`; returns the paths."""
    from ganjax.visualize import to_uint8

    pixels = to_uint8(images)
    paths = []
    for i, im in enumerate(tqdm(pixels, desc="Writing", disable=len(pixels) < 100), start=1):
        path = os.path.join(out, f"{i}.{fmt}")
        if classes is not None:
            name = file_name(classes[i - 1])
            path = os.path.join(out, name, f"{i}.{fmt}") if per_class_dirs else os.path.join(out, f"{i}_{name}.{fmt}")
            os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(path, **({"quality": 95} if fmt == "jpg" else {}))
        paths.append(path)
    return paths


def tgz_path(out: str) -> str:
    return os.path.normpath(out) + ".tgz"


def check_tgz(out: str) -> None:
    """UserError before any image is written if OUT.tgz cannot be a file."""
    target = tgz_path(out)
    if os.path.isdir(target):
        raise UserError(f"--tar writes {target}, which is a folder; move it away or choose another --out")


def pack_tgz(paths: list[str], out: str) -> str:
    """OUT.tgz holding the images at its top level (as `tar -zcf ../images.tgz *.jpg` would; per
    class folders as they are under OUT)."""
    target = tgz_path(out)
    with tarfile.open(target, "w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=os.path.relpath(path, out))
    return target


def _run(argv: list[str] | None) -> int | None:
    args = parse_args(argv)
    from ganjax.generation import load_generator
    from ganjax.visualize import save_image_grid, save_toy_plot

    if args.from_torch:
        from ganjax.torch_import import load_torch_generator
        gen, out = load_torch_generator(args.from_torch), args.out or "generated"
    else:
        gen = load_generator(args.workdir, args.step, ema=args.ema_samples)
        out = args.out or os.path.join(args.workdir, "generated")
    indices, codes = class_indices(gen, args), code_choices(gen, args)
    if args.tar and gen.kind == "image":
        check_tgz(out)
    key = jax.random.PRNGKey(args.seed)
    z = load_z(args.z, gen.z_dim) if args.z else np.asarray(sample_z(key, args.n, gen.z_dim))
    z = carry_codes(z, codes, gen.config.latent_codes)
    labels = gen.draw_labels(key, len(z), indices)
    names = None if labels is None else [gen.class_names[k] for k in labels]
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create --out={out}: {e.strerror or e}") from None
    samples = gen.generate(z, labels, progress=True)
    written = []
    if gen.kind == "toy":
        from ganjax.data.toy import make_toy

        np.save(os.path.join(out, "samples.npy"), samples)
        written.append(os.path.join(out, "samples.npy"))
        data = make_toy(gen.config.dataset, 2500, gen.config.seed)
        written.append(save_toy_plot(samples, data, os.path.join(out, "samples.png"),
                                     title=f"{len(samples)} samples of G (step {gen.step}) over the data"))
    else:
        paths = write_images(samples, out, args.format, names, args.per_class_dirs)
        written.append(f"{paths[0]} ... {paths[-1]}" if len(paths) > 1 else paths[0])
        if args.tar:
            written.append(pack_tgz(paths, out))
        if args.grid:
            nrow = math.ceil(math.sqrt(len(samples)))
            written.append(save_image_grid(samples, os.path.join(out, "grid.png"), nrow=nrow))
        for spherical, name in ((False, "linear"), (True, "slerp")):
            if args.interpolate:
                zi = interpolation_z(jax.random.fold_in(key, 1), args.rows, args.interpolate, gen.z_dim, spherical)
                zi = carry_codes(zi, codes, gen.config.latent_codes, per=args.interpolate)  # one code per row
                path = os.path.join(out, f"interpolate_{name}.png")
                row_labels = None  # a conditional run: one class per row (the requested ones in turn)
                if gen.num_classes:
                    row_labels = np.repeat(balanced_labels(args.rows, gen.num_classes, indices), args.interpolate)
                written.append(save_image_grid(gen.generate(zi, row_labels), path, nrow=args.interpolate))
    source = args.from_torch or f"{args.workdir} step {gen.step}{' (EMA)' if gen.ema else ''}"
    print(f"Generated {len(samples)} samples with G from {source}: " + ", ".join(written))


def main(argv: list[str] | None = None) -> int:
    return run_command("ganjax.generate", lambda: _run(argv))


if __name__ == "__main__":
    sys.exit(main())
