"""A run's estimated wall time per stage, from unit costs measured on this machine.

Every stage's loop reports its work through ``scdd.progress`` (``task(description, total)``, then
``advance`` per step, batch or epoch). The estimate runs each stage's own code with the run's own
settings and data, in a scratch folder, with a progress object that timestamps those units and
cuts the loop once a few are timed (``scdd.unit_clock``). A stage then costs

    (time to its first unit: setup and warm-up) + (total units - first) x (mean time of a later unit)

so the estimate needs no model of what a unit does, and holds for plugins' loops alike. Stages
take stand-in inputs of the right shapes (untrained backbone and classifier, a distilled set of
the run's size); post-training with stored soft labels is timed with class labels (same crops and
student; the soft-label lookup is a gather), and evaluation from a slice of the held-out split.
The random generators of the process are restored afterwards, so a run after its plan draws the
same numbers as one without. ``shortening`` suggests the setting that brings a long plan under an hour.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scdd.artifacts import save_tensors
from scdd.data.base import DatasetSplits, ImageTensorDataset, dataset_length, iterate_batches
from scdd.errors import ScddError
from scdd.models.build import build_backbone, build_classifier
from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.registry import get_component
from scdd.stages.align import align
from scdd.stages.common import accuracy, info_dict
from scdd.stages.coreset import coreset
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel
from scdd.stages.squeeze import squeeze
from scdd.unit_clock import StageEstimate, TimePlan, unit_clock

EVAL_IMAGES = 512  # held-out images timed for an evaluation estimate
CPU_WARNING_SECONDS = 3600.0


# ----------------------------------------------------------------------------- stand-in inputs


def _save_backbone(config, data: DatasetSplits, folder: Path) -> Path:

    arch = config.squeeze.architecture
    record = ModelRecord("backbone", get_component("architecture", arch).name, dict(config.squeeze.architecture_options), data.info, {})
    return save_model(folder / "backbone.safetensors", build_backbone(arch, data.info, config.squeeze.architecture_options), record)


def _save_classifier(config, data: DatasetSplits, folder: Path) -> Path:

    arch = config.squeeze.architecture
    record = ModelRecord("classifier", get_component("architecture", arch).name, dict(config.squeeze.architecture_options), data.info, {})
    return save_model(folder / "classifier.safetensors", build_classifier(arch, data.info, config.squeeze.architecture_options), record)


def _save_distilled(config, data: DatasetSplits, folder: Path) -> Path:
    """Noise images of the distilled set's size (``ipc`` per class), in the distilled-set artifact."""

    info, ipc = data.info, config.recover.ipc
    images = torch.rand(ipc * info.num_classes, info.channels, info.image_size, info.image_size)
    labels = torch.arange(info.num_classes).repeat_interleave(ipc)
    metadata = {"kind": "distilled", "dataset": info_dict(info), "ipc": ipc, "source": "time-plan stand-in"}
    return save_tensors(folder / "distilled.safetensors", {"images": images, "labels": labels}, metadata)


def _progress_to(action: Callable[..., Any]) -> Callable[[Any], Any]:
    """``action`` taking the unit clock as its ``progress``."""
    return lambda clock: action(progress=clock)


def _without_clock(action: Callable[[], Any]) -> Callable[[Any], Any]:
    """``action``, timed as a whole (it reports no progress units)."""
    return lambda _clock: action()


def _held_out_slice(data: DatasetSplits) -> tuple[DatasetSplits, float]:
    """A held-out split of at most ``EVAL_IMAGES`` images, and the factor to the whole split's time."""
    count = dataset_length(data.val)
    if count <= EVAL_IMAGES:
        return data, 1.0

    images, labels = next(iterate_batches(torch.utils.data.Subset(data.val, range(EVAL_IMAGES)), EVAL_IMAGES))
    return dataclasses.replace(data, val=ImageTensorDataset(images, labels)), count / EVAL_IMAGES


# ----------------------------------------------------------------------------- the estimate


def estimate_run(config, data: DatasetSplits, device: torch.device) -> TimePlan:
    """Estimate every stage of ``scdd run`` with ``config`` on ``data`` (a resolved ``RunConfig``)."""

    started, cpu = time.perf_counter(), time.process_time()
    seed = config.seed
    stages: list[StageEstimate] = []
    with _kept_random_state(device), tempfile.TemporaryDirectory(prefix="scdd-plan-") as scratch:
        folder = Path(scratch)
        common = {"device": device, "seed": seed}
        stages.append(
            unit_clock("squeeze", lambda clock: squeeze(config.squeeze, data, folder / "squeeze", progress=clock, **common), device)[0]
        )
        backbone = _save_backbone(config, data, folder)
        evaluation, scale = _held_out_slice(data)
        align_estimate = unit_clock(
            "align", lambda clock: align(config.align, backbone, data, folder / "align", progress=clock, **common), device
        )[0]
        teacher = _save_classifier(config, data, folder)
        teacher_model = _load_classifier(teacher, device)
        held_out = unit_clock("align", lambda clock: accuracy(teacher_model, evaluation.val, device=device), device, scale)[0]
        align_estimate.seconds += held_out.seconds  # the teacher's held-out accuracy, after the loop
        align_estimate.fixed_seconds += held_out.seconds
        stages.append(align_estimate)
        if config.method == "sc-dd":
            stages.append(
                unit_clock(
                    "recover",
                    lambda clock: recover(config.recover, teacher, folder / "recover", progress=clock, data=data, **common),
                    device,
                )[0]
            )
        else:
            method = config.method.removeprefix("coreset-")
            stages.append(
                unit_clock(
                    "coreset",
                    lambda clock: coreset(
                        method, data, config.recover.ipc, folder / "coreset", classifier_path=teacher, progress=clock, **common
                    ),
                    device,
                )[0]
            )
        distilled = _save_distilled(config, data, folder)
        relabel_estimate, labelled = unit_clock(
            "relabel", lambda clock: relabel(config.relabel, teacher, distilled, folder / "relabel", progress=clock, **common), device
        )
        stages.append(relabel_estimate)
        online = config.relabel.mode == "online" and labelled is not None and config.posttrain.labels == "soft"
        soft_labels = labelled.artifacts["soft_labels"] if online else None
        trained: list[StageEstimate] = []
        evaluated: list[StageEstimate] = []
        for student in config.posttrain.students:
            one = dataclasses.replace(config.posttrain, students=(student,), runs=1, labels="soft" if online else "hard")
            train_one = functools.partial(posttrain, one, distilled, soft_labels, folder / "posttrain", **common)
            estimate, result = unit_clock("posttrain", _progress_to(train_one), device, config.posttrain.runs)
            trained.append(estimate)
            model = _load_classifier(_student_path(result, config, data, student, folder), device)
            score = functools.partial(accuracy, model, evaluation.val, device=device)
            evaluated.append(unit_clock("evaluate", _without_clock(score), device, scale * config.posttrain.runs)[0])
        stages.append(_combined("posttrain", trained))
        stages.append(_combined("evaluate", evaluated))
    return TimePlan(str(device), torch.get_num_threads(), stages, time.perf_counter() - started, time.process_time() - cpu)


def _combined(stage: str, parts: list[StageEstimate]) -> StageEstimate:
    if len(parts) == 1:
        return parts[0]
    seconds = sum(p.seconds for p in parts)
    return StageEstimate(
        stage,
        seconds,
        sum(p.units for p in parts),
        what="; ".join(p.what for p in parts),
        fixed_seconds=sum(p.fixed_seconds for p in parts),
        cpu_share=sum(p.cpu_seconds for p in parts) / max(seconds, 1e-9),
    )


def _load_classifier(path: Path, device: torch.device):

    return load_model(path, "classifier")[0].to(device).eval()


def _student_path(result, config, data: DatasetSplits, student: str, folder: Path) -> Path:
    """The student a finished post-training probe wrote, or an untrained one (the loop was cut)."""
    if result is not None:
        return next(iter(result.artifacts.values()))

    name = get_component("architecture", student).name
    record = ModelRecord("classifier", name, {}, data.info, {})
    return save_model(folder / f"student-{name}.safetensors", build_classifier(name, data.info), record)


class _kept_random_state:
    """Restore Python's, NumPy's and torch's global generators (and CUDA's) on exit."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> None:
        self.states = (random.getstate(), np.random.get_state(), torch.random.get_rng_state())
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None

    def __exit__(self, *exc: object) -> None:
        random.setstate(self.states[0])
        np.random.set_state(self.states[1])
        torch.random.set_rng_state(self.states[2])
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


# ----------------------------------------------------------------------------- reading a plan


# The setting that shortens each stage in proportion: (stage, setting, where its value lives)
_KNOBS = (
    ("squeeze", "squeeze.pretrainer_options.epochs", lambda c: c.squeeze.pretrainer_options.get("epochs")),
    ("align", "align.aligner_options.epochs", lambda c: c.align.aligner_options.get("epochs")),
    ("recover", "recover.iterations", lambda c: c.recover.iterations),
    ("posttrain", "posttrain.epochs", lambda c: c.posttrain.epochs),
)


def shortening(plan: TimePlan, config, limit: float = CPU_WARNING_SECONDS) -> str | None:
    """A ``--set`` that brings the plan under ``limit`` by cutting the longest stage's budget, or None when it is under."""
    total = plan.seconds
    if total <= limit:
        return None
    by_stage = {s.stage: s.seconds for s in plan.stages}
    by_stage["posttrain"] = by_stage.get("posttrain", 0) + by_stage.get("relabel", 0)  # relabel follows posttrain.epochs
    candidates = []
    for stage, setting, current in _KNOBS:
        value = current(config)
        if value is None:
            value = _default_epochs(config, stage)
        if not value or stage not in by_stage or by_stage[stage] <= 0:
            continue
        keep = (limit - (total - by_stage[stage])) / by_stage[stage]  # share of this stage's time that fits
        if keep <= 0:
            continue
        candidates.append((by_stage[stage], setting, max(1, int(value * min(keep, 1.0)))))
    if not candidates:
        return None
    _, setting, value = max(candidates)
    return f"--set {setting}={value}"


def _default_epochs(config, stage: str) -> int | None:

    slot = {"squeeze": ("pretrainer", config.squeeze.pretrainer), "align": ("aligner", config.align.aligner)}.get(stage)
    if slot is None:
        return None
    try:
        return get_component(*slot).defaults().get("epochs")
    except ScddError:
        return None
