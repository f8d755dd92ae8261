"""Import a published checkpoint as scdd artifacts: the backbone squeeze would write and, when the
file (or ``--linear``) has a linear classifier, the classifier align would write.

Backbones are built as the registered ``resnet50`` with the ImageNet stem (7x7 convolution +
max-pool) and loaded strictly, BatchNorm running statistics included, so the written tensors equal
the source's exactly. Nothing is written until every check has passed.
"""

from __future__ import annotations

from pathlib import Path

import torch

from scdd.models.saved import ModelRecord, save_model
from scdd.published import FORMATS
from scdd.published.layouts import CONVERTERS, fill_batch_counters, linear_head
from scdd.published.reading import load_checkpoint
from scdd.data.base import DatasetInfo
from scdd.errors import ArtifactError, ConfigError
from scdd.models.build import build_backbone
from scdd.models.classifier import Classifier
from scdd.stages.align import CLASSIFIER_FILE
from scdd.stages.common import StageResult, Stopwatch
from scdd.stages.squeeze import BACKBONE_FILE
from torchvision.models import ResNet50_Weights

ARCHITECTURE = "resnet50"
ARCHITECTURE_OPTIONS = {"small_input_stem": "no"}  # published weights use the ImageNet stem
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_info() -> DatasetInfo:
    """ImageNet-1K as the published checkpoints saw it: 3 channels, 224 px, 1000 classes (names from
    torchvision, prefixed by index so that every name is unique), ImageNet mean and std."""
    categories = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    return DatasetInfo(
        name="imagenet",
        num_classes=len(categories),
        channels=3,
        image_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=tuple(f"{index:03d} {name}" for index, name in enumerate(categories)),
    )


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise ArtifactError(f"{path}: {what} does not match torchvision's ResNet-50: {', '.join(parts)}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ArtifactError(
                f"{path}: {key} has shape {list(tensor.shape)}, ResNet-50 expects {list(expected[key].shape)} "
                "(widened variants such as SwAV RN50-w2 need their own architecture)"
            )
    state = {key: value.float().contiguous() if value.is_floating_point() else value.contiguous() for key, value in state.items()}
    module.load_state_dict(state, strict=True, assign=True)
    if any(tensor.is_meta for tensor in module.state_dict().values()):
        raise ArtifactError(f"{path}: {what} left tensors without values")  # a buffer outside the state dict


def import_checkpoint(
    source: Path,
    out_dir: Path,
    *,
    format: str,
    info: DatasetInfo | None = None,
    linear: Path | None = None,
    trust_pickle: bool = False,
) -> StageResult:
    """Convert ``source`` (a ``format`` checkpoint) into ``backbone.safetensors`` (+ ``classifier.safetensors``)."""
    if format not in CONVERTERS:
        raise ConfigError(f"unknown checkpoint format {format!r}; formats: {', '.join(FORMATS)}")
    info = info or imagenet_info()
    with Stopwatch() as clock:
        conversion = CONVERTERS[format](load_checkpoint(source, trust_pickle=trust_pickle), str(source))
        kept, dropped = list(conversion.kept), list(conversion.dropped)
        head = conversion.head
        if linear is not None:
            head, linear_dropped = linear_head(load_checkpoint(linear, trust_pickle=trust_pickle), str(linear))
            kept.append((f"linear classifier from {Path(linear).name}", 2))
            dropped += linear_dropped
        filled = fill_batch_counters(conversion.backbone)
        if filled:
            kept.append(("num_batches_tracked = 0 added (file predates it)", filled))

        stem = conversion.backbone.get("conv1.weight")
        if stem is not None and stem.ndim == 4 and stem.shape[1] != info.channels:
            raise ConfigError(
                f"{source}: the checkpoint takes {stem.shape[1]}-channel images, dataset {info.name!r} has {info.channels}"
            )
        with torch.device("meta"):  # no random initialisation: every tensor comes from the file
            backbone = build_backbone(ARCHITECTURE, info, ARCHITECTURE_OPTIONS)
        _load_strict(backbone, conversion.backbone, source, "the backbone")
        classifier = None
        if head is not None:
            classifier = Classifier(backbone, info.num_classes, info.mean, info.std)
            if tuple(head["weight"].shape) != tuple(classifier.head.weight.shape):
                raise ArtifactError(
                    f"{linear or source}: the linear classifier has shape {list(head['weight'].shape)}; "
                    f"dataset {info.name!r} needs [{info.num_classes}, {backbone.num_features}]"
                )
            classifier.head.load_state_dict({k: v.float() for k, v in head.items()}, strict=True)

    extra = {"pretrainer": format.replace("_", "-"), "imported_from": Path(source).name}
    artifacts = {
        "backbone": save_model(
            Path(out_dir) / BACKBONE_FILE,
            backbone,
            ModelRecord("backbone", ARCHITECTURE, dict(ARCHITECTURE_OPTIONS), info, {**extra, "loss_per_epoch": []}),
        )
    }
    if classifier is not None:
        record = ModelRecord("classifier", ARCHITECTURE, dict(ARCHITECTURE_OPTIONS), info, {**extra, "aligner": "imported"})
        artifacts["classifier"] = save_model(Path(out_dir) / CLASSIFIER_FILE, classifier, record)
    return StageResult(
        "import",
        artifacts=artifacts,
        metrics={"layout": conversion.layout, "kept": kept, "dropped": dropped},
        seconds=clock.seconds,
    )
