"""A validation split carved from the training images, for choosing budgets and hyperparameters.

Tuning on the held-out split would report it optimistically. With ``eval_split = "validation"`` a run
trains every model (teacher and students) on the training images minus a stratified carve and
reports its accuracies on the carve; the real held-out split is not read. The carve takes
``round(fraction × n_c)`` images of every class c (at least one, leaving at least one), chosen by a
fixed seed that no run seed changes, so the same dataset always gives the same carve. It works on
any dataset: in-memory tensors are indexed, other datasets are wrapped in a subset that keeps its
labels (no image is decoded to carve).
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from scdd.data.base import DatasetSplits, ImageTensorDataset, labels_of
from scdd.errors import ConfigError, DataError

CARVE_SEED = 20240613  # fixed: the carve never depends on a run's seed
EVAL_SPLITS = ("held-out", "validation")


class LabelledSubset(Subset):
    """A subset that keeps its labels as ``targets`` (``labels_of`` reads them without decoding)."""

    def __init__(self, dataset: Dataset, indices: torch.Tensor, labels: torch.Tensor) -> None:
        super().__init__(dataset, indices.tolist())
        self.targets = labels


def take(dataset: Dataset, indices: torch.Tensor) -> Dataset:
    """The ``indices`` rows of ``dataset`` as a dataset of the same kind where possible."""
    if isinstance(dataset, ImageTensorDataset):
        return ImageTensorDataset(dataset.images[indices], dataset.labels[indices])
    return LabelledSubset(dataset, indices, labels_of(dataset)[indices])


def carve_indices(labels: torch.Tensor, num_classes: int, fraction: float, seed: int = CARVE_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, carved)`` sorted training indices: ``round(fraction × n_c)`` of each class c carved."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation_fraction must be between 0 and 1, got {fraction}")
    kept, carved = [], []
    gen = torch.Generator().manual_seed(seed)
    for label in range(num_classes):
        members = torch.nonzero(labels == label).flatten()
        if len(members) < 2:
            raise DataError(f"class {label} has {len(members)} training images; carving a validation split needs at least 2")
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        shuffled = members[torch.randperm(len(members), generator=gen)]
        carved.append(shuffled[:count])
        kept.append(shuffled[count:])
    return torch.cat(kept).sort().values, torch.cat(carved).sort().values


def carve_validation(data: DatasetSplits, fraction: float, seed: int = CARVE_SEED) -> DatasetSplits:
    """``data`` with its training split cut into training (the rest) and evaluation (the carve) parts."""
    kept, carved = carve_indices(labels_of(data.train), data.info.num_classes, fraction, seed)
    return DatasetSplits(data.info, take(data.train, kept), take(data.train, carved), skipped=data.skipped)


def select_split(data: DatasetSplits, eval_split: str, fraction: float) -> DatasetSplits:
    """The splits a run uses: as loaded (``held-out``) or with the validation carve (``validation``)."""
    if eval_split not in EVAL_SPLITS:
        raise ConfigError(f"eval_split must be one of {', '.join(EVAL_SPLITS)}, got {eval_split!r}")
    if eval_split == "held-out":
        return data
    return carve_validation(data, fraction)
