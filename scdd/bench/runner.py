"""Running a planned suite with the pipeline's stage functions, sharing work between cells.

Folder layout under the bench's ``out`` folder:
``teachers/<pretrainer>-<architecture>-<key>/{squeeze,align}`` (one per distinct teacher) and
``cells/<row>/ipc<N>/seed<S>/{recover|coreset,relabel,posttrain}``. ``results.json`` and
``results.csv`` are rewritten atomically after every finished (cell, seed), so an interrupted
bench keeps what it measured.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd.bench.plan import Cell, Plan
from scdd.bench.results import CellResult, write_results
from scdd.data.base import DatasetSplits
from scdd.data.loading import load_dataset
from scdd.pipeline import train_teacher
from scdd.progress import SILENT, Progress
from scdd.stages.coreset import coreset
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel


@dataclass
class Teacher:
    classifier: Path
    seconds: float
    top1: float


@dataclass
class Produced:
    """A shared artifact and what producing it cost."""

    path: Path
    seconds: float


@dataclass
class BenchRun:
    plan: Plan
    out_dir: Path
    device: torch.device
    progress: Progress = SILENT
    teachers: dict[str, Teacher] = field(default_factory=dict)
    image_sets: dict[tuple, Produced] = field(default_factory=dict)
    labels: dict[tuple, Produced] = field(default_factory=dict)
    data: DatasetSplits | None = None

    def __post_init__(self) -> None:
        if self.data is None:
            self.data = load_dataset(self.plan.base)

    # --------------------------------------------------------------- shared work

    def teacher(self, cell: Cell) -> Teacher:
        key = cell.teacher_key
        if key not in self.teachers:
            config = cell.config
            folder = self.out_dir / "teachers" / _slug(f"{config.squeeze.pretrainer}-{config.squeeze.architecture}-{key}")
            squeezed, aligned = train_teacher(
                config, self.data, folder, device=self.device, seed=config.seed, progress=self.progress
            )
            self.teachers[key] = Teacher(
                aligned.artifacts["classifier"], squeezed.seconds + aligned.seconds, aligned.metrics["teacher_heldout_top1"]
            )
            self.progress.log(
                f"teacher {config.squeeze.pretrainer}/{config.squeeze.architecture}: held-out top-1 "
                f"{aligned.metrics['teacher_heldout_top1']:.1f}% ({self.teachers[key].seconds:.0f} s)"
            )
        return self.teachers[key]

    def images(self, cell: Cell, seed: int, folder: Path) -> Produced:
        """The cell's distilled set for ``seed``: recovered from its teacher, or a real-image coreset."""
        config = cell.config
        if cell.row.method == "distill":
            key = ("recover", cell.teacher_key, repr(config.recover), seed)
        else:
            teacher_key = cell.teacher_key if cell.row.selection == "herding" else None  # herding reads its features
            key = ("coreset", cell.row.selection, teacher_key, cell.ipc, seed)
        if key not in self.image_sets:
            if cell.row.method == "distill":
                result = recover(
                    config.recover, self.teacher(cell).classifier, folder / "recover",
                    device=self.device, seed=seed, progress=self.progress,
                )
                self.image_sets[key] = Produced(result.artifacts["distilled"], result.seconds)
            else:
                selection = cell.row.selection or ""
                result = coreset(
                    selection, self.data, cell.ipc, folder / "coreset", seed=seed, device=self.device, progress=self.progress,
                    classifier_path=self.teacher(cell).classifier if selection == "herding" else None,
                )
                self.image_sets[key] = Produced(result.artifacts["distilled"], result.seconds)
        return self.image_sets[key]

    def soft_labels(self, cell: Cell, seed: int, images: Produced, folder: Path) -> Produced | None:
        config = cell.config
        if config.posttrain.labels != "soft":
            return None
        key = (cell.teacher_key, str(images.path), repr(config.relabel), seed)
        if key not in self.labels:
            result = relabel(
                config.relabel, self.teacher(cell).classifier, images.path, folder / "relabel",
                device=self.device, seed=seed, progress=self.progress,
            )
            self.labels[key] = Produced(result.artifacts["soft_labels"], result.seconds)
        return self.labels[key]

    # --------------------------------------------------------------- one cell

    def run_cell(self, cell: Cell, seed: int, result: CellResult) -> None:
        folder = self.out_dir / "cells" / _slug(cell.row.label) / f"ipc{cell.ipc}" / f"seed{seed}"
        teacher = self.teacher(cell) if cell.needs_teacher else None
        images = self.images(cell, seed, folder)
        labels = self.soft_labels(cell, seed, images, folder)
        shared = {"recover" if cell.row.method == "distill" else "coreset": images.seconds}
        if labels is not None:
            shared["relabel"] = labels.seconds
        for student in cell.config.posttrain.students:
            config = dataclasses.replace(cell.config.posttrain, students=(student,))
            trained = posttrain(
                config, images.path, labels.path if labels else None, folder / "posttrain",
                device=self.device, seed=seed, progress=self.progress,
            )
            evaluated = evaluate(trained.artifacts, self.data, device=self.device)
            (name,) = evaluated.metrics
            metrics = evaluated.metrics[name]
            stages = {**shared, "posttrain": trained.seconds, "evaluate": evaluated.seconds}
            result.add(name, seed, metrics["top1"], metrics["top5"], stages)
        if teacher is not None:
            result.teacher_seconds, result.teacher_top1 = teacher.seconds, teacher.top1


def run_plan(
    plan: Plan, out_dir: Path, *, device: torch.device, progress: Progress = SILENT, data: DatasetSplits | None = None
) -> dict[str, Any]:
    """Run every (cell, seed) of ``plan``; returns the results document also written to ``out_dir``."""
    bench = BenchRun(plan, Path(out_dir), device, progress, data=data)
    results = [CellResult.for_cell(cell) for cell in plan.cells]
    started = time.perf_counter()
    total = len(plan.cells) * len(plan.suite.seeds)
    done = 0
    task = progress.task(f"bench {plan.suite.name}", total)
    try:
        for seed in plan.suite.seeds:
            for cell, result in zip(plan.cells, results):
                bench.run_cell(cell, seed, result)
                done += 1
                task.advance(1)
                scores = "  ".join(f"{s} {values['top1'][-1]:.1f}%" for s, values in result.students.items())
                progress.log(f"[{done}/{total}] {cell.row.label}, IPC {cell.ipc}, seed {seed}: {scores}")
                document = write_results(out_dir, plan, results, time.perf_counter() - started, complete=done == total)
    finally:
        task.close()
    return document


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "row"
