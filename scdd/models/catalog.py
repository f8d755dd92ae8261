"""Parameter counts of every registered architecture as a classifier for a given input geometry."""

from __future__ import annotations

from dataclasses import dataclass

from scdd.data.base import DatasetInfo
from scdd.models.build import build_classifier
from scdd.registry import get_registry


@dataclass(frozen=True)
class ArchitectureRow:
    name: str
    aliases: tuple[str, ...]
    description: str
    params: int


def architecture_rows(*, channels: int = 3, image_size: int = 224, num_classes: int = 1000) -> list[ArchitectureRow]:
    """Each registered architecture built (untrained) as a ``num_classes``-way classifier for
    ``channels`` x ``image_size`` px inputs; defaults are ImageNet-1K's, as Table 8 counts them."""
    info = DatasetInfo(
        "catalog",
        num_classes,
        channels,
        image_size,
        (0.5,) * channels,
        (0.5,) * channels,
        tuple(str(i) for i in range(num_classes)),
    )
    rows = []
    for component in get_registry():
        if component.kind != "architecture":
            continue
        model = build_classifier(component.name, info)
        rows.append(ArchitectureRow(component.name, component.aliases, component.description, sum(p.numel() for p in model.parameters())))
    return rows
