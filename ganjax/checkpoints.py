"""Orbax checkpoints of a run: the whole train state, the config and the position in the data.

A checkpoint is a folder `<workdir>/checkpoints/<step>` with four items:

- `generator`: G's params and its other variable collections (batch statistics), and under
  `ema` the same for G's exponential moving average if the run keeps one: all that
  `ganjax.generate` needs;
- `train`: everything else (G's optimizer state, D's params, collections and optimizer state,
  the step and the PRNG key), so that G alone loads without D or the optimizers;
- `config`: the run's resolved `Config` as JSON, checked against the settings of a resumed run;
- `meta`: the checkpoint format, the step and the position in the data (epoch, batch).

Orbax writes each checkpoint into a temporary folder and renames it when complete, so a process
killed during a save leaves no checkpoint that looks complete; `remove_unfinished` removes the
leftovers on the next start, synchronously (orbax's own `cleanup_tmp_directories` runs in a
background thread that fails with "cannot schedule new futures after shutdown" when the process
ends first). Orbax's CheckpointManager needs absolute paths (a relative one fails in
`wait_until_finished`).

Saves are asynchronous: the caller's arrays are copied to the host, then (in a single-process
run) a worker thread drives orbax, whose own threads write the files, while training goes on.

A full disk: before each save the free space is checked against the size of the last checkpoint
(the arrays' size for the first), and a save that fails anyway has its temporary folder removed
at once. Either error surfaces in the next `save`, `check`, `wait` or `close` as one line that
names the last complete checkpoint (`EnvironmentFault`, exit status 1).

On disk a network is {"params": ..., <collection>: ..., ["opt_state": ...]}: its variable
collections sit beside its params, as in flax's variables dict. Format 1 (the first release) is
format 2 without the generator's `ema` entry; both are read, and a format-1 checkpoint is a run
without EMA (the `ema` setting's legacy value).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import errno
import functools
import os
import re
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import serialization

from ganjax.config import PLACEMENT, STRUCTURAL, Config, legacy_value, resume_kind
from ganjax import parallel, quiet
from ganjax.errors import EnvironmentFault, UserError
from ganjax.state import GANState

TMP_MARKER = ".orbax-checkpoint-tmp"  # orbax's suffix for a checkpoint being written
FORMAT = 2  # bump when the layout of the saved items changes
READABLE_FORMATS = (1, 2)

def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def _net_tree(net: dict) -> dict:
    """A network (a NetState as a state dict) as saved: its collections beside its params, and
    a `batch_stats` entry always (empty without batch norm), as format 1 has it."""
    return {"params": net["params"], "batch_stats": {}, **net["model_state"]}


def _net_state_dict(tree: dict, opt_state) -> dict:
    """Inverse of _net_tree: the NetState state dict (empty collections dropped)."""
    collections = {k: v for k, v in tree.items()
                   if k not in ("params", "opt_state") and not (isinstance(v, dict) and not v)}
    return {"params": tree["params"], "model_state": collections, "opt_state": opt_state}


def split_state(state: GANState) -> dict:
    """The state as the plain dicts that are saved: {'generator': ..., 'train': ...}."""
    tree = serialization.to_state_dict(state)
    g, d = tree["g"], tree["d"]
    ema = {"ema": tree["g_ema"]} if tree["g_ema"] else {}
    return {"generator": {**_net_tree(g), **ema},
            "train": {"g_opt_state": g["opt_state"], "d": {**_net_tree(d), "opt_state": d["opt_state"]},
                      "step": tree["step"], "key": tree["key"]}}


def join_state(template: GANState, generator: dict, train: dict) -> GANState:
    """Inverse of split_state, with `template` giving the pytree structure."""
    generator = dict(generator)
    g_ema = generator.pop("ema", {})
    tree = {"g": _net_state_dict(generator, train["g_opt_state"]), "d": _net_state_dict(train["d"], train["d"]["opt_state"]),
            "step": train["step"], "key": train["key"], "g_ema": g_ema}
    return serialization.from_state_dict(template, tree)


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpoints:
    """The checkpoints of one workdir: save (asynchronous), list, restore all or G only."""

    def __init__(self, workdir: str, keep: int = 3, read_only: bool = False):
        self.directory = checkpoint_dir(workdir)
        if read_only and not os.path.isdir(self.directory):
            raise UserError(f"no checkpoints in {os.path.abspath(workdir)} (expected {self.directory}); "
                            f"point --workdir at the folder of a training run")
        quiet.install()
        if not read_only:
            remove_unfinished(self.directory)
        self.failed = False  # a save failed and was reported: close() stays quiet
        self._sizes: dict[int, int] = {}
        # Orbax's save blocks its caller for 15-55 ms (starting its threads, copying the tree) even
        # when asynchronous; a worker thread takes that off the training loop. Multi-host saves stay
        # on the main thread: their barriers and the space check's all-gather must keep their order
        # with the training steps' collectives in every process.
        self._worker = (None if read_only or jax.process_count() > 1
                        else concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ganjax-save"))
        self._pending: concurrent.futures.Future | None = None
        # Readers (generate, evaluate) neither create, clean up nor delete anything.
        options = ocp.CheckpointManagerOptions(max_to_keep=None if read_only else keep, create=not read_only,
                                               cleanup_tmp_directories=False, enable_async_checkpointing=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options,
                                             item_names=("generator", "train", "config", "meta"))

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, state: GANState, config: Config, position: dict) -> None:
        """Starts a save of `state` at its step and returns. The arrays are copied to the host here,
        so the caller may donate `state` to the next compiled chunk; orbax then writes them from
        the worker thread (and its own threads). A failed save's error surfaces in the next
        `save`, `check`, `wait` or `close`."""
        self._finish_pending()
        step = int(state.step)
        if step in self.manager.all_steps():
            return
        items = jax.tree.map(np.array, split_state(state))  # host copies: safe against donation
        meta = {"format": FORMAT, "step": step, **position}
        write = functools.partial(self._write, step, items, dataclasses.asdict(config), meta)
        if self._worker is None:
            write()
        else:
            self._pending = self._worker.submit(write)

    def _write(self, step: int, items: dict, config: dict, meta: dict) -> None:
        with _SaveErrors(self, step):
            self.manager.wait_until_finished()  # the previous save's error, if any, before checking space
            self.check_space(step, sum(x.nbytes for x in jax.tree.leaves(items)))
            self.manager.save(step, args=ocp.args.Composite(
                generator=ocp.args.StandardSave(items["generator"]), train=ocp.args.StandardSave(items["train"]),
                config=ocp.args.JsonSave(config), meta=ocp.args.JsonSave(meta)))

    def check(self) -> None:
        """Raises the error of a save that the worker has finished, if any; never waits (the
        training loop calls it after every chunk, so a failed save stops the run within a chunk)."""
        if self._pending is not None and self._pending.done():
            self._finish_pending()

    def _finish_pending(self) -> None:
        """Waits for the worker's save, raising its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def check_space(self, step: int, nbytes: int) -> None:
        """EnvironmentFault before a save that would not fit: the free space must hold another
        checkpoint the size of the last one (`nbytes`, the arrays' size, for the first). All
        processes of a multi-host run agree, so that none is left waiting in the save."""
        last = complete_steps(self.directory)
        need = self._size(last[-1]) if last else nbytes
        free = shutil.disk_usage(self.directory).free
        if parallel.any_process(free < need):
            self.failed = True
            raise EnvironmentFault(f"not enough space left on {os.path.dirname(self.directory)} to save checkpoint "
                                   f"{step} ({_mb(need)} needed, {_mb(free)} free), so it was not tried: "
                                   f"{last_complete(self.directory)}; free some space, then run the same command to resume")

    def wait(self) -> None:
        """Blocks until the last save is on disk."""
        self._finish_pending()
        with _SaveErrors(self, None):
            self.manager.wait_until_finished()

    def close(self) -> None:
        """Waits for the last save and closes the manager, on every exit path of a run; a failed
        save is reported once (here if it was not yet)."""
        try:
            self._finish_pending()
        finally:
            if self._worker is not None:
                self._worker.shutdown()
            # a failure already reported is not reported again
            with contextlib.suppress(Exception) if self.failed else _SaveErrors(self, None):
                self.manager.close()

    def _size(self, step: int) -> int:
        if step not in self._sizes:
            folder = os.path.join(self.directory, str(step))
            self._sizes[step] = sum(os.path.getsize(os.path.join(root, name))
                                    for root, _, names in os.walk(folder) for name in names)
        return self._sizes[step]

    def _check_step(self, step: int | None) -> int:
        steps = self.steps()
        if not steps:
            raise UserError(f"no complete checkpoint in {self.directory}")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise UserError(f"no checkpoint at step {step} in {self.directory}; "
                            f"available: {', '.join(map(str, steps))}")
        return step

    def read_json(self, step: int | None = None) -> tuple[int, dict, dict]:
        """(step, config dict, meta dict) of a checkpoint (the latest if step is None)."""
        step = self._check_step(step)
        restored = self._restore(step, config=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore())
        meta = restored["meta"]
        if meta.get("format") not in READABLE_FORMATS:
            raise UserError(f"checkpoint {step} in {self.directory} has format {meta.get('format')}, this "
                            f"ganjax reads formats {', '.join(map(str, READABLE_FORMATS))}; use the ganjax version "
                            f"that wrote it, or --restart to start over")
        return step, restored["config"], meta

    def restore(self, template: GANState, step: int | None = None) -> GANState:
        """The full train state of a checkpoint; `template` (a fresh state) gives shapes and structure."""
        step = self._check_step(step)
        items = split_state(template)
        restored = self._restore(step, generator=ocp.args.StandardRestore(_abstract(items["generator"])),
                                 train=ocp.args.StandardRestore(_abstract(items["train"])))
        return join_state(template, restored["generator"], restored["train"])

    def restore_generator(self, template: dict, step: int | None = None) -> dict:
        """G's {'params', <collections>[, 'ema']} only; D and the optimizer states are not read."""
        step = self._check_step(step)
        return self._restore(step, generator=ocp.args.StandardRestore(_abstract(template)))["generator"]

    def _restore(self, step: int, **args) -> dict:
        try:
            return self.manager.restore(step, args=ocp.args.Composite(**args))
        except Exception as e:  # orbax raises many types for a damaged or foreign folder
            older = [s for s in self.steps() if s < step]
            hint = f"pass --step={older[-1]} to use an older one, or " if older else ""
            code = os_errno(e)
            reason = os.strerror(code) if code else "its files are damaged or incomplete"
            raise UserError(f"checkpoint {step} in {self.directory} cannot be read ({reason}); {hint}--restart "
                            f"to start over") from e

    @property
    def set_aside_dir(self) -> str:
        return self.directory + "-set-aside"

    def set_aside(self, steps: list[int]) -> None:
        """Moves the given checkpoints out of the run (to `set_aside_dir`), e.g. those after the step a
        run resumes from, so that they are neither mixed with the new trajectory nor lost."""
        self.manager.wait_until_finished()
        os.makedirs(self.set_aside_dir, exist_ok=True)
        for step in steps:
            target = os.path.join(self.set_aside_dir, str(step))
            shutil.rmtree(target, ignore_errors=True)
            os.replace(os.path.join(self.directory, str(step)), target)
        self.manager.reload()


class _SaveErrors:
    """A context that turns an OS error of a save (orbax and tensorstore wrap them: a ValueError
    with `os_error_code='28'`) into one EnvironmentFault naming the last complete checkpoint,
    after removing the failed save's temporary folder."""

    def __init__(self, checkpoints: Checkpoints, step: int | None):
        self.checkpoints, self.step = checkpoints, step

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        code = os_errno(error) if isinstance(error, Exception) and not isinstance(error, EnvironmentFault) else None
        if code is None:
            return False
        ckpt = self.checkpoints
        ckpt.failed = True
        remove_unfinished(ckpt.directory)
        which = f"checkpoint {self.step}" if self.step is not None else "a checkpoint"
        if code in (errno.ENOSPC, errno.EDQUOT):
            raise EnvironmentFault(no_space_message(os.path.dirname(ckpt.directory))) from error
        raise EnvironmentFault(f"cannot save {which} in {ckpt.directory} ({os.strerror(code)}): "
                               f"{last_complete(ckpt.directory)}; fix that, then run the same command to resume") from error


def complete_steps(directory: str) -> list[int]:
    """The steps of the complete checkpoints in `directory` (orbax renames a checkpoint's folder
    to its step once the save is complete)."""
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def last_complete(directory: str) -> str:
    steps = complete_steps(directory)
    return (f"the last complete checkpoint is step {steps[-1]} in {directory}" if steps
            else f"there is no complete checkpoint in {directory} yet")


def no_space_message(workdir: str) -> str:
    """The line for a full disk during a run: what is safe, and how to go on."""
    return (f"no space left on {os.path.abspath(workdir)}: {last_complete(checkpoint_dir(workdir))}; free some "
            f"space, then run the same command to resume")


def os_errno(error: BaseException | None) -> int | None:
    """The errno behind an error, also when orbax or tensorstore wrap it (tensorstore's messages
    end in `[os_error_code='28']`); None if there is none."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno:
            return error.errno
        match = re.search(r"os_error_code='(\d+)'", str(error))
        if match:
            return int(match.group(1))
        error = error.__cause__ or error.__context__
    return None


def _mb(nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MB"


def remove_unfinished(directory: str) -> None:
    """Deletes the temporary folders of saves that never finished (a process killed while orbax
    wrote them); orbax only renames a checkpoint to its step once it is complete."""
    if not os.path.isdir(directory) or jax.process_index() != 0:
        return
    for name in os.listdir(directory):
        if TMP_MARKER in name:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def delete_checkpoints(workdir: str) -> None:
    """Removes every checkpoint of a workdir (for --restart); call before opening a manager on it."""
    shutil.rmtree(checkpoint_dir(workdir), ignore_errors=True)


def config_changes(saved: dict, config: Config) -> tuple[list[str], list[str]]:
    """Compares a checkpoint's config with the new run's: (structural mismatches, other changes),
    each as 'name: saved -> new' lines."""
    structural, other = [], []
    for name, new in dataclasses.asdict(config).items():
        old, kind = saved.get(name, legacy_value(name)), resume_kind(name)
        if old == new or kind == PLACEMENT:
            continue
        line = f"--{name}: {old!r} in the checkpoint, {new!r} now"
        (structural if kind == STRUCTURAL else other).append(line)
    return structural, other


def check_resume_config(saved: dict, config: Config, directory: str) -> list[str]:
    """UserError on a structural change; returns the notes on the other changes."""
    structural, other = config_changes(saved, config)
    if structural:
        raise UserError(f"cannot resume the run in {directory} with a different setting: {structural[0]}"
                        f"{' (and more)' if len(structural) > 1 else ''}; use the saved setting, "
                        f"another --workdir, or --restart to start over")
    return other


def describe(meta: dict) -> str:
    return f"step {meta['step']} (epoch {meta.get('epoch', '?')}, batch {meta.get('batch', '?')})"


__all__ = ["Checkpoints", "FORMAT", "check_resume_config", "checkpoint_dir", "complete_steps", "config_changes",
           "delete_checkpoints", "describe", "join_state", "last_complete", "no_space_message", "os_errno",
           "remove_unfinished", "split_state"]
