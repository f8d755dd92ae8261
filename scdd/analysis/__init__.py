"""Analyses of checkpoints and runs: BatchNorm statistics (Theorem 1, Eq. 7, Table 2, Fig. 4)."""

from scdd.analysis.bn_stats import (
    BNLayerStats,
    CheckpointBNStats,
    gaussian_entropy,
    inspect_checkpoint,
    inspect_checkpoints,
    model_statistics,
)

__all__ = [
    "BNLayerStats",
    "CheckpointBNStats",
    "gaussian_entropy",
    "inspect_checkpoint",
    "inspect_checkpoints",
    "model_statistics",
]
