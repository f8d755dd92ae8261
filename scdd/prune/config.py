"""Settings of ``scdd prune``.

The paper (Sec. 3.5, Table 9) names network slimming on VGG-11 and gives no further settings, so
the values here are Liu et al.'s where they carry over (SGD with momentum 0.9, weight decay 1e-4)
and otherwise chosen for fine-tuning a trained network on a few distilled images with the relabel
stage's soft labels. Liu et al.'s sparsity λ = 1e-4 assumes 160 epochs of training from scratch at
lr 0.1 (about 60k steps); over the few hundred steps of fine-tuning on a distilled set it would move
no scale factor measurably, so λ here is 1e-2. 50 + 50 epochs use 100 relabelled epochs of crops.
"""

from __future__ import annotations

from dataclasses import dataclass

from scdd.errors import ConfigError
from scdd.training.optim import OPTIMIZERS


@dataclass
class PruneConfig:
    ratio: float = 0.5  # share of the prunable channels removed (global |γ| ranking)
    sparsity: float = 1e-2  # λ of the L1 penalty on BN scale factors
    sparsity_epochs: int = 50  # fine-tuning with the L1 penalty before pruning
    finetune_epochs: int = 50  # fine-tuning of the pruned network
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.01
    weight_decay: float = 1e-4
    momentum: float = 0.9
    temperature: float = 4.0  # soft-label temperature T of the KL loss (Eq. 10)
    min_channels: int = 1  # every pruned layer keeps at least this many channels

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"prune ratio must be in [0, 1), got {self.ratio}")
        if self.sparsity < 0 or self.sparsity_epochs < 0 or self.finetune_epochs < 0:
            raise ConfigError("prune needs sparsity >= 0, sparsity_epochs >= 0 and finetune_epochs >= 0")
        if self.batch_size < 1 or self.min_channels < 1 or self.temperature <= 0:
            raise ConfigError("prune needs batch_size >= 1, min_channels >= 1 and temperature > 0")
        if self.optimizer.lower() not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
