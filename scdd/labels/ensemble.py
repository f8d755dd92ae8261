"""Ensemble soft labels: several classifiers label each crop together (G-VBSM's multi-backbone soft
labels, CV-DD's committee with equal votes), chosen with ``relabel.extra_teachers``.

The ensemble's target at temperature T is the mean of the teachers' softened outputs,
``p = (1/K) Σ_k softmax(z_k / T)``. It is kept as logits ``T · log p`` (``TeacherEnsemble``), which
``softmax(· / T)`` maps back to ``p`` exactly, so every label encoding, stored or online, and the
student's loss (Eq. 10) handle it as they handle one teacher's logits. T is ``relabel.temperature``,
which ``scdd run`` ties to post-training's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from scdd.artifacts import file_sha256


class TeacherEnsemble(nn.Module):
    """Maps pixels in [0, 1] to ``T · log mean_k softmax(teacher_k(pixels) / T)``."""

    def __init__(self, teachers: Sequence[nn.Module], temperature: float) -> None:
        super().__init__()
        self.teachers = nn.ModuleList(teachers)
        self.temperature = temperature

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        softened = torch.stack([F.log_softmax(teacher(pixels).float() / self.temperature, dim=-1) for teacher in self.teachers])
        return self.temperature * (torch.logsumexp(softened, dim=0) - math.log(len(self.teachers)))


def teacher_entry(path: str | Path, folder: str | Path) -> dict[str, Any]:
    """A teacher as label metadata records it: its path relative to the labels' ``folder`` (a run folder moved
    or copied whole keeps finding it) and its SHA-256."""
    return {"path": os.path.relpath(Path(path).resolve(), Path(folder).resolve()), "sha256": file_sha256(path)}
