"""Data parallelism: which devices a run trains on, and the train state on and off them.

One training program serves every layout. With one device in all, the chunk is `jax.jit`-ed and
the state is a plain pytree. With several devices (on one host, or on several hosts joined by
`jax.distributed`), the same chunk runs under `jax.pmap` over the axis `AXIS`: the state has a
leading device axis (one identical copy per local device), each device trains on its slice of the
global batch, and gradients, losses and batch-norm statistics are averaged over `AXIS` inside the
steps (ganjax.steps), so that N devices follow the one-device run with the same global batch.

Multi-host: every process runs the same command with its own `--process_id` (or a cluster
launcher's environment); `initialize` joins them before anything touches the devices, and the
pmap then spans the devices of all processes, process after process.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading

import jax
import numpy as np
from jax import lax

from ganjax import xla_options
from ganjax.errors import UserError

AXIS = "batch"  # the pmap axis: the global batch is split along it

# Environments of cluster launchers that jax.distributed.initialize() reads by itself.
LAUNCHER_ENV = ("JAX_COORDINATOR_ADDRESS", "OMPI_MCA_orte_hnp_uri")


def _launched_by_cluster() -> bool:
    return any(v in os.environ for v in LAUNCHER_ENV) or int(os.environ.get("SLURM_NTASKS", "1")) > 1


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None,
               timeout: int = 300) -> None:
    """Joins the processes of a multi-host run (`jax.distributed.initialize`); does nothing for a
    single-process run. Must run before anything touches jax devices.

    A peer that never arrives makes the runtime abort the process with a C++ stack trace; a
    watchdog ends it first with one line (exit status 2) that says what to check."""
    if jax.distributed.is_initialized() or (coordinator is None and not _launched_by_cluster()):
        return
    where = coordinator or "the launcher's coordinator"
    processes = f"{num_processes} processes" if num_processes else "processes"

    def give_up():
        print(f"ganjax.train: error: not all {processes} joined {where} within {timeout} s; start every "
              f"process with the same --coordinator and --num_processes and its own --process_id "
              f"(or raise --init_timeout)", file=sys.stderr, flush=True)
        os._exit(2)

    watchdog = threading.Timer(timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        # A loopback coordinator (tests, one machine) binds there; otherwise jax binds all interfaces.
        local = coordinator is not None and coordinator.startswith(("127.", "localhost:"))
        bind = coordinator if local else None
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, coordinator_bind_address=bind,
                                   initialization_timeout=timeout + 60)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"cannot join the distributed run at {where}: {str(e).strip().splitlines()[0][:200]}") from None
    finally:
        watchdog.cancel()


def is_main_process() -> bool:
    """Whether this process writes logs and samples (process 0)."""
    return jax.process_index() == 0


def sync(name: str) -> None:
    """Waits for every process at the barrier `name` (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def agreed_stop(signum: int | None) -> int | None:
    """The stop request of any process (the largest signal number), the same in every process,
    so that a Ctrl-C or SIGTERM that reaches one process of a multi-host run stops all of them
    at the same chunk boundary, where they save together (orbax's save needs every process).
    One tiny all-gather per chunk; nothing to gather in a single process."""
    if jax.process_count() == 1:
        return signum
    from jax.experimental import multihost_utils
    agreed = int(np.max(multihost_utils.process_allgather(np.int32(signum or 0))))
    return agreed or None


def any_process(flag: bool) -> bool:
    """Whether `flag` is true in any process, the same answer in every process (one tiny
    all-gather), so that a check made by one process (a lock, the free space) stops them all."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils
    return bool(np.max(multihost_utils.process_allgather(np.int32(flag))))


@dataclasses.dataclass(frozen=True)
class Placement:
    """The devices of a run: `local_devices` of this process (the `process`-th), and
    `total_devices`, their number in all processes together."""
    local_devices: tuple
    total_devices: int
    process: int = 0

    @property
    def axis_name(self) -> str | None:
        """AXIS when the steps must average over devices; None on a single device (plain jit)."""
        return AXIS if self.total_devices > 1 else None

    def per_device(self, batch_size: int) -> int:
        return batch_size // self.total_devices

    def compile(self, fn, *example_args, donate_state: bool = True):
        """`fn(state, *args)` compiled for this placement: jit on one device; on several, pmap with
        the state and `data` (the second argument) mapped over the device axis and the remaining
        arguments broadcast. One process compiles ahead of time; several compile on the first call
        (pmap's ahead-of-time executables do not convert host-local arrays)."""
        donate, options = ((0,) if donate_state else ()), xla_options.default_options()
        if self.axis_name is None:
            return jax.jit(fn, donate_argnums=donate).lower(*example_args).compile(options)
        in_axes = (0, 0) + (None,) * (len(example_args) - 2)
        mapped = jax.pmap(fn, AXIS, in_axes=in_axes, donate_argnums=donate, devices=self._pmap_devices())
        return mapped.lower(*example_args).compile(options) if jax.process_count() == 1 else mapped

    def _pmap_devices(self):
        """The run's devices in all processes (the first len(local_devices) of each process), process-major."""
        n = len(self.local_devices)
        by_process: dict[int, list] = {}
        for d in jax.devices():
            by_process.setdefault(d.process_index, []).append(d)
        return [d for p in sorted(by_process) for d in by_process[p][:n]]

    def replicate(self, tree):
        """One copy of `tree` per local device (a leading device axis); unchanged on a single device."""
        if self.axis_name is None:
            return jax.device_put(tree, self.local_devices[0])
        stack = lambda x: np.broadcast_to(np.asarray(x), (len(self.local_devices),) + np.shape(x))
        return jax.tree.map(self.shard, jax.tree.map(stack, tree))

    @property
    def local_slots(self) -> np.ndarray:
        """Positions of this process's devices on the pmap axis (process after process, as in
        `_pmap_devices`): device slot g trains on rows g*b .. (g+1)*b-1 of each global batch."""
        return self.process * len(self.local_devices) + np.arange(len(self.local_devices))

    def shard(self, stacked: np.ndarray):
        """One array per local device (`stacked`'s leading axis, in `local_devices` order) onto those
        devices; on a single device, stacked[0] on it."""
        if self.axis_name is None:
            return jax.device_put(stacked[0], self.local_devices[0])
        mesh = jax.sharding.Mesh(np.array(self.local_devices), (AXIS,))
        return jax.device_put(stacked, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS)))

    def unreplicate(self, tree):
        """The copy on this process's first device (all copies are equal), as host arrays: what is
        saved, sampled and returned, whatever the number of devices."""
        if self.axis_name is None:
            return tree
        return jax.tree.map(lambda x: np.asarray(x.addressable_shards[0].data)[0], tree)


def place(requested: int | None, batch_size: int) -> Placement:
    """The first `requested` local devices of every process (all if None); UserError when there are
    not that many, or when the global batch does not split evenly over all devices."""
    local = jax.local_devices()
    n = len(local) if requested is None else requested
    if n > len(local):
        raise UserError(f"--devices={n} but this process sees {len(local)} {jax.default_backend()} device(s); "
                        f"use --devices={len(local)} or fewer")
    count = n * jax.process_count()
    if batch_size % count:
        smaller = (batch_size // count) * count
        sizes = " or ".join(str(s) for s in (smaller, smaller + count) if s > 0)
        raise UserError(f"--batch_size={batch_size} does not split over {count} devices; use a multiple of "
                        f"{count} ({sizes}), or fewer --devices")
    return Placement(tuple(local[:n]), count, jax.process_index())


def device_slice(x, axis_name: str | None):
    """This device's slice of a global-batch array (leading axis), or all of it off pmap. Drawing
    random numbers for the global batch and slicing them keeps N devices on the one-device run."""
    if axis_name is None:
        return x
    per_device = x.shape[0] // lax.axis_size(axis_name)
    return lax.dynamic_slice_in_dim(x, lax.axis_index(axis_name) * per_device, per_device)


def device_mean(tree, axis_name: str | None):
    """The mean over devices (gradients, losses, metrics); identity off pmap. Each device holds
    the mean over an equal slice, so this is the mean over the global batch."""
    return tree if axis_name is None else lax.pmean(tree, axis_name)
