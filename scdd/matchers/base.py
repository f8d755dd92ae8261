"""The contract every statistic matcher fulfils, so a third-party plugin can add one.

A matcher is built by its registered factory from its config, then used like this by recovery::

    matcher.attach(model)          # install whatever it needs (hooks, wrapped forwards)
    for step in ...:
        model(batch)               # one forward pass
        loss = matcher.loss()      # the statistic-matching term R_reg(x') of Eq. 8 for that pass
        ...
    matcher.detach()               # the model is exactly as before ``attach``

Optionally a matcher has learnable coefficients: ``param_groups()`` returns torch optimiser
parameter groups (``{"params": [...], "lr": ...}``) that recovery optimises jointly with the
images, and ``reset()`` re-initialises them; recovery calls ``reset()`` before every batch.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class StatMatcher(Protocol):
    def attach(self, model: nn.Module) -> Any: ...

    def loss(self) -> torch.Tensor: ...

    def detach(self) -> None: ...


def matcher_param_groups(matcher: StatMatcher) -> list[dict[str, Any]]:
    """The matcher's learnable parameter groups, or none."""
    groups = getattr(matcher, "param_groups", None)
    return list(groups()) if callable(groups) else []


def reset_matcher(matcher: StatMatcher) -> None:
    """Re-initialise a matcher's learnable coefficients, if it has any."""
    reset = getattr(matcher, "reset", None)
    if callable(reset):
        reset()
