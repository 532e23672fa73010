"""What a run logs, where people look: `metrics.jsonl`, TensorBoard events, a PNG of the curves.

TensorBoard event files are written with tensorboardX (no TensorFlow needed) into
`<workdir>/tensorboard`; `tensorboard --logdir <workdir>` shows the scalars and sample grids.
On resume, records past the resumed step are dropped from the JSON log and TensorBoard is told
to purge them (`purge_step`), so each step is logged once.

`metrics.jsonl` survives a `kill -9` or a full disk: each record is appended as one whole line
by one `write(2)` on an O_APPEND file (a short write is cut back off), so it reaches the file at
the end of its chunk; a torn last line that a crash still leaves is dropped with one warning on
resume, and the resumed log is rewritten into a temporary file that replaces the old one
(`os.replace`) only when complete.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import sys

from ganjax.errors import warn
from ganjax.visualize import save_figure

_BOOKKEEPING = ("step", "epoch", "wall_time")


def is_training_record(record: dict) -> bool:
    """A chunk's record (the train step's metrics) rather than an evaluation's."""
    return "steps_per_s" in record


def section(name: str, record: dict) -> str:
    """The TensorBoard section of a scalar, from the kind of record it is in: the losses, the
    speed, the train step's other metrics (critic values, regularizer terms), or evaluation."""
    if name.startswith("loss_"):
        return "loss"
    if name == "steps_per_s":
        return "speed"
    return "critic" if is_training_record(record) else "eval"


def read_records(path: str) -> tuple[list[dict], int]:
    """(the records of a JSON-lines log, the number of lines that are not a JSON record): a line
    torn by an interrupted write, or damage."""
    if not os.path.exists(path):
        return [], 0
    records, bad = [], 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad += 1
    return records, bad


def read_log(path: str) -> list[dict]:
    """The records of a JSON-lines log, without any torn or damaged line."""
    return read_records(path)[0]


class RunLog:
    """Appends records to metrics.jsonl and TensorBoard; `enabled=False` (other processes of a
    multi-host run) makes every call a no-op."""

    def __init__(self, workdir: str, resume_step: int, enabled: bool = True, tensorboard: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        records, bad = read_records(self.path)
        if bad:
            warn(f"dropped {bad} unreadable line{'s' if bad > 1 else ''} of {self.path} (a write cut short, e.g. "
                 f"by kill -9 or a full disk)")
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records if r.get("step", 0) <= resume_step)
        os.replace(tmp, self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        if tensorboard:
            self.writer = summary_writer_class()(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

    def write(self, record: dict) -> None:
        """One record {'step': ..., name: value, ...}; numbers also go to TensorBoard."""
        if not self.enabled:
            return
        self._append((json.dumps(record) + "\n").encode())
        if self.writer is not None:
            for name, value in record.items():
                if name not in _BOOKKEEPING and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"{section(name, record)}/{name}", value, record["step"])

    def _append(self, line: bytes) -> None:
        """`line` at the end of the log in one write(2), or not at all: a short write (a full disk)
        is cut back off and raised as ENOSPC."""
        size = os.fstat(self.fd).st_size
        written = 0
        try:
            written = os.write(self.fd, line)
        finally:
            if written != len(line):
                os.ftruncate(self.fd, size)
        if written != len(line):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)

    def image(self, tag: str, path: str, step: int) -> None:
        """A PNG written elsewhere (a sample grid or toy plot) as a TensorBoard image: its bytes
        as they are (TensorBoard's Image summary holds an encoded PNG), not decoded and encoded
        again as add_image would (30 ms of every epoch end for a 342x342 grid)."""
        if self.writer is not None:
            from PIL import Image
            from tensorboardX.proto.summary_pb2 import Summary

            with open(path, "rb") as f:
                png = f.read()
            with Image.open(io.BytesIO(png)) as im:
                width, height, colorspace = im.width, im.height, len(im.getbands())
            image = Summary.Image(height=height, width=width, colorspace=colorspace, encoded_image_string=png)
            self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def close(self) -> None:
        if self.enabled and self.fd is not None:
            os.close(self.fd)
            self.fd = None
            if self.writer is not None:
                self.writer.close()


def summary_writer_class():
    """tensorboardX's SummaryWriter, imported without torch. tensorboardX imports torch whenever it
    is installed, only to accept torch tensors (1.2 s of every run's start on 2 CPU cores);
    ganjax passes numpy arrays. A None entry in sys.modules makes `import torch` raise ImportError
    (the import system's documented behaviour), which tensorboardX handles."""
    if "torch" in sys.modules or "tensorboardX" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


def plot_curves(log_path: str, out_path: str, title: str = "") -> str | None:
    """A PNG of the loss curves (and of the Wasserstein estimate and evaluation metrics when
    logged) against steps; None if the log is empty."""
    records = read_log(log_path)
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"loss": [], "critic": [], "eval": []}
    for r in records:
        for k in r:
            kind = section(k, r)
            if k not in _BOOKKEEPING and kind in names and k not in names[kind]:
                names[kind].append(k)
    critic = [k for k in names["critic"] if k not in ("D_real", "D_fake")]  # means of D(x): in TensorBoard only
    evaluation = sorted(k for k in names["eval"] if not k.endswith(("_std", "_real", "_total")))
    panels = [("losses", names["loss"]), ("critic", critic)] + [(name, [name]) for name in evaluation]
    panels = [(t, [n for n in names if any(n in r for r in records)]) for t, names in panels]
    panels = [(t, names) for t, names in panels if names]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (panel_title, names) in zip(axes[0], panels):
        for name in names:
            points = [(r["step"], r[name]) for r in records if isinstance(r.get(name), (int, float))]
            if points:
                ax.plot(*zip(*points), label=name, marker="." if len(points) < 30 else None)
            floor = [r[f"{name}_real"] for r in records if f"{name}_real" in r]
            if floor:
                ax.axhline(floor[-1], color="gray", ls="--", lw=1, label=f"{name} real vs real")
        ax.set_title(panel_title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return save_figure(fig, out_path)
