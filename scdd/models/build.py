"""Building registered architectures for a dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from scdd.data.base import DatasetInfo
from scdd.models.classifier import Classifier
from scdd.registry import get_component


def build_backbone(name: str, info: DatasetInfo, options: Mapping[str, Any] | None = None) -> nn.Module:
    """A registered architecture as a pooled-feature backbone sized for ``info``'s images."""
    component = get_component("architecture", name)
    backbone = component.build(options, in_chans=info.channels, image_size=info.image_size)
    if not isinstance(getattr(backbone, "num_features", None), int):
        raise TypeError(f"architecture {component.name!r} returned a module without an int 'num_features'")
    return backbone


def build_classifier(name: str, info: DatasetInfo, options: Mapping[str, Any] | None = None) -> Classifier:
    """A fresh classifier (backbone + linear head) for ``info``."""
    return Classifier(build_backbone(name, info, options), info.num_classes, info.mean, info.std)
