"""Model artifacts: a backbone or classifier saved with what is needed to rebuild it (its kind,
architecture name and options, and the dataset description it was built for), rebuilt through the
registry and loaded strictly. A pruned model also records its channel widths (``scdd.models.surgery``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from scdd._options import check_teacher_files
from scdd.artifacts import dataset_info_from, load_tensors, save_tensors
from scdd.data.base import DatasetInfo
from scdd.errors import ArtifactError
from scdd.models.build import build_backbone, build_classifier
from scdd.models.classifier import Classifier
from scdd.models.surgery import apply_channel_widths


@dataclass
class ModelRecord:
    """What a model artifact says about itself."""

    kind: str  # "backbone" or "classifier"
    architecture: str
    architecture_options: dict[str, Any]
    dataset: DatasetInfo
    extra: dict[str, Any]


def save_model(path: str | Path, module: torch.nn.Module, record: ModelRecord) -> Path:
    metadata = {
        "kind": record.kind,
        "architecture": record.architecture,
        "architecture_options": record.architecture_options,
        "dataset": asdict(record.dataset),
        **record.extra,
    }
    return save_tensors(path, module.state_dict(), metadata)


def load_model(path: str | Path, kind: str) -> tuple[torch.nn.Module, ModelRecord]:
    """Rebuild a saved backbone or classifier through the registry and load its weights strictly.

    A pruned model's metadata lists its channel widths (``extra["channel_widths"]``); the same
    channel surgery is applied to the freshly built model before its weights are loaded."""
    tensors, metadata = load_tensors(path, kind)
    info = dataset_info_from(metadata, path)
    record = ModelRecord(
        kind=kind,
        architecture=metadata.get("architecture", ""),
        architecture_options=metadata.get("architecture_options") or {},
        dataset=info,
        extra={k: v for k, v in metadata.items() if k not in {"kind", "architecture", "architecture_options", "dataset", "format_version"}},
    )
    build = build_classifier if kind == "classifier" else build_backbone
    module = build(record.architecture, info, record.architecture_options)
    if record.extra.get("channel_widths"):  # a pruned model: shrink the fresh one to the saved widths
        try:
            apply_channel_widths(module, record.extra["channel_widths"])
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from None
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ArtifactError(f"{path}: weights do not fit architecture {record.architecture!r}: {first_line}") from None
    return module, record


def load_classifier(path: str | Path) -> tuple[Classifier, ModelRecord]:
    """``load_model(path, "classifier")``, typed: that kind is built by ``build_classifier``."""
    model, record = load_model(path, "classifier")
    assert isinstance(model, Classifier)
    return model, record


def load_teacher(path: str | Path, info: DatasetInfo, setting: str) -> Classifier:
    """The classifier artifact at ``path`` that the option ``setting`` names as one more teacher of ``info``'s images:
    a one-line error when it is missing or has another class count, channel count or image size."""
    check_teacher_files([path], setting)
    teacher, record = load_classifier(path)
    theirs = record.dataset
    for what, a, b in (("classes", theirs.num_classes, info.num_classes), ("channels", theirs.channels, info.channels)):
        if a != b:
            raise ArtifactError(f"{setting} {path}: the teacher has {a} {what}, the images {b}")
    if theirs.image_size != info.image_size:
        raise ArtifactError(f"{setting} {path}: the teacher takes {theirs.image_size}-px images, these are {info.image_size}-px")
    return teacher
