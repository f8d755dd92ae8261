"""Optimisers, cosine schedules and finiteness checks shared by every training loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from lightly.utils.lars import LARS
from torch.optim.optimizer import ParamsT

from scdd._options import check_memory_format
from scdd.errors import ConfigError, ScddError

OPTIMIZERS = ("sgd", "adamw", "adam", "lars")


@dataclass
class TrainingConfig:
    """A training budget and its optimiser; the defaults are Table 14's "Pretrain" column (SGD, lr 0.06,
    weight decay 5e-4, momentum 0.9, batch 512, 200 epochs). Recipes subclass it with their own values."""

    epochs: int = 200
    batch_size: int = 512
    optimizer: str = "sgd"
    lr: float = 0.06
    weight_decay: float = 5e-4
    momentum: float = 0.9
    memory_format: str = "auto"  # the trained networks' layout: auto (channels-last on CPU), channels-last, contiguous

    def __post_init__(self) -> None:
        check_memory_format(self.memory_format)


class NonFiniteLossError(ScddError):
    """A loss became NaN or infinite; training stops rather than writing garbage."""


def make_optimizer(
    name: str,
    params: ParamsT,
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Optimizer:
    """SGD (with momentum), Adam or AdamW, as the paper's tables name them, or LARS (lightly's: SGD with
    layer-wise trust ratios, as SwAV and SimCLR train; parameters without weight decay keep plain SGD)."""
    key = name.lower()
    if key == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if key == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if key == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    if key == "lars":
        return LARS(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")


def decay_groups(module: torch.nn.Module) -> list[dict]:
    """Optimiser parameter groups that exempt biases and normalisation parameters (every parameter
    with fewer than 2 dimensions) from weight decay, as the official ImageNet post-training does
    (SC-DD's and SRe²L's ``get_parameters``: decay only weights with ``ndim > 1``)."""
    trained = [p for p in module.parameters() if p.requires_grad]
    return [{"params": [p for p in trained if p.ndim > 1]}, {"params": [p for p in trained if p.ndim <= 1], "weight_decay": 0.0}]


def cosine_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step cosine decay to zero after an optional linear warm-up."""
    total_steps = max(1, total_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def check_finite(value: float, stage: str, step: int) -> float:
    """Raise ``NonFiniteLossError`` naming the stage and step when ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        raise NonFiniteLossError(f"{stage}: loss became {value} at step {step}; stopping")
    return value
