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

The constants were chosen on validation splits carved from training images (README, "Sized
defaults"). The result is recorded as a list of ``(setting, value, reason)`` rows, printed before a
run and kept in its manifest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scdd.config import RunConfig, make_run_config, to_dict
from scdd.data.base import DatasetSplits, dataset_length, labels_of

SMALL_IMAGE = 64  # px: at most this, a small network with a CIFAR-style stem
SQUEEZE_VIEWS = 24_000  # image views of squeeze per run at 32 px on a CPU
GPU_FACTOR = 10  # CUDA: this many times the squeeze views
MIN_EPOCHS, MAX_EPOCHS = 2, 200
RECOVER_ITERATIONS = 300
POSTTRAIN_EPOCHS = 200
IPC = 10
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
    put("recover.iterations", 1000 if gpu else RECOVER_ITERATIONS, "the paper's 1,000 on CUDA" if gpu else "per batch of 100 images, CPU budget")
    put("recover.batch_size", 100, "images per recovery batch")
    put("recover.alpha_bn", 0.3, "BN matching weight for a small network")
    put("recover.crop_min_scale", 0.5, "recovery crops of at least half the image")
    put("relabel.crop_min_scale", 0.25, "crops of at least a quarter of the image")
    put("posttrain.students", [arch], arch_why)
    put("posttrain.epochs", 300 if gpu else POSTTRAIN_EPOCHS, "the paper's 300 on CUDA" if gpu else "CPU budget")
    put("posttrain.batch_size", 50, "distilled images per step")
    put("posttrain.lr", 0.005, "AdamW for a few hundred images")
    put("posttrain.temperature", 2.0, "soft-label temperature")
    nested: dict[str, Any] = {}
    for setting, value, _ in rows:
        *parents, leaf = setting.split(".")
        if parents == ["squeeze", "pretrainer_options"] and leaf in MOCO_V3:  # only when MoCo v3 squeezes
            parents = ["squeeze", "pretrainer_options_by_name", "moco-v3"]
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested, rows


def sized_config(overrides: Mapping[str, Any], data: DatasetSplits, device_type: str) -> tuple[RunConfig, dict[str, Any]]:
    """The run's config with the sized settings beneath ``overrides``, and the manifest's ``sizing`` entry:
    the inputs the rules read and each sized value the config kept, with its reason."""
    shape = DataShape.of(data)
    sized, rows = sized_settings(shape, device_type)
    config = make_run_config(overrides, preset_values=sized)
    resolved = to_dict(config)
    kept = [[setting, value, why] for setting, value, why in rows if _lookup(resolved, setting) == value]
    return config, {"inputs": {**shape.__dict__, "device": device_type}, "settings": kept}


def _lookup(values: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted setting of nested ``values`` (tuples as lists), or ``None``."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return list(node) if isinstance(node, tuple) else node
