"""Running a planned suite with the pipeline's stage functions, sharing work between cells.

Folder layout under the bench's ``out`` folder:
``teachers/<pretrainer>-<architecture>-<key>/{squeeze,align,teacher.json}`` (one per distinct teacher,
``scdd.bench.teachers``) and ``cells/<row>/<labels>/ipc<N>/seed<S>/{recover|coreset,relabel,posttrain}``
with the cell's ``manifest.json`` (its resolved config and its label teacher's, the teachers,
artifacts, stage times and top-1; ``scdd.bench.plan.load_cell`` rebuilds a one-cell plan from it,
which ``scdd bench --rerun-cell`` runs again). ``results.json`` and ``results.csv`` are rewritten
atomically after every finished (cell, seed), and a bench run again into its folder reuses the
teachers and cells that finished there (``scdd.bench.reuse``), so an interrupted bench keeps what it
measured and continues.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd.artifacts import write_json
from scdd.bench.plan import Cell, Plan, image_key, teacher_key
from scdd.bench.results import CellResult, write_results
from scdd.bench.reuse import CELL_MANIFEST, bench_path, recorded_cell, relative
from scdd.bench.teachers import Teacher, bench_teacher
from scdd.config import RunConfig, to_dict
from scdd.data.base import DatasetSplits
from scdd.data.loading import load_dataset
from scdd.progress import SILENT, Progress
from scdd.run_folder import package_versions
from scdd.stages.coreset import coreset
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel


@dataclass
class Produced:
    """A shared artifact, what producing it cost, and what its stage measured."""

    path: Path
    seconds: float
    metrics: dict[str, Any] = field(default_factory=dict)


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
    reuse: bool = True  # reuse the teachers and cells that finished in ``out_dir`` (scdd.bench.reuse)

    def __post_init__(self) -> None:
        if self.data is None:
            self.data = load_dataset(self.plan.base)

    @property
    def dataset(self) -> DatasetSplits:
        """The suite's dataset (given, or loaded by ``__post_init__``)."""
        assert self.data is not None
        return self.data

    # --------------------------------------------------------------- shared work

    def teacher(self, config: RunConfig) -> Teacher:
        """The squeeze + align of ``config`` (shared by every cell and seed that names the same one)."""
        key = teacher_key(config)
        if key not in self.teachers:
            folder = self.out_dir / "teachers" / _slug(f"{config.squeeze.pretrainer}-{config.squeeze.architecture}-{key}")
            teacher = bench_teacher(config, self.dataset, folder, key, device=self.device, progress=self.progress, reuse=self.reuse)
            self.teachers[key] = teacher
            self.progress.log(
                f"teacher {config.squeeze.pretrainer}/{config.squeeze.architecture} ({config.align.aligner}): "
                f"{self.split_name} top-1 {teacher.top1:.1f}% ({teacher.seconds:.0f} s{', reused' if teacher.reused else ''})"
            )
        return self.teachers[key]

    def classifiers(self, configs: tuple[RunConfig, ...]) -> tuple[str, ...]:
        """The classifier files of these teachers (trained here when first named), as the stages' ``extra_teachers`` take them."""
        return tuple(str(self.teacher(config).classifier) for config in configs)

    @property
    def split_name(self) -> str:
        return "validation" if self.plan.base.eval_split == "validation" else "held-out"

    def images(self, cell: Cell, seed: int, folder: Path) -> Produced:
        """The cell's distilled set for ``seed``: recovered from its teacher, or a real-image coreset."""
        config = cell.config
        key = (*image_key(cell), seed)
        if key not in self.image_sets:
            if cell.row.method == "distill":
                result = recover(
                    dataclasses.replace(config.recover, extra_teachers=self.classifiers(cell.extra_teachers)),
                    self.teacher(config).classifier,
                    folder / "recover",
                    device=self.device,
                    seed=seed,
                    progress=self.progress,
                    data=self.dataset,
                )
            else:
                selection = cell.row.selection or ""
                result = coreset(
                    selection,
                    self.dataset,
                    cell.ipc,
                    folder / "coreset",
                    seed=seed,
                    device=self.device,
                    progress=self.progress,
                    classifier_path=self.teacher(config).classifier if selection == "herding" else None,
                )
            keep = ("teacher_top1_on_distilled", "loss_bn_first", "loss_bn_last", "loss_ce_first", "loss_ce_last")
            metrics = {name: result.metrics[name] for name in keep if name in result.metrics}
            self.image_sets[key] = Produced(result.artifacts["distilled"], result.seconds, metrics)
        return self.image_sets[key]

    @staticmethod
    def label_key(cell: Cell, seed: int, images: Produced) -> tuple:
        """Identifies a label set: the same teacher and relabelling of the same images with the same seed."""
        return (cell.label_key, str(images.path), repr(cell.config.relabel), seed)

    def soft_labels(self, cell: Cell, seed: int, images: Produced, folder: Path) -> Produced | None:
        """The label teacher's crop-level soft labels of ``images`` (shared by cells with identical labels)."""
        config = cell.config
        if config.posttrain.labels != "soft":
            return None
        key = self.label_key(cell, seed, images)
        if key not in self.labels:
            result = relabel(
                dataclasses.replace(config.relabel, extra_teachers=self.classifiers(cell.label_extras)),
                self.teacher(cell.label_teacher).classifier,
                images.path,
                folder / "relabel",
                device=self.device,
                seed=seed,
                progress=self.progress,
            )
            self.labels[key] = Produced(result.artifacts["soft_labels"], result.seconds)
        return self.labels[key]

    # --------------------------------------------------------------- one cell

    def identity(self, cell: Cell, seed: int) -> dict[str, Any]:
        """What a cell's record must match to be reused (``scdd.bench.reuse``)."""
        return {
            "ipc": cell.ipc,
            "seed": seed,
            "table": cell.table,
            "labels": cell.labels,
            "eval_split": self.plan.base.eval_split,
            "device": str(self.device),
            "config": to_dict(cell.config),
            "label_config": to_dict(cell.label_teacher),
            "extra_teachers": [to_dict(config) for config in cell.extra_teachers],
            "label_extras": [to_dict(config) for config in cell.label_extras],
        }

    def restore(self, cell: Cell, seed: int, recorded: dict[str, Any]) -> tuple[Produced, Produced | None]:
        """A reused cell's images and labels, shared with the cells still to run as if just produced."""
        artifacts, stages = recorded["artifacts"], next(iter(recorded["seconds"].values()))
        kind = "recover" if cell.row.method == "distill" else "coreset"
        made = Produced(bench_path(self.out_dir, artifacts["distilled"]), stages[kind], recorded.get("image_metrics") or {})
        images = self.image_sets.setdefault((*image_key(cell), seed), made)
        if not artifacts.get("soft_labels"):
            return images, None
        labelled = Produced(bench_path(self.out_dir, artifacts["soft_labels"]), stages["relabel"])
        return images, self.labels.setdefault(self.label_key(cell, seed, images), labelled)

    def run_cell(self, cell: Cell, seed: int, result: CellResult) -> bool:
        """Run one cell and seed into its folder, or reuse its finished record there; returns whether it was reused."""
        folder = cell_folder(self.out_dir, cell, seed)
        teacher = self.teacher(cell.config) if cell.needs_teacher else None
        labeller = self.teacher(cell.label_teacher) if cell.config.posttrain.labels == "soft" else None
        identity = self.identity(cell, seed)
        recorded = recorded_cell(folder, self.out_dir, identity) if self.reuse else None
        if recorded is not None:
            images, _ = self.restore(cell, seed, recorded)
            for name, stages in recorded["seconds"].items():
                result.add(name, seed, recorded["metrics"][name]["top1"], recorded["metrics"][name]["top5"], stages)
        else:
            images = self.images(cell, seed, folder)
            self.train_students(cell, seed, folder, images, identity, result)
        result.image_metrics.append({"seed": seed, **images.metrics})
        if teacher is not None:
            result.teacher_seconds, result.teacher_top1 = teacher.seconds, teacher.top1
        if labeller is not None:
            result.label_teacher_top1 = labeller.top1
        return recorded is not None

    def train_students(self, cell: Cell, seed: int, folder: Path, images: Produced, identity: dict[str, Any], result: CellResult) -> None:
        """Relabel ``images``, post-train and evaluate each student, and write the cell's manifest."""
        labels = self.soft_labels(cell, seed, images, folder)
        shared = {"recover" if cell.row.method == "distill" else "coreset": images.seconds}
        if labels is not None:
            shared["relabel"] = labels.seconds
        students, metrics, seconds = {}, {}, {}
        for student in cell.config.posttrain.students:
            config = dataclasses.replace(cell.config.posttrain, students=(student,))
            trained = posttrain(
                config,
                images.path,
                labels.path if labels else None,
                folder / "posttrain",
                device=self.device,
                seed=seed,
                progress=self.progress,
            )
            evaluated = evaluate(trained.artifacts, self.dataset, device=self.device)
            (name,) = evaluated.metrics
            metrics[name] = {key: evaluated.metrics[name][key] for key in ("top1", "top5")}
            students.update({key: relative(self.out_dir, path) for key, path in trained.artifacts.items()})
            seconds[name] = {**shared, "posttrain": trained.seconds, "evaluate": evaluated.seconds}
            result.add(name, seed, metrics[name]["top1"], metrics[name]["top5"], seconds[name])
        write_json(
            folder / CELL_MANIFEST,
            {
                "scdd_bench_cell": 1,
                "suite": self.plan.suite.name,
                "row": dataclasses.asdict(cell.row),
                **identity,
                "versions": package_versions(),
                "teachers": {
                    "images": str(self.teacher(cell.config).classifier) if cell.needs_teacher else None,
                    "labels": str(self.teacher(cell.label_teacher).classifier) if labels else None,
                    "extra_images": list(self.classifiers(cell.extra_teachers)),
                    "extra_labels": list(self.classifiers(cell.label_extras)) if labels else [],
                },
                "artifacts": {
                    "distilled": relative(self.out_dir, images.path),
                    "soft_labels": relative(self.out_dir, labels.path) if labels else None,
                    "students": students,
                },
                "metrics": metrics,
                "seconds": seconds,
                "image_metrics": images.metrics,
            },
        )


def cell_folder(out_dir: Path, cell: Cell, seed: int) -> Path:
    """``cells/<row>/<labels>/ipc<N>/seed<S>``: one run folder per cell and seed."""
    labels = _slug(cell.labels) if cell.labels else "own-teacher"
    return Path(out_dir) / "cells" / _slug(cell.row.label) / labels / f"ipc{cell.ipc}" / f"seed{seed}"


def run_plan(
    plan: Plan,
    out_dir: Path,
    *,
    device: torch.device,
    progress: Progress = SILENT,
    data: DatasetSplits | None = None,
    reuse: bool = True,
) -> dict[str, Any]:
    """Run every (cell, seed) of ``plan``, reusing what finished in ``out_dir`` unless ``reuse`` is off;
    returns the results document also written to ``out_dir``."""
    bench = BenchRun(plan, Path(out_dir), device, progress, data=data, reuse=reuse)
    results = [CellResult.for_cell(cell) for cell in plan.cells]
    started = time.perf_counter()
    total = len(plan.cells) * len(plan.suite.seeds)
    done = 0
    task = progress.task(f"bench {plan.suite.name}", total)
    try:
        for seed in plan.suite.seeds:
            for cell, result in zip(plan.cells, results, strict=False):
                reused = bench.run_cell(cell, seed, result)
                done += 1
                task.advance(1)
                scores = "  ".join(f"{s} {values['top1'][-1]:.1f}%" for s, values in result.students.items())
                progress.log(f"[{done}/{total}] {cell.row.label}, IPC {cell.ipc}, seed {seed}: {scores}{' (reused)' if reused else ''}")
                teachers = {key: teacher.summary for key, teacher in bench.teachers.items()}
                document = write_results(out_dir, plan, results, time.perf_counter() - started, complete=done == total, teachers=teachers)
    finally:
        task.close()
    return document


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower() or "row"
