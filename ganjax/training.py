"""The host side of training: chunks of compiled steps, progress, logs and samples.

    train(config)  = setup (a `Run`: devices, data, state, checkpoints, log)
                   + train_loop (epochs of chunks; `train_chunk_and_log` is one chunk)

Per chunk the host makes one call (K steps in one lax.scan on the device, or on every device under
pmap: ganjax.parallel) and reads the metrics once; everything else (batches, z, the epoch order)
stays on the devices. In a multi-host run every process runs this loop; only process 0 writes the
log, the config and the samples, and all of them take part in orbax's checkpoint saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ganjax.checkpoints import (Checkpoints, check_resume_config, checkpoint_dir, delete_checkpoints,
                                describe, no_space_message, remove_unfinished)
from ganjax.config import Config
from ganjax.data import Dataset, check_labels, load_dataset
from ganjax.data.feed import OnDevice, Streamed, fits_on_device
from ganjax.errors import EnvironmentFault, UserError
from ganjax.evaluation import KID_SUBSETS_DURING_TRAINING, evaluate, has_metrics, inception_notice
from ganjax import compile_cache, parallel, xla_options
from ganjax.latent import class_grid_inputs, sample_z
from ganjax.models.codes import code_grid_z
from ganjax.state import GANSpec, GANState, create_state, make_spec, seed_keys
from ganjax.steps import metric_periods, train_chunk
from ganjax.stopping import StopRequest, TrainingStopped
from ganjax.summaries import RunLog, plot_curves, read_log
from ganjax.visualize import save_image_grid, save_toy_plot
from ganjax.workdir_lock import WorkdirLock


def say(message: str) -> None:
    """A line of progress, from process 0 only."""
    if parallel.is_main_process():
        tqdm.write(message)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the loss."""


def prepare_workdir(path: str) -> str:
    """Creates the workdir (and samples/) and checks it can be written; UserError otherwise."""
    path = os.path.abspath(path)
    try:
        os.makedirs(os.path.join(path, "samples"), exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")  # one per process of a multi-host run
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # train() names the last complete checkpoint
        raise UserError(f"cannot write to workdir {path}: {e.strerror or e}; choose another with --workdir") from None
    return path


def schedule(config: Config, n_examples: int) -> tuple[int, int]:
    """(steps per epoch, total steps). The last incomplete batch of an epoch is dropped."""
    steps_per_epoch = n_examples // config.batch_size
    if steps_per_epoch < 1:
        raise UserError(f"--batch_size={config.batch_size} is larger than the dataset ({n_examples} examples); "
                        f"use at most {n_examples}")
    return steps_per_epoch, config.steps if config.steps is not None else config.n_epoch * steps_per_epoch


def step_masks(first_step: int, n: int, periods: dict[str, int]) -> dict[str, np.ndarray]:
    """Per metric group of `train_step`, which of the steps first_step .. first_step+n-1 produced
    its metrics: those with step % period == 0 (the periods of ganjax.steps.metric_periods)."""
    steps = first_step + np.arange(n)
    return {group: steps % period == 0 for group, period in periods.items()}


def summarize_chunk(metrics: dict, masks: dict[str, np.ndarray]) -> dict:
    """Means over the steps that produced each metric (D's: every valid step; G's: the G updates)."""
    out = {}
    for group, values in metrics.items():
        mask = masks[group]
        for name, per_step in values.items():
            per_step = np.asarray(per_step[:len(mask)], np.float64)[mask]
            out[name] = float(per_step.mean()) if per_step.size else float("nan")
    return out


def divergence_hint(config: Config) -> str:
    """What to try after a NaN or infinite loss, for this run's settings."""
    tries = [f"a lower --lr (now {config.lr:g})"]
    if config.dtype != "float32":
        tries.append("--dtype=float32")
    if config.loss == "wgan-gp":
        tries.append(f"a larger --gp_weight (now {config.gp_weight:g})")
    elif config.loss == "wgan":
        tries += [f"a smaller --clip_value (now {config.clip_value:g})", "--loss=wgan-gp"]
    else:
        tries.append("--loss=wgan-gp")
    return "try " + ", ".join(tries[:-1]) + " or " + tries[-1]


def check_finite(metrics: dict, masks: dict[str, np.ndarray], first_step: int,
                 hint: str = "try a lower --lr, or --loss=wgan-gp") -> None:
    """Raises TrainingDiverged at the first step whose loss (or any other metric) is NaN or
    infinite; `hint` (divergence_hint) ends the message."""
    for group, values in metrics.items():
        mask = masks[group]
        for name, per_step in values.items():
            per_step = np.asarray(per_step[:len(mask)])
            bad = ~np.isfinite(per_step) & mask
            if bad.any():
                i = int(np.argmax(bad))
                raise TrainingDiverged(f"{name} became {per_step[i]} at step {first_step + i}; stopped instead of "
                                       f"training on garbage ({hint})")


class Samples:
    """Writes what G makes of a fixed z: a 10x10 grid for images, a plot over the data for toys.
    A conditional run's grid has one row per class (the first 10) of the same 10 fixed z, so a
    column shows one style across classes; its TensorBoard tag names the rows' classes. An image run
    with InfoGAN's code has one row per code (the first 10) in the same way."""

    def __init__(self, spec: GANSpec, config: Config, dataset: Dataset, workdir: str):
        self.spec, self.dataset, self.dir = spec, dataset, os.path.join(workdir, "samples")
        n = 100 if dataset.kind == "image" else 2500
        sample_key = seed_keys(config.seed)[3]
        self.tag = "samples"
        if spec.num_classes:
            self.z, self.labels = class_grid_inputs(sample_key, spec.num_classes, spec.z_dim)
            self.tag = "samples (rows: " + ", ".join(dataset.class_names[:10]) + ")"
        elif spec.latent_codes and dataset.kind == "image":
            self.z, self.labels = code_grid_z(sample_key, spec.latent_codes, spec.z_dim), None
            self.tag = f"samples (rows: latent codes 0 .. {min(spec.latent_codes, 10) - 1})"
        else:
            self.z, self.labels = sample_z(sample_key, n, spec.z_dim), None
        self.title = f"{config.loss} on {config.dataset}"
        self._generate = xla_options.jit(lambda variables, z, labels: spec.generator.apply(variables, z, train=False,
                                                                                     labels=labels))
        self._critic = xla_options.jit(lambda variables, x: spec.loss.d_output(
            spec.discriminator.apply(variables, x, train=False)))

    def generate(self, state: GANState, z=None, labels=None) -> np.ndarray:
        """G(z) (G(z, labels) for a conditional run; the fixed grid's by default) in inference mode
        (running batch statistics), as the homework's G.eval(); from G's EMA if the run keeps one."""
        if z is None:
            z, labels = self.z, self.labels
        return np.asarray(self._generate(state.sampling_variables(), z, labels))

    def save(self, state: GANState, epoch: int) -> str:
        path = os.path.join(self.dir, f"epoch_{epoch:03d}.png")
        samples = self.generate(state)
        if self.dataset.kind == "image":
            return save_image_grid(samples, path, nrow=10)
        critic = lambda x: np.asarray(self._critic(state.d.variables(), x))
        return save_toy_plot(samples, self.dataset.array, path, critic, f"{self.title}, epoch {epoch}",
                             self.spec.loss.d_output_label)


def check_checkpoint(config: Config, step: int | None) -> None:
    """UserError if the checkpoint a run would resume from is unreadable or does not match it, or
    if the workdir holds a log but no checkpoint: a fresh start would lose that log."""
    latest = None
    if os.path.isdir(checkpoint_dir(config.workdir)):
        checkpoints = Checkpoints(config.workdir, read_only=True)
        try:
            latest = checkpoints.latest_step()
            if step is not None or latest is not None:
                _, saved, _ = checkpoints.read_json(step)
                check_resume_config(saved, config, checkpoints.directory)
        finally:
            checkpoints.close()
    records = read_log(os.path.join(config.workdir, "metrics.jsonl")) if latest is None and step is None else []
    if records:
        last = max((r.get("step", 0) for r in records), default=0)
        raise UserError(f"{os.path.abspath(config.workdir)} holds a log (metrics.jsonl, {len(records)} records up to "
                        f"step {last}) but no checkpoint to resume from; --restart starts over and keeps that log "
                        f"as metrics.jsonl.old, or choose another --workdir")


def set_aside_log(workdir: str) -> None:
    """--restart keeps the old run's log as metrics.jsonl.old (replacing an older one)."""
    log = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(log):
        os.replace(log, log + ".old")


def take_lock(lock: WorkdirLock, main: bool) -> None:
    """Takes the workdir's lock in process 0 (the workdir is one folder shared by all processes);
    if another run holds it, every process stops with a UserError."""
    problem = None
    if main:
        try:
            lock.acquire()
        except UserError as e:
            problem = str(e)
    if parallel.any_process(problem is not None):
        raise UserError(problem or f"{lock.workdir} is in use by another run (see process 0's message)")


def resume(config: Config, checkpoints: Checkpoints, template: GANState, position: dict,
           step: int | None) -> GANState | None:
    """The state of the latest checkpoint (or of `step`) if there is one, after checking that the
    run's structural settings and data (its size, and a conditional run's classes) match it; None
    for a fresh start."""
    if step is None and checkpoints.latest_step() is None:
        return None
    step, saved, meta = checkpoints.read_json(step)
    notes = check_resume_config(saved, config, checkpoints.directory)
    if meta.get("examples", position["examples"]) != position["examples"]:
        raise UserError(f"the dataset changed since checkpoint {step}: {meta['examples']} examples then, "
                        f"{position['examples']} now; restore the data, or --restart")
    if meta.get("classes") != position.get("classes"):
        then, now = (_classes(c) for c in (meta.get("classes"), position.get("classes")))
        raise UserError(f"the dataset's classes changed since checkpoint {step}: {then} then, {now} now; "
                        f"restore the data, or --restart")
    later = [s for s in checkpoints.steps() if s > step]
    state = checkpoints.restore(template, step)
    if later:
        checkpoints.set_aside(later)
        notes.append(f"checkpoints {', '.join(map(str, later))} moved to {checkpoints.set_aside_dir}")
    say(f"Resuming from the checkpoint at {describe(meta)} in {checkpoints.directory}"
        + "".join(f"\n  changed {n}" for n in notes))
    return state


def _classes(names) -> str:
    if not names:
        return "no classes"
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    return f"{len(names)} classes ({shown})"


def load_shared_dataset(config: Config, main: bool) -> Dataset:
    """load_dataset, by process 0 first when there are several: a folder or tfds dataset is then
    decoded into its cache once, and the other processes (on a shared file system) read it."""
    if not main:
        parallel.sync("ganjax-dataset")
    dataset = load_dataset(config)
    if main:
        parallel.sync("ganjax-dataset")
    return dataset


@dataclasses.dataclass
class Run:
    """A training run once set up: where it runs, what it trains on, its state and its outputs."""
    config: Config
    placement: parallel.Placement
    spec: GANSpec
    dataset: Dataset
    workdir: str
    checkpoints: Checkpoints
    log: RunLog
    state: GANState  # on the devices once training starts (placement.replicate)
    resumed: bool
    steps_per_epoch: int
    total: int  # D steps to reach
    chunk_seconds: float = 0.0  # wall time spent in training chunks (the rest: compile, samples, evaluation, saves)

    def position(self, step: int) -> dict:
        """Where `step` is in the data (saved with each checkpoint)."""
        return data_position(step, self.steps_per_epoch, self.dataset, self.config.conditional)


def data_position(step: int, steps_per_epoch: int, dataset: Dataset, conditional: bool) -> dict:
    """Where `step` is in the data, and what the data are: their size, and for a conditional run
    the class names and the examples per class (ganjax.generate reads them from the checkpoint)."""
    position = {"epoch": step // steps_per_epoch, "batch": step % steps_per_epoch,
                "steps_per_epoch": steps_per_epoch, "examples": len(dataset.array)}
    if conditional:
        position.update(classes=list(dataset.class_names), class_counts=dataset.class_counts())
    return position


def setup(config: Config, restart: bool, resume_step: int | None, resources: contextlib.ExitStack) -> Run:
    """Joins the processes, takes the workdir's lock, checks what it can (the checkpoint to resume,
    the log, the batch against the data) before it opens or writes anything, then prepares the
    workdir and builds or resumes the state. What must be closed (the lock, checkpoints, log) is
    entered into `resources`."""
    compile_cache.enable(config.compile_cache)
    parallel.initialize(config.coordinator, config.num_processes, config.process_id, config.init_timeout)
    placement = parallel.place(config.devices, config.batch_size)
    main = parallel.is_main_process()
    lock = WorkdirLock(config.workdir)
    resources.callback(lock.release)
    if os.path.isdir(config.workdir):
        take_lock(lock, main)  # before reading anything: a second run stops at once
        if main:
            remove_unfinished(checkpoint_dir(config.workdir))  # frees the space of a save cut short
    if not restart:
        check_checkpoint(config, resume_step)  # fail before loading data or writing anything
    dataset = load_shared_dataset(config, main)
    if config.conditional:
        check_labels(dataset)
    steps_per_epoch, total = schedule(config, len(dataset.array))
    workdir = prepare_workdir(config.workdir)
    take_lock(lock, main)
    if restart and main:
        set_aside_log(workdir)
        delete_checkpoints(workdir)
    parallel.sync("ganjax-restart")  # the other processes open the checkpoints after process 0 cleared them
    checkpoints = Checkpoints(workdir, keep=config.keep)
    resources.callback(checkpoints.close)
    spec = make_spec(config, placement.axis_name, tuple(dataset.class_counts()) if config.conditional else (), total)
    state = create_state(spec, config.seed)
    resumed = resume(config, checkpoints, state, data_position(0, steps_per_epoch, dataset, config.conditional),
                     resume_step)
    state = resumed if resumed is not None else state
    log = RunLog(workdir, int(state.step), enabled=main, tensorboard=config.tensorboard)
    resources.callback(log.close)
    if main:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(dataclasses.asdict(config), f, indent=2)
    return Run(config, placement, spec, dataset, workdir, checkpoints, log, state, resumed is not None, steps_per_epoch,
               total)


def make_feed(run: Run):
    """The data feed: the whole dataset on the device, or chunks streamed from the host."""
    config = run.config
    on_device = config.data_on_device
    if on_device is None:  # several processes stream: each reads only its devices' rows
        on_device = jax.process_count() == 1 and fits_on_device(run.dataset.array.nbytes)
    data_key = seed_keys(config.seed)[2]
    arrays = run.dataset.training_arrays(config.conditional)
    if on_device:
        return OnDevice(arrays, data_key, run.placement)
    return Streamed(arrays, data_key, config.batch_size, config.chunk_size, run.placement)


def train(config: Config, *, progress: bool = True, restart: bool = False,
          resume_step: int | None = None) -> GANState:
    """Trains to the configured number of steps, resuming from the workdir's latest checkpoint
    (or `resume_step`) unless `restart`; saves checkpoints as configured and returns the state.

    A first SIGINT / SIGTERM saves at the next chunk boundary and raises TrainingStopped.
    Trains on `config.devices` devices (all by default) of every process; the result and the
    checkpoints are the same single copy of the state whatever the number of devices.

    A full disk (here or in orbax's saves) ends in one EnvironmentFault that names the last
    complete checkpoint."""
    try:
        return _train(config, progress, restart, resume_step)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise EnvironmentFault(no_space_message(config.workdir)) from e
        raise


def _train(config: Config, progress: bool, restart: bool, resume_step: int | None) -> GANState:
    with contextlib.ExitStack() as resources:
        run = setup(config, restart, resume_step, resources)
        step = int(run.state.step)
        if step >= run.total:
            say(f"The run in {run.workdir} is already at step {step} of {run.total}; raise --n_epoch or --steps "
                f"to train longer.")
            return run.state
        feed = make_feed(run)
        resources.callback(feed.close)
        start_time = time.time()
        train_loop(run, feed, progress, start_time)
    if parallel.is_main_process():
        plot_curves(run.log.path, os.path.join(run.workdir, "curves.png"), f"{config.loss} on {config.dataset}")
    seconds = time.time() - start_time
    say(f"Finished {run.total} steps in {seconds:.1f} s ({100 * run.chunk_seconds / seconds:.1f} % of it in training "
        f"steps); checkpoint at step {run.total} in {run.checkpoints.directory}.")
    return run.placement.unreplicate(run.state)


def train_loop(run: Run, feed, progress: bool, start_time: float) -> None:
    """Epochs of chunks until `run.total` steps: logs each chunk, saves checkpoints as due, writes
    samples and evaluations at epoch ends, and stops (saving first) on an agreed stop request."""
    config, placement, main = run.config, run.placement, parallel.is_main_process()
    step, steps_per_epoch = int(run.state.step), run.steps_per_epoch
    samples = Samples(run.spec, config, run.dataset, run.workdir)
    n_epoch = -(-run.total // steps_per_epoch)
    hosts = f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""
    say(f"ganjax: {config.loss} / {config.arch} on {config.dataset} ({len(run.dataset.array)} examples"
        f"{'' if isinstance(feed, OnDevice) else ', streamed from the host'}), {run.total} steps = "
        f"{run.total / steps_per_epoch:.3g} epochs of {steps_per_epoch}, batch {config.batch_size} = "
        f"{placement.total_devices} x {placement.per_device(config.batch_size)} on {placement.total_devices} "
        f"{jax.default_backend()} device(s){hosts}; writing to {run.workdir}")
    if main and (notice := inception_notice(config)):
        say(notice)
    run.state = placement.replicate(run.state)
    tic = time.time()
    chunk_fn = placement.compile(functools.partial(train_chunk, run.spec, config.chunk_size), run.state,
                                 *feed.chunk(step // steps_per_epoch, step % steps_per_epoch, 0), jnp.int32(0))
    say(f"Compiled the {config.chunk_size}-step training chunk in {time.time() - tic:.1f} s.")

    saved_step = step if run.resumed else None
    losses: dict = {}  # what the progress bar shows
    with StopRequest() as stop:
        stopping = None  # the stop request agreed by all processes after the last chunk
        while step < run.total:
            epoch = step // steps_per_epoch
            epoch_end = min((epoch + 1) * steps_per_epoch, run.total)
            # closed on every exit, so that an error's one line does not land on the bar's line
            with tqdm(total=epoch_end - epoch * steps_per_epoch, initial=step - epoch * steps_per_epoch,
                      desc=f"Epoch {epoch + 1}/{n_epoch}", disable=not (progress and main), dynamic_ncols=True) as bar:
                while step < epoch_end and stopping is None:
                    n = min(config.chunk_size, epoch_end - step, _next_multiple(step, config.ckpt_every) - step)
                    record = train_chunk_and_log(run, chunk_fn, feed, step, n, start_time)
                    step += n
                    bar.update(n)
                    losses = progress_losses(losses, record)
                    bar.set_postfix({name: f"{value:.4f}" for name, value in losses.items()})
                    stopping = parallel.agreed_stop(stop.signum)
                    run.checkpoints.check()  # a save that failed in the background stops the run here
                    if checkpoint_due(config, step, steps_per_epoch, run.total) or stopping is not None:
                        run.checkpoints.save(placement.unreplicate(run.state), config, run.position(step))
                        saved_step = step
            if main and step == epoch_end:
                end_of_epoch(config, placement.unreplicate(run.state), epoch + 1, step, step == run.total, samples,
                             run.log)
            if stopping is not None:
                run.checkpoints.wait()
                where = (f"saved the checkpoint at {describe(run.position(step) | {'step': step})}"
                         if saved_step == step else "nothing new to save")
                raise TrainingStopped(stopping, f"stopped at step {step}: {where} in {run.checkpoints.directory}; "
                                                f"run the same command again to resume")
    run.checkpoints.wait()


def progress_losses(shown: dict, record: dict) -> dict:
    """The losses the progress bar shows after a chunk's `record`: each one's latest value, kept
    from an earlier chunk where this one has none (a chunk of D steps only logs loss_G as NaN)."""
    latest = {name: record[name] for name in ("loss_G", "loss_D") if math.isfinite(record.get(name, math.nan))}
    return {**shown, **latest}


def train_chunk_and_log(run: Run, chunk_fn, feed, step: int, n: int, start_time: float) -> dict:
    """One compiled chunk of `n` steps from `step` (run.state advances); checks its metrics are
    finite, and logs and returns their summary."""
    epoch = step // run.steps_per_epoch
    tic = time.time()
    run.state, metrics = chunk_fn(run.state, *feed.chunk(epoch, step - epoch * run.steps_per_epoch, n), jnp.int32(n))
    metrics = jax.device_get(run.placement.unreplicate(metrics))
    seconds = time.time() - tic
    run.chunk_seconds += seconds
    masks = step_masks(step, n, metric_periods(run.spec))
    check_finite(metrics, masks, step, divergence_hint(run.config))
    record = {"step": step + n, "epoch": epoch + 1, **summarize_chunk(metrics, masks), "steps_per_s": n / seconds,
              "wall_time": time.time() - start_time}
    run.log.write(record)
    return record


def end_of_epoch(config: Config, state: GANState, epoch: int, step: int, last: bool, samples: Samples,
                 log: RunLog) -> None:
    """The sample grid (or toy plot) and the evaluation of an epoch, as the config asks."""
    if epoch % config.sample_every == 0 or last:
        path = samples.save(state, epoch)
        log.image(samples.tag, path, step)
        tqdm.write(f"Save some samples to {path}.")
    if config.eval_every and (epoch % config.eval_every == 0 or last) and has_metrics(config):
        metrics = evaluate(lambda z, labels=None: samples.generate(state, z, labels), config, seed=config.seed,
                           kid_subsets=KID_SUBSETS_DURING_TRAINING, num_classes=samples.spec.num_classes)
        log.write({"step": step, "epoch": epoch, **metrics})
        tqdm.write(f"Evaluation at step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                                                              if not k.endswith(("_std", "_real", "_total"))))


def _next_multiple(step: int, every: int) -> int:
    """The first multiple of `every` after `step` (infinity if every is 0)."""
    return (step // every + 1) * every if every else math.inf


def checkpoint_due(config: Config, step: int, steps_per_epoch: int, total: int) -> bool:
    """Whether the run saves after `step` steps: every ckpt_every steps, every ckpt_epochs epochs, and at the end."""
    every_steps = config.ckpt_every > 0 and step % config.ckpt_every == 0
    every_epochs = (config.ckpt_epochs > 0 and step % steps_per_epoch == 0
                    and (step // steps_per_epoch) % config.ckpt_epochs == 0)
    return step == total or every_steps or every_epochs
