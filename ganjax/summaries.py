"""What a run logs, where people look: `metrics.jsonl`, TensorBoard events, a PNG of the curves.

TensorBoard event files are written with tensorboardX (no TensorFlow needed) into
`<workdir>/tensorboard`; `tensorboard --logdir <workdir>` shows the scalars and sample grids.
On resume, records past the resumed step are dropped from the JSON log and TensorBoard is told
to purge them (`purge_step`), so each step is logged once.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

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


def read_log(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class RunLog:
    """Appends records to metrics.jsonl and TensorBoard; `enabled=False` (other processes of a
    multi-host run) makes every call a no-op."""

    def __init__(self, workdir: str, resume_step: int, enabled: bool = True, tensorboard: bool = True):
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        records = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
        with open(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        self.file = open(self.path, "a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=resume_step + 1)

    def write(self, record: dict) -> None:
        """One record {'step': ..., name: value, ...}; numbers also go to TensorBoard."""
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            for name, value in record.items():
                if name not in _BOOKKEEPING and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(f"{section(name, record)}/{name}", value, record["step"])

    def image(self, tag: str, path: str, step: int) -> None:
        """A PNG written elsewhere (a sample grid or toy plot) as a TensorBoard image."""
        if self.writer is not None:
            from PIL import Image

            pixels = np.asarray(Image.open(path).convert("RGB"))
            self.writer.add_image(tag, pixels, step, dataformats="HWC")

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.writer is not None:
                self.writer.close()


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
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
    return out_path
