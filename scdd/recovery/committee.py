"""Recovery from several teachers at once (``recover.extra_teachers``): G-VBSM's statistics of several
backbones (Shao et al. 2024), with the committee's mean logits as CV-DD votes (equal votes).

Every step's view goes through each teacher. Eq. 9's R_reg becomes the mean over teachers of the
configured matcher's term, one matcher per teacher on that teacher's own BN statistics; L_CE is the
cross-entropy of the mean of the teachers' logits. With one extra teacher the objective is
``CE((z_1 + z_2) / 2, y) + α · (R_1 + R_2) / 2``. Each teacher costs its own forward and backward
pass per step and keeps its weights and activations in memory, so time and memory grow with the
count, which the recovered artifact records (``teachers``).

``TeacherCommittee`` is itself a matcher (``attach`` / ``loss`` / ``detach``, and the optional parts of
the contract forwarded to every member), so recovery's loop treats it as it treats one matcher;
``vote`` adds the other teachers' logits. The extra teachers see the images as pixels and normalise
them with their own statistics (``Classifier.forward``), so they may come from another squeeze.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from scdd.matchers.base import StatMatcher, matcher_param_groups, reset_matcher


class TeacherCommittee:
    """The matcher ``matchers[0]`` on the inverted classifier and ``matchers[k]`` on ``extras[k - 1]``; their mean loss."""

    def __init__(self, matchers: Sequence[StatMatcher], extras: Sequence[nn.Module]) -> None:
        assert len(matchers) == len(extras) + 1, "one matcher per teacher"
        self.matchers, self.extras = list(matchers), list(extras)
        self.reads_data = any(getattr(matcher, "reads_data", False) for matcher in self.matchers)

    def _teachers(self, model: nn.Module) -> list[tuple[StatMatcher, nn.Module]]:
        return list(zip(self.matchers, [model, *self.extras], strict=True))

    def prepare(self, model: nn.Module, data: Any, *, device: torch.device) -> None:
        """Each matcher that reads the training images reads them through its own teacher."""
        for matcher, teacher in self._teachers(model):
            prepare = getattr(matcher, "prepare", None)
            if callable(prepare):
                prepare(teacher, data, device=device)

    def attach(self, model: nn.Module) -> TeacherCommittee:
        for matcher, teacher in self._teachers(model):
            matcher.attach(teacher)
        return self

    def detach(self) -> None:
        for matcher in self.matchers:
            matcher.detach()

    def loss(self) -> torch.Tensor:
        """The mean of every teacher's matching term for the last forward pass of each."""
        return torch.stack([matcher.loss().float() for matcher in self.matchers]).mean()

    def set_targets(self, labels: torch.Tensor) -> None:
        for matcher in self.matchers:
            set_targets = getattr(matcher, "set_targets", None)
            if callable(set_targets):
                set_targets(labels)

    def param_groups(self) -> list[dict[str, Any]]:
        return [group for matcher in self.matchers for group in matcher_param_groups(matcher)]

    def reset(self) -> None:
        for matcher in self.matchers:
            reset_matcher(matcher)

    def vote(self, logits: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        """The mean of the inverted classifier's ``logits`` and every extra teacher's on the same ``pixels`` ([0, 1])."""
        return torch.stack([logits.float(), *(teacher(pixels).float() for teacher in self.extras)]).mean(dim=0)
