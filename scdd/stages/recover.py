"""Stage 3, recover: synthesise images from Gaussian noise (Eq. 9).

Each batch minimises ``CE(model(aug(x')), y) + α · R_reg(aug(x'))`` where ``R_reg`` is the
registered matcher's statistic-matching loss (Eq. 8). Optimisation follows SRe²L/SC-DD:
Adam with β = (0.5, 0.9), cosine learning rate, a fresh random-resized crop (+ flip where the
dataset allows) of every synthetic image each step, and clipping to the valid pixel range
after each step. Images are optimised in normalised space, as the paper's learning rates assume.

Every (class, ipc-index) image starts from its own seeded noise, and batches are formed in a
fixed order with a per-batch seed, so any batch can be recomputed identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scdd.artifacts import export_image_folder, load_model, save_tensors
from scdd.augment import CropSpec, apply_crops, sample_boxes, sample_flips
from scdd.data.base import DatasetInfo
from scdd.errors import ConfigError
from scdd.models.classifier import Classifier
from scdd.progress import SILENT, Progress
from scdd.registry import get_component
from scdd.runtime import generator
from scdd.stages.common import StageResult, Stopwatch, info_dict
from scdd.training import check_finite, cosine_schedule

DISTILLED_FILE = "distilled.safetensors"
TRAJECTORY_FILE = "trajectory.safetensors"
IMAGE_FOLDER = "images"
SYNC_EVERY = 25


@dataclass
class RecoverConfig:
    """Defaults: Table 16 (ImageNet-1K recover column) and Table 5 (first-BN multiplier 10)."""

    matcher: str = "imbalanced-bn"
    matcher_options: dict[str, Any] = field(default_factory=dict)
    ipc: int = 50
    iterations: int = 1000
    batch_size: int = 50
    lr: float = 0.25
    betas: tuple[float, float] = (0.5, 0.9)
    alpha_bn: float = 0.0005
    crop_min_scale: float = 0.08

    def __post_init__(self) -> None:
        if self.ipc < 1:
            raise ConfigError(f"ipc must be at least 1, got {self.ipc}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ConfigError("recovery needs iterations >= 1 and batch_size >= 1")


@dataclass
class Synthesis:
    """Recovered images (float pixels in [0, 1]) with their labels and loss trajectories per batch."""

    images: torch.Tensor
    labels: torch.Tensor
    ipc_index: torch.Tensor
    loss_ce: torch.Tensor  # [batches, iterations]
    loss_bn: torch.Tensor  # [batches, iterations]


def recovery_order(num_classes: int, ipc: int) -> list[tuple[int, int]]:
    """All (class, ipc-index) pairs, ipc-index major, so each batch mixes classes."""
    return [(label, index) for index in range(ipc) for label in range(num_classes)]


def initial_noise(info: DatasetInfo, members: list[tuple[int, int]], seed: int) -> torch.Tensor:
    """Standard-normal starting point (in normalised space) of each (class, ipc-index) image."""
    shape = (info.channels, info.image_size, info.image_size)
    return torch.stack([torch.randn(shape, generator=generator(seed, "recover-init", c, i)) for c, i in members])


def synthesize(
    classifier: Classifier,
    info: DatasetInfo,
    config: RecoverConfig,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> Synthesis:
    """Recover ``config.ipc`` images per class from ``classifier`` (data-free)."""
    classifier.to(device).eval()
    for parameter in classifier.parameters():
        parameter.requires_grad_(False)
    matcher = get_component("matcher", config.matcher).build(config.matcher_options)
    order = recovery_order(info.num_classes, config.ipc)
    batches = [order[start : start + config.batch_size] for start in range(0, len(order), config.batch_size)]
    images, ce_curves, bn_curves = [], [], []
    task = progress.task("recover", len(batches) * config.iterations)
    matcher.attach(classifier)
    try:
        for members in batches:
            pixels, ce_curve, bn_curve = _recover_batch(classifier, matcher, info, config, members, device, seed, task)
            images.append(pixels)
            ce_curves.append(ce_curve)
            bn_curves.append(bn_curve)
    finally:
        matcher.detach()
        task.close()
    return Synthesis(
        images=torch.cat(images),
        labels=torch.tensor([label for label, _ in order], dtype=torch.long),
        ipc_index=torch.tensor([index for _, index in order], dtype=torch.long),
        loss_ce=torch.stack(ce_curves),
        loss_bn=torch.stack(bn_curves),
    )


def _recover_batch(classifier, matcher, info, config, members, device, seed, task):
    mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)
    low, high = (0 - mean) / std, (1 - mean) / std
    targets = torch.tensor([label for label, _ in members], device=device)
    latent = initial_noise(info, members, seed).to(device).requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=config.lr, betas=config.betas)
    schedule = cosine_schedule(optimizer, config.iterations)
    crop = CropSpec(scale=(config.crop_min_scale, 1.0))
    flip_p = 0.5 if info.hflip else 0.0
    augment = generator(seed, "recover-augment", *members[0], len(members), device=device)
    loss_ce = torch.zeros(config.iterations, device=device)
    loss_bn = torch.zeros(config.iterations, device=device)
    n = len(members)
    for step in range(config.iterations):
        boxes = sample_boxes(n, crop, generator=augment, device=device)
        flips = sample_flips(n, flip_p, generator=augment, device=device) if flip_p > 0 else None
        view = apply_crops(latent * std + mean, boxes, flips, info.image_size)
        ce = F.cross_entropy(classifier(view), targets)
        bn = matcher.loss()
        loss = ce + config.alpha_bn * bn
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            latent.copy_(torch.maximum(torch.minimum(latent, high), low))
            loss_ce[step] = ce.detach()
            loss_bn[step] = bn.detach()
        metrics = {}
        if (step + 1) % SYNC_EVERY == 0 or step + 1 == config.iterations:
            metrics = {
                "ce": check_finite(ce.item(), "recover", step + 1),
                "bn": check_finite(bn.detach().item(), "recover", step + 1),
            }
        task.advance(1, **metrics)
    pixels = (latent.detach() * std + mean).clamp(0, 1).cpu()
    return pixels, loss_ce.cpu(), loss_bn.cpu()


def recover(
    config: RecoverConfig,
    classifier_path: Path,
    out_dir: Path,
    *,
    device: torch.device,
    seed: int,
    progress: Progress = SILENT,
) -> StageResult:
    """Recover a distilled set from an aligned classifier; writes the images (safetensors + PNG folder)
    and the L_CE / L_BN trajectories (Fig. 5)."""
    classifier, record = load_model(classifier_path, "classifier")
    info = record.dataset
    matcher_name = get_component("matcher", config.matcher).name
    with Stopwatch() as clock:
        result = synthesize(classifier, info, config, device=device, seed=seed, progress=progress)
    out_dir = Path(out_dir)
    metadata = {"kind": "distilled", "dataset": info_dict(info), "ipc": config.ipc, "source": "recover", "matcher": matcher_name}
    distilled = save_tensors(
        out_dir / DISTILLED_FILE,
        {"images": result.images, "labels": result.labels, "ipc_index": result.ipc_index},
        metadata,
    )
    trajectory = save_tensors(
        out_dir / TRAJECTORY_FILE, {"loss_ce": result.loss_ce, "loss_bn": result.loss_bn}, {"kind": "trajectory"}
    )
    folder = export_image_folder(result.images, result.labels, info.class_names, out_dir / IMAGE_FOLDER)
    bn_start, bn_end = result.loss_bn[:, 0].mean().item(), result.loss_bn[:, -1].mean().item()
    return StageResult(
        "recover",
        artifacts={"distilled": distilled, "trajectory": trajectory, "image_folder": folder},
        metrics={
            "images": len(result.labels),
            "loss_bn_first": bn_start,
            "loss_bn_last": bn_end,
            "loss_ce_first": result.loss_ce[:, 0].mean().item(),
            "loss_ce_last": result.loss_ce[:, -1].mean().item(),
        },
        seconds=clock.seconds,
    )
