"""Extra terms of the recovery objective: the ``regularizer`` component kind.

Eq. 9 is ``CE + α·R_reg`` (R_reg: the matcher's statistic term). A regularizer adds its own term,
with the view and logits of the step at hand. Registered:

* ``flatness`` (EDC's flatness regularisation, Shao et al. 2024): an exponential moving average
  of the synthetic images is kept through recovery, and the term is
  ``weight · T² · KL(softmax(f(view(x̄))/T) ‖ softmax(f(view(x))/T))``: the same view of the EMA
  images and of the current ones should get the same prediction, so the images move in directions
  along which the teacher's output is flat (the trajectory form of sharpness-aware minimisation,
  as SAF does for weights). It costs one extra forward pass (no backward) per step.

Contract: the factory returns an object with ``begin(latent)`` (a new batch starts; ``latent`` are
its images in normalised space), ``loss(step) -> tensor`` for a ``RecoveryStep``, and
``after_step(latent)`` (the images after the optimiser's step). The matcher's loss of the step is
taken before ``loss`` is called, so a regularizer may run the model again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from scdd.errors import ConfigError


@dataclass
class RecoveryStep:
    """One optimisation step of one batch, as a regularizer sees it."""

    step: int
    total: int
    latent: torch.Tensor  # the images being optimised, normalised space
    view: torch.Tensor  # this step's differentiable view of them
    logits: torch.Tensor  # the classifier's logits on ``view`` (float)
    targets: torch.Tensor  # class of each image
    same_view: Callable[[torch.Tensor], torch.Tensor]  # this step's crop / flip / shift applied to other images
    logits_of: Callable[[torch.Tensor], torch.Tensor]  # the classifier on an already normalised view


class Regularizer(Protocol):
    """What a registered extra recovery term builds (``begin`` / ``loss`` / ``after_step``)."""

    def begin(self, latent: torch.Tensor) -> None: ...

    def loss(self, step: RecoveryStep) -> torch.Tensor: ...

    def after_step(self, latent: torch.Tensor) -> None: ...


@dataclass
class FlatnessConfig:
    """``flatness`` options: term weight, EMA decay of the images per step, softmax temperature."""

    weight: float = 1.0
    ema_decay: float = 0.99
    temperature: float = 1.0

    def __post_init__(self) -> None:
        checks = (
            (self.weight >= 0, f"flatness weight must not be negative, got {self.weight}"),
            (0 <= self.ema_decay < 1, f"flatness ema_decay must be in [0, 1), got {self.ema_decay}"),
            (self.temperature > 0, f"flatness temperature must be positive, got {self.temperature}"),
        )
        for valid, message in checks:
            if not valid:
                raise ConfigError(message)


class Flatness:
    def __init__(self, config: FlatnessConfig) -> None:
        self.config = config
        self.average: torch.Tensor | None = None

    def begin(self, latent: torch.Tensor) -> None:
        self.average = latent.detach().clone()

    def loss(self, step: RecoveryStep) -> torch.Tensor:
        temperature = self.config.temperature
        assert self.average is not None, "begin() sets the average"
        with torch.no_grad():
            anchor = step.logits_of(step.same_view(self.average)).float()
        kl = F.kl_div(
            F.log_softmax(step.logits / temperature, dim=1),
            F.log_softmax(anchor / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return self.config.weight * temperature**2 * kl

    def after_step(self, latent: torch.Tensor) -> None:
        assert self.average is not None, "begin() sets the average"
        self.average.mul_(self.config.ema_decay).add_(latent.detach(), alpha=1 - self.config.ema_decay)


def build_flatness(config: FlatnessConfig) -> Flatness:
    """``flatness``: EDC's flatness term, KL between logits on the images and on their EMA."""
    return Flatness(config)
