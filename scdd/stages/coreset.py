"""Real-image subsets written as distilled-set artifacts, so they go through the same
relabel / post-train protocol as synthetic data (the coreset baselines of Table 1).

``random`` draws IPC training images per class uniformly; ``herding`` picks, per class, the images
whose running feature mean stays closest to the class mean (Welling 2009, as iCaRL uses it), on the
aligned model's L2-normalised backbone features.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from scdd.artifacts import save_tensors
from scdd.data.base import DatasetSplits, ImageTensorDataset, class_members, iterate_batches, labels_of, to_float_pixels
from scdd.distributed import on_main
from scdd.errors import ConfigError, DataError
from scdd.models.classifier import Classifier
from scdd.models.saved import load_classifier
from scdd.progress import SILENT, Progress
from scdd.runtime import generator
from scdd.stages.common import StageResult, Stopwatch, info_dict
from scdd.stages.recover import DISTILLED_FILE

CORESET_METHODS = ("random", "herding")
CPU = torch.device("cpu")


def _gather(data: DatasetSplits, chosen: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.stack([to_float_pixels(torch.as_tensor(data.train[i][0])) for i in chosen])
    return images, labels_of(data.train)[chosen]


def random_real(data: DatasetSplits, ipc: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` training images per class, drawn uniformly without replacement."""
    chosen = []
    for label, members in enumerate(class_members(data, ipc)):
        pick = torch.randperm(len(members), generator=generator(seed, "coreset-random", label))[:ipc]
        chosen.extend(members[pick].tolist())
    return _gather(data, chosen)


def herding_order(features: torch.Tensor, count: int) -> list[int]:
    """Greedy herding: each step adds the row that brings the selected rows' mean closest to the mean of all rows."""
    target = features.mean(dim=0)
    total = torch.zeros_like(target)
    available = torch.ones(len(features), dtype=torch.bool, device=features.device)
    chosen: list[int] = []
    for step in range(1, count + 1):
        distance = ((target - (total + features) / step) ** 2).sum(dim=1)
        distance[~available] = float("inf")
        pick = int(distance.argmin())
        chosen.append(pick)
        available[pick] = False
        total += features[pick]
    return chosen


def _subset(dataset: Dataset, indices: torch.Tensor) -> Dataset:
    if isinstance(dataset, ImageTensorDataset):
        return ImageTensorDataset(dataset.images[indices], dataset.labels[indices])
    return Subset(dataset, indices.tolist())


@torch.no_grad()
def _features(model: Classifier, dataset: Dataset, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    parts = [model.features(images.to(device)).float() for images, _ in iterate_batches(dataset, batch_size)]
    return torch.nn.functional.normalize(torch.cat(parts), dim=1)


def herding_real(
    data: DatasetSplits, ipc: int, classifier: Classifier, *, device: torch.device, progress: Progress = SILENT
) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` training images per class chosen by herding on ``classifier``'s backbone features."""
    chosen = []
    members_per_class = class_members(data, ipc)
    task = progress.task("coreset herding", len(members_per_class))
    for members in members_per_class:
        features = _features(classifier, _subset(data.train, members), device)
        chosen.extend(members[herding_order(features, ipc)].tolist())
        task.advance(1)
    task.close()
    return _gather(data, chosen)


def check_method(method: str) -> None:
    """A coreset method must be one of ``CORESET_METHODS``; otherwise a one-line error."""
    if method not in CORESET_METHODS:
        raise ConfigError(f"coreset method must be one of {', '.join(CORESET_METHODS)}, got {method!r}")


def coreset(
    method: str,
    data: DatasetSplits,
    ipc: int,
    out_dir: Path,
    *,
    seed: int,
    classifier_path: Path | None = None,
    device: torch.device = CPU,
    progress: Progress = SILENT,
) -> StageResult:
    """Pick ``ipc`` real training images per class (``random`` or ``herding``) and write them as a distilled set."""
    check_method(method)
    with Stopwatch() as clock:
        if method == "random":
            images, labels = random_real(data, ipc, seed)
        else:
            if classifier_path is None:
                raise ConfigError("herding needs the aligned classifier whose backbone features it uses")
            classifier, record = load_classifier(classifier_path)
            if record.dataset.num_classes != data.info.num_classes:
                raise DataError(f"{classifier_path}: classifier has {record.dataset.num_classes} classes, dataset {data.info.num_classes}")
            images, labels = herding_real(data, ipc, classifier.to(device), device=device, progress=progress)
    metadata = {"kind": "distilled", "dataset": info_dict(data.info), "ipc": ipc, "source": f"coreset-{method}"}
    path = on_main(save_tensors, Path(out_dir) / DISTILLED_FILE, {"images": images, "labels": labels}, metadata)  # rank 0 writes
    return StageResult("coreset", artifacts={"distilled": path}, metrics={"images": len(labels), "method": method}, seconds=clock.seconds)


def coreset_random(data: DatasetSplits, ipc: int, out_dir: Path, *, seed: int) -> StageResult:
    return coreset("random", data, ipc, out_dir, seed=seed)
