"""Settings of the run report (``report.html``)."""

from __future__ import annotations

from dataclasses import dataclass

from scdd.errors import ConfigError


@dataclass
class ReportConfig:
    cluster_classes: str = ""  # comma-separated class names or indices for Fig. 7; empty: the first three
    max_classes: int = 100  # class grids shown (the first ones); the rest are counted, not drawn
    max_images_per_class: int = 50  # images per class grid

    def __post_init__(self) -> None:
        if self.max_classes < 1 or self.max_images_per_class < 1:
            raise ConfigError("report needs max_classes >= 1 and max_images_per_class >= 1")
