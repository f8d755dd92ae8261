"""Training: optimisers and schedules (``optim``) and per-epoch checkpoints (``checkpoint``)."""

from scdd.training.checkpoint import EpochCheckpoint, NoCheckpoint, epoch_checkpoint
from scdd.training.optim import OPTIMIZERS, NonFiniteLossError, check_finite, cosine_schedule, make_optimizer

__all__ = [
    "OPTIMIZERS",
    "EpochCheckpoint",
    "NoCheckpoint",
    "NonFiniteLossError",
    "check_finite",
    "cosine_schedule",
    "epoch_checkpoint",
    "make_optimizer",
]
