"""Data-free pruning (paper Sec. 3.5, Table 9): network slimming driven only by a distilled set.

A trained classifier is fine-tuned on the distilled images and their soft labels with an L1 penalty
on its BN scale factors, the channels with the smallest scales are removed globally, and the pruned
network is fine-tuned on the distilled set again. Accuracy, parameters and FLOPs are measured on the
real held-out split at each step; the pruned model is saved with its channel widths so it loads again.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scdd.artifacts import write_json
from scdd.data.base import DatasetSplits
from scdd.distilled import DistilledSet, load_distilled
from scdd.errors import ArtifactError, ConfigError, DataError
from scdd.labels import OnlineSoftLabels, StoredSoftLabels, open_soft_labels
from scdd.models.channel_groups import find_channel_groups
from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.models.surgery import channel_widths, prune_group
from scdd.progress import SILENT, Progress
from scdd.prune.config import PruneConfig
from scdd.prune.finetune import train_on_soft_labels
from scdd.prune.measure import count_flops, count_parameters
from scdd.prune.slimming import select_channels, sparsity_penalty
from scdd.runtime import derive_seed, seed_everything
from scdd.stages.common import StageResult, Stopwatch, accuracy

REPORT_FILE = "prune.json"


def pruned_file(architecture: str) -> str:
    return f"pruned-{architecture}.safetensors"


def measure(model: nn.Module, data: DatasetSplits, groups, *, device: torch.device) -> dict[str, Any]:
    """Held-out top-1/top-5 (percent), parameters, FLOPs and the number of prunable channels."""
    return {
        **accuracy(model, data.val, device=device),
        "parameters": count_parameters(model),
        "flops": count_flops(model, data.info, device=device),
        "prunable_channels": sum(model.get_submodule(group.bn).num_features for group in groups),
    }


def check_inputs(
    record: ModelRecord, distilled: DistilledSet, labels: StoredSoftLabels | OnlineSoftLabels, data: DatasetSplits, paths
) -> None:
    """The model, the distilled set, its soft labels and the evaluation data must describe one task."""
    model_path, distilled_path, labels_path = paths
    model_info, set_info = record.dataset, distilled.info
    if (model_info.num_classes, model_info.channels, model_info.image_size) != (
        set_info.num_classes,
        set_info.channels,
        set_info.image_size,
    ):
        raise DataError(
            f"{distilled_path}: distilled set is {set_info.num_classes}-class {set_info.channels}x{set_info.image_size}px, "
            f"model {model_path} is {model_info.num_classes}-class {model_info.channels}x{model_info.image_size}px"
        )
    if data.info.num_classes != model_info.num_classes:
        raise DataError(f"{model_path}: model has {model_info.num_classes} classes, dataset {data.info.name!r} has {data.info.num_classes}")
    if labels.images != len(distilled.labels):
        raise ArtifactError(f"{labels_path}: soft labels are for {labels.images} images, the distilled set has {len(distilled.labels)}")


def prune(
    config: PruneConfig,
    model_path: Path,
    distilled_path: Path,
    soft_labels_path: Path,
    data: DatasetSplits,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Slim ``model_path`` with the distilled set; writes ``pruned-<arch>.safetensors`` and ``prune.json``.

    Metrics: ``rows`` maps each step (original, sparsity-trained, pruned, pruned + fine-tuned) to its
    held-out accuracy, parameters and FLOPs; ``channel_widths`` gives each pruned layer's width.
    """
    model, record = load_model(model_path, "classifier")
    distilled, labels = load_distilled(distilled_path), open_soft_labels(soft_labels_path, device=device, distilled=distilled_path)
    check_inputs(record, distilled, labels, data, (model_path, distilled_path, soft_labels_path))
    groups = find_channel_groups(model)
    if not groups:
        raise ConfigError(f"{model_path}: architecture {record.architecture!r} has no prunable conv → BN channels")
    model.to(device)
    original_widths = channel_widths(model, groups)
    train = functools.partial(
        train_on_soft_labels, model, distilled, labels, config, device=device, seed=derive_seed(seed, "prune"), progress=progress
    )
    seed_everything(derive_seed(seed, "prune", "init"))
    rows: dict[str, dict[str, Any]] = {}
    with Stopwatch() as clock:
        rows["original"] = measure(model, data, groups, device=device)

        def penalty() -> torch.Tensor:
            return config.sparsity * sparsity_penalty(model, groups)

        sparsity_curve = train(epochs=config.sparsity_epochs, first_epoch=0, name="sparsity", penalty=penalty)
        if config.sparsity_epochs:
            rows["sparsity-trained"] = measure(model, data, groups, device=device)
        keep = select_channels(model, groups, config.ratio, min_channels=config.min_channels)
        for group in groups:
            prune_group(model, group, keep[group.bn])
        rows["pruned"] = measure(model, data, groups, device=device)
        finetune_curve = train(epochs=config.finetune_epochs, first_epoch=config.sparsity_epochs, name="fine-tune")
        if config.finetune_epochs:
            rows["pruned + fine-tuned"] = measure(model, data, groups, device=device)
    widths = channel_widths(model, groups)
    out_dir = Path(out_dir)
    saved = ModelRecord(
        kind="classifier",
        architecture=record.architecture,
        architecture_options=record.architecture_options,
        dataset=record.dataset,
        extra={
            "channel_widths": widths,
            "pruned_from": str(model_path),
            "fine_tuned_on": distilled.source,
            "ipc": distilled.ipc,
            "prune": dataclasses.asdict(config),
        },
    )
    path = save_model(out_dir / pruned_file(record.architecture), model, saved)
    metrics = {
        "rows": rows,
        "original_widths": original_widths,
        "channel_widths": widths,
        "sparsity_loss": sparsity_curve,
        "finetune_loss": finetune_curve,
    }
    write_json(
        out_dir / REPORT_FILE,
        {
            "model": str(model_path),
            "distilled": str(distilled_path),
            "soft_labels": str(soft_labels_path),
            "source": distilled.source,
            "ipc": distilled.ipc,
            "config": dataclasses.asdict(config),
            **metrics,
        },
    )
    return StageResult("prune", artifacts={"pruned": path, "report": out_dir / REPORT_FILE}, metrics=metrics, seconds=clock.seconds)
