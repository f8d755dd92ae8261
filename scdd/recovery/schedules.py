"""Crop-scale schedules of recovery: the ``crop_schedule`` component kind.

Recovery optimises the images through a random-resized crop of each image every step (SRe²L's
protocol); ``recover.crop_min_scale`` / ``crop_max_scale`` give its area range. A schedule decides
the range at each step:

* ``constant`` (the paper's): the configured range at every step.
* ``curriculum`` (CDA, Yin & Shen 2024, "easy to hard"): the lower bound of the area starts at
  ``start_min_scale`` (large crops: the whole object, easy) and falls to the configured
  ``crop_min_scale`` (small crops: parts, hard) by the ``milestone`` fraction of the iterations,
  along a ``cosine``, ``linear`` or ``step`` shape, then stays there.

Contract: the factory returns an object with ``scale(step, total, base) -> (low, high)``, where
``base`` is the configured ``(crop_min_scale, crop_max_scale)`` and ``0 < low <= high <= 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from scdd.errors import ConfigError

SHAPES = ("cosine", "linear", "step")


class CropSchedule(Protocol):
    """What a registered crop schedule builds: the crop scales of recovery step ``step`` of ``total``."""

    def scale(self, step: int, total: int, base: tuple[float, float]) -> tuple[float, float]: ...


@dataclass
class ConstantScheduleConfig:
    """``constant`` has no options: the configured crop scales at every step (SRe²L, SC-DD)."""


class ConstantSchedule:
    def scale(self, step: int, total: int, base: tuple[float, float]) -> tuple[float, float]:
        return base


@dataclass
class CurriculumConfig:
    """``curriculum`` options (CDA): the lower crop scale at step 0, the share of the iterations over
    which it falls to ``recover.crop_min_scale``, and the shape of the fall."""

    start_min_scale: float = 1.0
    milestone: float = 1.0
    shape: str = "cosine"

    def __post_init__(self) -> None:
        if not 0 < self.start_min_scale <= 1:
            raise ConfigError(f"curriculum start_min_scale must be in (0, 1], got {self.start_min_scale}")
        if not 0 < self.milestone <= 1:
            raise ConfigError(f"curriculum milestone must be in (0, 1], got {self.milestone}")
        if self.shape not in SHAPES:
            raise ConfigError(f"curriculum shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")


class CurriculumSchedule:
    def __init__(self, config: CurriculumConfig) -> None:
        self.config = config

    def scale(self, step: int, total: int, base: tuple[float, float]) -> tuple[float, float]:
        low_end, high = base
        start = max(low_end, min(self.config.start_min_scale, high))
        progress = min(1.0, step / max(1.0, self.config.milestone * total))
        if self.config.shape == "cosine":
            remaining = 0.5 * (1 + math.cos(math.pi * progress))
        elif self.config.shape == "linear":
            remaining = 1.0 - progress
        else:  # step: easy until the milestone, then hard
            remaining = 1.0 if progress < 1.0 else 0.0
        return low_end + (start - low_end) * remaining, high


def build_constant(config: ConstantScheduleConfig) -> ConstantSchedule:
    """``constant``: the paper's fixed crop scales."""
    return ConstantSchedule()


def build_curriculum(config: CurriculumConfig) -> CurriculumSchedule:
    """``curriculum``: CDA's easy-to-hard lower crop scale."""
    return CurriculumSchedule(config)
