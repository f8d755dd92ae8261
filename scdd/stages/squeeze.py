"""Stage 1, squeeze: pretrain a backbone with a registered objective and save it (BN statistics included).

Under torchrun every process trains on its part of each global batch with DistributedDataParallel
(``scdd.ssl.base.Pretrainer``); on CUDA the backbone's BatchNorm layers are synchronised across
processes (SyncBatchNorm, as MoCo v3, SwAV and DINO pretrain), except for MoCo v2, whose shuffled
BatchNorm is per group by design. On CPU (no SyncBatchNorm kernel) each process normalises its own part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd import distributed
from scdd.artifacts import save_tensors
from scdd.data.base import DatasetSplits
from scdd.errors import ConfigError
from scdd.models.batchnorm import convert_sync_batchnorm, revert_sync_batchnorm
from scdd.models.build import build_backbone
from scdd.models.saved import ModelRecord, save_model
from scdd.progress import SILENT, Progress
from scdd.published import FORMATS
from scdd.published.convert import load_published
from scdd.registry import get_component, normalize_name
from scdd.runtime import derive_seed, seed_everything
from scdd.stages.common import StageResult, Stopwatch

BACKBONE_FILE = "backbone.safetensors"
HEAD_FILE = "head.safetensors"  # a head trained with the backbone (supervised squeezes), for the pretrained-head aligner


@dataclass
class SqueezeConfig:
    pretrainer: str = "moco-v3"
    pretrainer_options: dict[str, Any] = field(default_factory=dict)
    architecture: str = "resnet18"
    architecture_options: dict[str, Any] = field(default_factory=dict)
    # start from published weights instead of pretraining (Table 10: the paper's ImageNet teachers are the
    # official MoCo v3 / SwAV / DINO checkpoints): the file and its layout, one of scdd.published.FORMATS
    checkpoint: str = ""
    checkpoint_format: str = ""


def check_checkpoint(config: SqueezeConfig) -> None:
    """Fail before any work when the squeeze is to start from a published checkpoint it cannot use."""
    if not config.checkpoint and not config.checkpoint_format:
        return
    if config.checkpoint_format not in FORMATS:
        raise ConfigError(f"squeeze.checkpoint_format must be one of {', '.join(FORMATS)}, got {config.checkpoint_format!r}")
    if not config.checkpoint:
        raise ConfigError(
            f"squeeze.checkpoint_format is {config.checkpoint_format}: this squeeze starts from a published checkpoint "
            "(Table 10); give its file with --set squeeze.checkpoint=PATH (scdd downloads nothing), or "
            "--set squeeze.checkpoint_format='' to pretrain from scratch"
        )
    if not Path(config.checkpoint).is_file():
        raise ConfigError(f"squeeze.checkpoint {config.checkpoint}: no such file")
    objective = "supervised" if config.checkpoint_format == "torchvision" else config.checkpoint_format
    if normalize_name(objective) != normalize_name(config.pretrainer):
        raise ConfigError(
            f"squeeze.checkpoint_format {config.checkpoint_format} holds a {objective} model but squeeze.pretrainer is "
            f"{config.pretrainer}: set squeeze.pretrainer={objective.replace('_', '-')} (per-pretrainer settings follow it)"
        )


def squeeze(
    config: SqueezeConfig,
    data: DatasetSplits,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Pretrain ``config.architecture`` on ``data.train`` with ``config.pretrainer``, or take the backbone of the
    published ``config.checkpoint``; writes ``backbone.safetensors``."""
    if config.checkpoint:
        return _import_backbone(config, data, out_dir)
    component = get_component("pretrainer", config.pretrainer)
    pretrainer = component.build(config.pretrainer_options)
    seed_everything(derive_seed(seed, "squeeze", "init"))
    backbone = build_backbone(config.architecture, data.info, config.architecture_options)
    if getattr(pretrainer, "sync_batchnorm", True):
        backbone = convert_sync_batchnorm(backbone, device)  # CUDA under torchrun only
    with Stopwatch() as clock:
        result = pretrainer.pretrain(backbone, data, device=device, seed=derive_seed(seed, "squeeze"), progress=progress)
    backbone = revert_sync_batchnorm(result.backbone)
    extra: dict[str, Any] = {"pretrainer": component.name, "loss_per_epoch": result.loss_per_epoch}
    artifacts = {}
    if result.head is not None:
        head = distributed.on_main(save_tensors, Path(out_dir) / HEAD_FILE, result.head.state_dict(), {"kind": "head"})
        artifacts["head"] = head
        extra["head_file"] = HEAD_FILE
    record = ModelRecord(
        kind="backbone",
        architecture=get_component("architecture", config.architecture).name,
        architecture_options=dict(config.architecture_options),
        dataset=data.info,
        extra=extra,
    )
    path = distributed.on_main(save_model, Path(out_dir) / BACKBONE_FILE, backbone, record)  # rank 0 writes
    return StageResult(
        "squeeze",
        artifacts={"backbone": path, **artifacts},
        metrics={"loss_per_epoch": result.loss_per_epoch},
        seconds=clock.seconds,
    )


def _import_backbone(config: SqueezeConfig, data: DatasetSplits, out_dir: Path) -> StageResult:
    """The squeeze of a published checkpoint: its backbone, BN statistics included, tensors equal to the file's."""
    check_checkpoint(config)
    with Stopwatch() as clock:
        published = load_published(config.checkpoint, format=config.checkpoint_format, info=data.info, with_classifier=False)
    wanted = get_component("architecture", config.architecture).name
    if published.architecture != wanted:
        raise ConfigError(
            f"squeeze.checkpoint {config.checkpoint} holds a {published.architecture}; squeeze.architecture is {wanted}: "
            f"set squeeze.architecture={published.architecture}"
        )
    record = published.record("backbone", data.info, loss_per_epoch=[])
    path = distributed.on_main(save_model, Path(out_dir) / BACKBONE_FILE, published.backbone, record)
    return StageResult("squeeze", artifacts={"backbone": path}, metrics={"loss_per_epoch": []}, seconds=clock.seconds)
