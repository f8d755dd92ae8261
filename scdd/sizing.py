"""Settings sized to the data and the device, for a dataset without a preset of its own.

The paper's budgets (Tables 14-16: ResNet-18, 200 squeeze epochs, 1,000 recovery iterations, 300
post-training epochs) suit ImageNet on GPUs; a folder of a thousand small images on a laptop needs
a small network and budgets that scale with the data. ``sized_settings`` chooses them from the
image side S, the training-image count N, the class count K and the device type, by these rules:

* **Architecture** (squeeze, recovery and students): ``resnet10-slim`` for S <= 64 (CIFAR-style
  stem), ``resnet18`` above (the paper's).
* **Squeeze** (MoCo v3): a budget of image views, ``SQUEEZE_VIEWS`` x (32 / S)² on a CPU (``GPU_FACTOR``
  times that on CUDA), spread over ``epochs = views / N`` (at least ``MIN_EPOCHS``, at most the
  paper's 200), in batches of N / 8 (a power of two between 32 and 256) so small sets still take
  enough steps; a projector sized for small networks.
* **Align**: a linear probe on features computed once (no augmentation), 40 epochs.
* **Recover**: IPC 10 (at most the smallest class), ``RECOVER_ITERATIONS`` per batch of 100 images on
  a CPU, the paper's 1,000 on CUDA.
* **Relabel / post-train**: ``POSTTRAIN_EPOCHS`` epochs on a CPU (the paper's 300 on CUDA) at
  temperature 2, batches of 50.
* **Time**: those budgets are upper bounds. The run's time plan is measured on this machine with them
  (``scdd.timeplan``: each stage's own loop, a few units timed), and the budgets the command line left
  to sizing are scaled by one common factor (at most 1, each at least ``BUDGETS``' least value) so
  that the run, its measurement included, fits ``PLAN_SECONDS`` (``fit_budgets``). A slower machine
  gets shorter budgets, never a longer run. Under torchrun the budgets are not measured (every
  process would) and stay the upper bounds.

The constants were chosen on validation splits carved from training images (README, "Sized
defaults"). The result is recorded as a list of ``(setting, value, reason)`` rows, printed before a
run and kept in its manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from scdd import distributed
from scdd.config import RunConfig, make_run_config, to_dict
from scdd.data.base import DatasetSplits, dataset_length, labels_of
from scdd.timeplan import estimate_run
from scdd.unit_clock import TimePlan

SMALL_IMAGE = 64  # px: at most this, a small network with a CIFAR-style stem
SQUEEZE_VIEWS = 24_000  # image views of squeeze per run at 32 px on a CPU
GPU_FACTOR = 10  # CUDA: this many times the squeeze views
MIN_EPOCHS, MAX_EPOCHS = 2, 200
RECOVER_ITERATIONS = 300
POSTTRAIN_EPOCHS = 200
IPC = 10
PLAN_SECONDS = 480.0  # the sized run aims at 8 minutes on the machine that runs it, its measurement included
# The budgets a stage's time is proportional to: (setting, the stages it lengthens, least value)
BUDGETS = (
    ("squeeze.pretrainer_options.epochs", ("squeeze",), 1),
    ("recover.iterations", ("recover",), 50),
    ("posttrain.epochs", ("relabel", "posttrain"), 20),  # relabel labels one crop per post-training epoch
)
MOCO_V3 = {"temperature": 0.2, "hidden_dim": 512, "output_dim": 128, "crop_min_scale": 0.3}  # the mnist5k preset's


@dataclass(frozen=True)
class DataShape:
    """What the sizing rules read from a dataset."""

    image_size: int
    channels: int
    classes: int
    train_images: int
    smallest_class: int

    @classmethod
    def of(cls, data: DatasetSplits) -> DataShape:
        counts = labels_of(data.train).bincount(minlength=data.info.num_classes)
        return cls(data.info.image_size, data.info.channels, data.info.num_classes, dataset_length(data.train), int(counts.min()))


def _power_of_two_below(value: float, low: int, high: int) -> int:
    return int(min(high, max(low, 2 ** math.floor(math.log2(max(value, 1))))))


def sized_settings(shape: DataShape, device_type: str) -> tuple[dict[str, Any], list[tuple[str, Any, str]]]:
    """Nested settings for ``shape`` on ``device_type`` ("cpu" or "cuda"), and one ``(setting, value, reason)``
    row per chosen value."""
    rows: list[tuple[str, Any, str]] = []
    gpu = device_type == "cuda"
    scale = GPU_FACTOR if gpu else 1
    small = shape.image_size <= SMALL_IMAGE
    arch = "resnet10-slim" if small else "resnet18"
    arch_why = f"images of {shape.image_size} px {'<=' if small else '>'} {SMALL_IMAGE}"
    views = SQUEEZE_VIEWS * scale * (32 / shape.image_size) ** 2
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, round(views / shape.train_images))))
    batch = _power_of_two_below(shape.train_images / 8, 32, 256)
    ipc = max(1, min(IPC, shape.smallest_class))

    def put(setting: str, value: Any, why: str) -> None:
        rows.append((setting, value, why))

    put("squeeze.architecture", arch, arch_why)
    put("squeeze.pretrainer_options.epochs", epochs, f"{views:,.0f} image views / {shape.train_images:,} training images")
    put("squeeze.pretrainer_options.batch_size", batch, "training images / 8, a power of two in 32-256")
    put("squeeze.pretrainer_options.lr", 0.1, "few steps")
    for key, value in MOCO_V3.items():
        put(f"squeeze.pretrainer_options.{key}", value, "MoCo v3 for a small network and few steps")
    put("align.aligner_options.epochs", 40, "linear probe on features computed once")
    put("align.aligner_options.augment", False, "features computed once")
    put("align.aligner_options.lr", 0.1, "linear probe on features computed once")
    put("recover.ipc", ipc, f"{IPC} per class" + ("" if ipc == IPC else f", at most the smallest class ({shape.smallest_class})"))
    put(
        "recover.iterations",
        1000 if gpu else RECOVER_ITERATIONS,
        "the paper's 1,000 on CUDA" if gpu else "per batch of 100 images, CPU budget",
    )
    put("recover.batch_size", 100, "images per recovery batch")
    put("recover.alpha_bn", 0.3, "BN matching weight for a small network")
    put("recover.crop_min_scale", 0.5, "recovery crops of at least half the image")
    put("relabel.crop_min_scale", 0.25, "crops of at least a quarter of the image")
    put("posttrain.students", [arch], arch_why)
    put("posttrain.epochs", 300 if gpu else POSTTRAIN_EPOCHS, "the paper's 300 on CUDA" if gpu else "CPU budget")
    put("posttrain.batch_size", 50, "distilled images per step")
    put("posttrain.lr", 0.005, "AdamW for a few hundred images")
    put("posttrain.temperature", 2.0, "soft-label temperature")
    return _nested(rows), rows


def _nested(rows: list[tuple[str, Any, str]]) -> dict[str, Any]:
    """The rows as nested settings (MoCo v3's own options only when MoCo v3 squeezes)."""
    nested: dict[str, Any] = {}
    for setting, value, _ in rows:
        *parents, leaf = setting.split(".")
        if parents == ["squeeze", "pretrainer_options"] and leaf in MOCO_V3:
            parents = ["squeeze", "pretrainer_options_by_name", "moco-v3"]
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def sized_config(
    overrides: Mapping[str, Any],
    data: DatasetSplits,
    device: torch.device,
    seconds: float = PLAN_SECONDS,
    *,
    earlier: Mapping[str, Any] | None = None,
) -> tuple[RunConfig, dict[str, Any], TimePlan | None]:
    """The run's config with the sized settings beneath ``overrides``, its budgets fitted to ``seconds`` on
    ``device``; the manifest's ``sizing`` entry (the inputs the rules read and each sized value the config
    kept, with its reason); and the run's time plan (None when no budget was measured). ``earlier``: the
    ``sizing`` entry of the run folder being continued; its fitted budgets are kept when its inputs match,
    so the same command continues the same run."""
    shape = DataShape.of(data)
    inputs = {**shape.__dict__, "device": device.type}
    sized, rows = sized_settings(shape, device.type)
    config = make_run_config(overrides, preset_values=sized)
    budgets = {setting: value for setting, value, _ in _kept(config, rows) if setting in _LEAST}
    chosen, plan = _recorded(earlier, inputs, seconds, budgets), None
    if chosen is None and budgets and not distributed.launched():  # under torchrun every process would measure
        plan = estimate_run(config, data, device)
        fitted, factor = fit_budgets(plan, budgets, seconds)
        why = f"; x {factor:.2f} to fit {seconds / 60:g} min at the speed measured here"
        chosen = {s: (fitted[s], reason + why) for s, _, reason in rows if s in fitted and fitted[s] != budgets[s]}
        plan = plan.rescaled({stage: fitted[s] / budgets[s] for s, stages, _ in BUDGETS if s in budgets for stage in stages})
    if chosen:
        rows = [(s, *chosen[s]) if s in chosen else (s, v, reason) for s, v, reason in rows]
        config = make_run_config(overrides, preset_values=_nested(rows))
    return config, {"inputs": inputs, "settings": _kept(config, rows), "seconds": seconds}, plan


def _recorded(earlier: Mapping[str, Any] | None, inputs: dict[str, Any], seconds: float, budgets: Mapping[str, int]):
    """The budgets (value, reason) an earlier sizing of the same data, device and target chose, or None."""
    if not earlier or earlier.get("inputs") != inputs or earlier.get("seconds") != seconds:
        return None
    recorded = {setting: (value, why) for setting, value, why in earlier.get("settings", []) if setting in budgets}
    return recorded if set(recorded) == set(budgets) else None


_LEAST = {setting: least for setting, _, least in BUDGETS}


def fit_budgets(plan: TimePlan, budgets: Mapping[str, int], seconds: float = PLAN_SECONDS) -> tuple[dict[str, int], float]:
    """Scale ``budgets`` (setting → value, those sizing still sets; ``plan`` was measured with them) by one
    factor, at most 1, so that the plan, its own measurement included, fits ``seconds``; each budget stays
    at least its least value (then the plan runs over). Returns the budgets and the factor."""
    stages = {stage.stage: stage for stage in plan.stages}
    varying = sum(
        stages[name].seconds - stages[name].fixed_seconds
        for setting, names, _ in BUDGETS
        if setting in budgets
        for name in names
        if name in stages
    )
    free = seconds - plan.probe_seconds - (plan.seconds - varying)
    factor = 1.0 if varying <= 0 else min(1.0, max(0.0, free / varying))
    return {setting: max(min(_LEAST[setting], value), int(value * factor)) for setting, value in budgets.items()}, factor


def _kept(config: RunConfig, rows: list[tuple[str, Any, str]]) -> list[list[Any]]:
    """The sized rows whose value the config kept (a recipe or the command line replaces the others)."""
    resolved = to_dict(config)
    return [[setting, value, why] for setting, value, why in rows if _lookup(resolved, setting) == value]


def _lookup(values: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted setting of nested ``values`` (tuples as lists), or ``None``."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return list(node) if isinstance(node, tuple) else node
