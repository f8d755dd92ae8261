"""The figure a distilled set is judged by: its gain over random real images with identical labels.

A distilled set is worth its cost only if students trained on it beat students trained on the same
number of random real training images, relabelled by the same teacher and post-trained the same way
(Qin et al. 2024, "A Label is Worth a Thousand Images": under identical soft labels most decoupled
methods do not). The gain is paired by seed: seed s of the row and seed s of the random-real baseline
share the post-training seed, and the gain is the mean ± sample standard deviation of the per-seed
differences. Rows whose labels come from another teacher (or another relabel / post-training recipe)
than the baseline's are not comparable: ``paired_gain`` refuses them with ``LabelMismatchError``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scdd.errors import ConfigError


class LabelMismatchError(ConfigError):
    """Two rows were relabelled by different teachers (or recipes), so their difference mixes label and image quality."""


def label_identity(teacher: str, relabel: Any, posttrain: Any) -> str:
    """Equal for two rows exactly when their students learn from identical labels: the same labelling
    teacher (``teacher`` identifies it: a teacher's config key or its file's SHA-256), relabel settings
    and post-training recipe (the relabel and post-train config dataclasses)."""
    recipe = json.dumps([teacher, dataclasses.asdict(relabel), dataclasses.asdict(posttrain)], sort_keys=True, default=str)
    return hashlib.sha256(recipe.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Measured:
    """A row's top-1 per seed and the identity of the labels its students learnt from.

    ``labels`` names the relabelling teacher and recipe (``scdd.bench.plan.label_identity``); ``teacher``
    is a readable name for messages."""

    top1: Mapping[int, float]
    labels: str
    teacher: str = ""


@dataclass(frozen=True)
class PairedGain:
    """Per-seed differences ``row − baseline`` and their mean ± sample std (0 for one seed)."""

    per_seed: Mapping[int, float] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(sorted(self.per_seed))

    @property
    def mean(self) -> float:
        return statistics.fmean(self.per_seed.values())

    @property
    def std(self) -> float:
        values = list(self.per_seed.values())
        return statistics.stdev(values) if len(values) > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:+.1f} ± {self.std:.1f}"


def paired_gain(row: Measured, baseline: Measured) -> PairedGain:
    """``row``'s gain over ``baseline`` on the seeds both measured; refuses rows with other labels."""
    if row.labels != baseline.labels:
        raise LabelMismatchError(
            f"labels differ: the row was relabelled by {row.teacher or row.labels}, the baseline by "
            f"{baseline.teacher or baseline.labels}; a gain would mix label and image quality"
        )
    seeds = sorted(set(row.top1) & set(baseline.top1))
    if not seeds:
        raise ConfigError("no seed was measured for both the row and the baseline; a paired gain needs shared seeds")
    return PairedGain({seed: row.top1[seed] - baseline.top1[seed] for seed in seeds})
