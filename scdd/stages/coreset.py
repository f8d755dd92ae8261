"""Real-image subsets written as distilled-set artifacts, so they go through the same
relabel / post-train protocol as synthetic data (the coreset baselines of Table 1)."""

from __future__ import annotations

from pathlib import Path

import torch

from scdd.artifacts import save_tensors
from scdd.data.base import DatasetSplits, labels_of, to_float_pixels
from scdd.errors import ConfigError, DataError
from scdd.runtime import generator
from scdd.stages.common import StageResult, info_dict
from scdd.stages.recover import DISTILLED_FILE


def random_real(data: DatasetSplits, ipc: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``ipc`` training images per class, drawn uniformly without replacement."""
    if ipc < 1:
        raise ConfigError(f"ipc must be at least 1, got {ipc}")
    labels = labels_of(data.train)
    chosen = []
    for label in range(data.info.num_classes):
        members = torch.nonzero(labels == label).flatten()
        if len(members) < ipc:
            raise DataError(f"class {data.info.class_names[label]!r} has {len(members)} training images, fewer than ipc {ipc}")
        pick = torch.randperm(len(members), generator=generator(seed, "coreset-random", label))[:ipc]
        chosen.extend(members[pick].tolist())
    images = torch.stack([to_float_pixels(torch.as_tensor(data.train[i][0])) for i in chosen])
    return images, labels[chosen]


def coreset_random(data: DatasetSplits, ipc: int, out_dir: Path, *, seed: int) -> StageResult:
    images, labels = random_real(data, ipc, seed)
    metadata = {"kind": "distilled", "dataset": info_dict(data.info), "ipc": ipc, "source": "coreset-random"}
    path = save_tensors(Path(out_dir) / DISTILLED_FILE, {"images": images, "labels": labels}, metadata)
    return StageResult("coreset", artifacts={"distilled": path}, metrics={"images": len(labels)})
