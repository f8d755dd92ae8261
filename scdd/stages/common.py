"""Small pieces the stage functions share."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from scdd.data.base import DatasetInfo, iterate_batches


@dataclass
class StageResult:
    """What a stage produced: its artifact files, metrics for the manifest, and wall time."""

    stage: str
    artifacts: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


@torch.no_grad()
def accuracy(model: torch.nn.Module, dataset, *, device: torch.device, batch_size: int = 512, topk=(1, 5)) -> dict[str, float]:
    """Top-k accuracy in percent over every example of ``dataset`` (eval mode)."""
    model.eval()
    correct = {k: 0 for k in topk}
    total = 0
    for images, labels in iterate_batches(dataset, batch_size):
        logits = model(images.to(device))
        labels = labels.to(device)
        ranked = logits.topk(min(max(topk), logits.shape[1]), dim=1).indices
        for k in topk:
            correct[k] += int((ranked[:, :k] == labels[:, None]).any(dim=1).sum())
        total += len(labels)
    return {f"top{k}": 100.0 * correct[k] / total for k in topk}


def info_dict(info: DatasetInfo) -> dict[str, Any]:
    return asdict(info)
