"""Loss curves of a run: every metric a stage's loop reports, as CSV (always) and TensorBoard scalars (optional).

Loops report through ``scdd.progress`` (``task.advance(steps, loss=..., ...)``); ``CurveRecorder``
wraps the progress the run shows and keeps each reported value with its loop, unit (step, batch or
epoch) and wall time. After each stage ``write_stage`` writes them to ``<stage>/curves.csv``
(atomically). With a TensorBoard folder, each value is also a scalar ``<loop>/<metric>`` at its
unit, and ``add_metrics`` adds the run's final metrics (teacher and student top-1 / top-5);
TensorBoard is the optional extra ``pip install 'scdd[tensorboard]'``.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scdd.artifacts import atomic_path
from scdd.errors import ConfigError
from scdd.progress import Progress, Task

CURVES_FILE = "curves.csv"
TENSORBOARD_DIR = "tensorboard"  # in the run folder
COLUMNS = ("loop", "unit", "epoch", "metric", "value", "seconds")
TENSORBOARD_HINT = "--log tensorboard needs the optional 'tensorboard' package: pip install 'scdd[tensorboard]'"


def tensorboard_writer(folder: Path, *, create: bool = True):
    """A ``SummaryWriter`` into ``folder`` (``None`` without ``create``: under torchrun only rank 0 writes),
    or a one-line error when the extra is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # lazy: the optional extra
    except ImportError:
        raise ConfigError(TENSORBOARD_HINT) from None
    return SummaryWriter(log_dir=str(folder)) if create else None


class _RecordingTask:
    def __init__(self, recorder: CurveRecorder, loop: str, inner: Task) -> None:
        self.recorder, self.loop, self.inner, self.units = recorder, loop, inner, 0

    def advance(self, steps: int = 1, **metrics: float) -> None:
        self.units += steps
        self.recorder.record(self.loop, self.units, metrics)
        self.inner.advance(steps, **metrics)

    def close(self) -> None:
        self.inner.close()


class CurveRecorder:
    """A ``Progress`` that passes everything to ``inner`` and keeps the metrics loops report."""

    def __init__(self, inner: Progress, writer=None) -> None:
        self.inner, self.writer = inner, writer
        self.rows: list[tuple[Any, ...]] = []
        self.started = time.perf_counter()
        self.stage = ""

    def task(self, description: str, total: int) -> Task:
        return _RecordingTask(self, description, self.inner.task(description, total))

    def log(self, message: str) -> None:
        self.inner.log(message)

    def record(self, loop: str, unit: int, metrics: Mapping[str, float]) -> None:
        epoch = metrics.get("epoch", "")
        seconds = round(time.perf_counter() - self.started, 3)
        for name, value in metrics.items():
            if name == "epoch":
                continue
            metric = f"{name}/epoch" if epoch != "" else name  # an epoch's mean, beside per-step values
            self.rows.append((loop, unit, epoch, metric, float(value), seconds))
            if self.writer is not None:
                self.writer.add_scalar(f"{self.stage}/{loop}/{metric}" if self.stage else f"{loop}/{metric}", float(value), unit)

    def begin_stage(self, stage: str) -> None:
        self.stage, self.rows = stage, []

    def write_stage(self, folder: Path) -> Path | None:
        """The current stage's values as ``folder/curves.csv`` (nothing when its loops reported none)."""
        if not self.rows:
            return None
        buffer = io.StringIO()
        table = csv.writer(buffer, lineterminator="\n")
        table.writerow(COLUMNS)
        table.writerows(self.rows)
        path = Path(folder) / CURVES_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(buffer.getvalue())
        if self.writer is not None:
            self.writer.flush()
        return path

    def add_metrics(self, metrics: Mapping[str, Mapping[str, Any]]) -> None:
        """Final metrics (``{"teacher": {"top1": ...}, "students": {name: {...}}}``) as TensorBoard scalars."""
        if self.writer is None:
            return
        for group, values in metrics.items():
            entries = values.items() if group == "students" else [(group, values)]
            for name, numbers in entries:
                for key in ("top1", "top5"):
                    if isinstance(numbers, Mapping) and key in numbers:
                        self.writer.add_scalar(f"metrics/{name}/{key}", float(numbers[key]), 0)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
