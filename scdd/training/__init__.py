"""Training: the one epoch loop (``loop``), optimisers and schedules (``optim``), per-epoch
checkpoints (``checkpoint``) and the batches and loss of training on a distilled set (``distilled``)."""

from scdd.training.checkpoint import EpochCheckpoint, NoCheckpoint, epoch_checkpoint
from scdd.training.loop import SYNC_EVERY, OptimizerSettings, TrainLoop
from scdd.training.optim import (
    OPTIMIZERS,
    NonFiniteLossError,
    TrainingConfig,
    check_finite,
    cosine_schedule,
    make_optimizer,
)

__all__ = [
    "OPTIMIZERS",
    "SYNC_EVERY",
    "EpochCheckpoint",
    "NoCheckpoint",
    "NonFiniteLossError",
    "OptimizerSettings",
    "TrainLoop",
    "TrainingConfig",
    "check_finite",
    "cosine_schedule",
    "epoch_checkpoint",
    "make_optimizer",
]
