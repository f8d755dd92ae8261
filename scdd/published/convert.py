"""A published checkpoint as scdd modules: its ResNet backbone (BatchNorm statistics included) and,
when the file (or a linear-probe file) has one, its linear classifier.

The depth is read from the file's keys (torchvision names: BasicBlock or Bottleneck blocks, blocks
per stage) and built as the registered ``resnet18``, ``resnet50`` or ``resnet101`` with the ImageNet
stem (7x7 convolution + max-pool). Modules are built without random initialisation and loaded
strictly, so every tensor equals the file's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scdd.data.base import DatasetInfo
from scdd.errors import ArtifactError, ConfigError
from scdd.models.build import build_backbone
from scdd.models.classifier import Classifier
from scdd.models.saved import ModelRecord
from scdd.published import FORMATS
from scdd.published.layouts import CONVERTERS, fill_batch_counters, linear_head
from scdd.published.reading import load_checkpoint

ARCHITECTURE_OPTIONS = {"small_input_stem": "no"}  # published weights use the ImageNet stem
# (block kind, blocks per stage) of torchvision's ResNets that scdd registers
RESNET_LAYOUTS: dict[tuple[str, tuple[int, ...]], str] = {
    ("basic", (2, 2, 2, 2)): "resnet18",
    ("bottleneck", (3, 4, 6, 3)): "resnet50",
    ("bottleneck", (3, 4, 23, 3)): "resnet101",
}


@dataclass
class PublishedModel:
    """What a checkpoint file holds, as modules, and what the conversion kept and dropped."""

    backbone: nn.Module
    classifier: Classifier | None
    architecture: str
    layout: str
    kept: list[tuple[str, int]]
    dropped: list[tuple[str, int]]
    format: str
    source: str

    def record(self, kind: str, info: DatasetInfo, **extra: object) -> ModelRecord:
        """The artifact record of the ``kind`` ("backbone" or "classifier") module, naming the file it came from."""
        origin = {"pretrainer": self.format.replace("_", "-"), "imported_from": Path(self.source).name}
        return ModelRecord(kind, self.architecture, dict(ARCHITECTURE_OPTIONS), info, {**origin, **extra})


def resnet_architecture(backbone: Mapping[str, torch.Tensor], path: str | Path) -> str:
    """The registered ResNet whose layout the torchvision-named ``backbone`` tensors have."""
    kind = "bottleneck" if "layer1.0.conv3.weight" in backbone else "basic"
    blocks = tuple(len({key.split(".")[1] for key in backbone if key.startswith(f"layer{stage}.")}) for stage in range(1, 5))
    name = RESNET_LAYOUTS.get((kind, blocks))
    if name is None:
        known = ", ".join(f"{arch} ({k}, {list(b)})" for (k, b), arch in RESNET_LAYOUTS.items())
        raise ArtifactError(f"{path}: a ResNet with {kind} blocks {list(blocks)} per stage; scdd builds {known}")
    return name


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: str | Path, architecture: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise ArtifactError(f"{path}: the backbone does not match torchvision's {architecture}: {', '.join(parts)}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ArtifactError(
                f"{path}: {key} has shape {list(tensor.shape)}, {architecture} expects {list(expected[key].shape)} "
                "(widened variants such as SwAV RN50-w2 need their own architecture)"
            )
    state = {key: value.float().contiguous() if value.is_floating_point() else value.contiguous() for key, value in state.items()}
    module.load_state_dict(state, strict=True, assign=True)
    if any(tensor.is_meta for tensor in module.state_dict().values()):
        raise ArtifactError(f"{path}: the backbone left tensors without values")  # a buffer outside the state dict


def load_published(
    source: str | Path,
    *,
    format: str,
    info: DatasetInfo,
    linear: str | Path | None = None,
    trust_pickle: bool = False,
    with_classifier: bool = True,
) -> PublishedModel:
    """Read ``source`` (a ``format`` checkpoint) as modules for a dataset described by ``info``.

    ``linear``: a linear-probe file whose classifier to take instead; ``with_classifier=False`` keeps the
    backbone only (a squeeze that starts from published weights: align trains its own classifier)."""
    if format not in CONVERTERS:
        raise ConfigError(f"unknown checkpoint format {format!r}; formats: {', '.join(FORMATS)}")
    conversion = CONVERTERS[format](load_checkpoint(source, trust_pickle=trust_pickle), str(source))
    kept, dropped = list(conversion.kept), list(conversion.dropped)
    head = conversion.head if with_classifier else None
    if with_classifier and linear is not None:
        head, linear_dropped = linear_head(load_checkpoint(linear, trust_pickle=trust_pickle), str(linear))
        kept.append((f"linear classifier from {Path(linear).name}", 2))
        dropped += linear_dropped
    elif conversion.head is not None and not with_classifier:
        dropped.append(("linear classifier (align trains its own)", len(conversion.head)))
    filled = fill_batch_counters(conversion.backbone)
    if filled:
        kept.append(("num_batches_tracked = 0 added (file predates it)", filled))

    stem = conversion.backbone.get("conv1.weight")
    if stem is not None and stem.ndim == 4 and stem.shape[1] != info.channels:
        raise ConfigError(f"{source}: the checkpoint takes {stem.shape[1]}-channel images, dataset {info.name!r} has {info.channels}")
    architecture = resnet_architecture(conversion.backbone, source)
    with torch.device("meta"):  # no random initialisation: every tensor comes from the file
        backbone = build_backbone(architecture, info, ARCHITECTURE_OPTIONS)
    _load_strict(backbone, conversion.backbone, source, architecture)
    classifier = None
    if head is not None:
        classifier = Classifier(backbone, info.num_classes, info.mean, info.std)
        if tuple(head["weight"].shape) != tuple(classifier.head.weight.shape):
            raise ArtifactError(
                f"{linear or source}: the linear classifier has shape {list(head['weight'].shape)}; "
                f"dataset {info.name!r} needs [{info.num_classes}, {backbone.num_features}]"
            )
        classifier.head.load_state_dict({k: v.float() for k, v in head.items()}, strict=True)
    return PublishedModel(backbone, classifier, architecture, conversion.layout, kept, dropped, format, str(source))
