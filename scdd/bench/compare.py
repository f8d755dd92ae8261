"""Any method's distilled sets against random real images with identical labels: the figure ``scdd bench`` leads with.

A plugin with a new way of making images (a recovery, a selection, a generator) passes its distilled
set for each seed and the teacher that should label it; ``gain_over_random_real`` relabels those
images and a random real subset of the same IPC (same seed) with that one teacher, post-trains every
student with the same recipe and seed, evaluates both, and returns the paired gain
(``scdd.bench.gain``). The bench suites measure their rows the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from scdd.artifacts import file_sha256
from scdd.bench.gain import Measured, PairedGain, label_identity, paired_gain
from scdd.config import RunConfig
from scdd.data.base import DatasetSplits
from scdd.data.loading import load_dataset
from scdd.distilled import load_distilled
from scdd.errors import ConfigError
from scdd.progress import SILENT, Progress
from scdd.stages.coreset import coreset
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.relabel import relabel


@dataclass(frozen=True)
class Comparison:
    """One student's result: the method's top-1 per seed, random real's, and the paired gain."""

    method: Measured
    random_real: Measured
    gain: PairedGain


def _students(distilled: Path, teacher: Path, config: RunConfig, data, folder: Path, seed: int, device, progress) -> dict[str, float]:
    labels = relabel(config.relabel, teacher, distilled, folder / "relabel", device=device, seed=seed, progress=progress)
    trained = posttrain(
        config.posttrain, distilled, labels.artifacts["soft_labels"], folder / "posttrain", device=device, seed=seed, progress=progress
    )
    evaluated = evaluate(trained.artifacts, data, device=device)
    return {name: values["top1"] for name, values in evaluated.metrics.items()}


def gain_over_random_real(
    images: Mapping[int, Path],
    teacher: Path,
    config: RunConfig,
    out_dir: Path,
    *,
    device: torch.device,
    data: DatasetSplits | None = None,
    progress: Progress = SILENT,
) -> dict[str, Comparison]:
    """For each student of ``config.posttrain``: the method's images (one distilled set per seed) against
    random real images of the same IPC and seed, both relabelled by ``teacher`` with ``config.relabel``
    and post-trained with ``config.posttrain``; top-1 on ``config``'s evaluation split."""
    if not images:
        raise ConfigError("gain_over_random_real needs at least one seed's distilled set")
    if config.posttrain.labels != "soft":
        raise ConfigError("gain_over_random_real compares soft labels from one teacher; posttrain.labels must be 'soft'")
    data = data if data is not None else load_dataset(config)
    identity = label_identity(file_sha256(teacher), config.relabel, config.posttrain)
    ours: dict[str, dict[int, float]] = {}
    real: dict[str, dict[int, float]] = {}
    for seed, path in sorted(images.items()):
        ipc = load_distilled(path).ipc
        folder = Path(out_dir) / f"seed{seed}"
        for name, top1 in _students(path, teacher, config, data, folder / "method", seed, device, progress).items():
            ours.setdefault(name, {})[seed] = top1
        subset = coreset("random", data, ipc, folder / "random-real" / "coreset", seed=seed)
        for name, top1 in _students(
            subset.artifacts["distilled"], teacher, config, data, folder / "random-real", seed, device, progress
        ).items():
            real.setdefault(name, {})[seed] = top1
    result = {}
    for name in ours:
        method, baseline = Measured(ours[name], identity, str(teacher)), Measured(real[name], identity, str(teacher))
        result[name] = Comparison(method, baseline, paired_gain(method, baseline))
    return result
