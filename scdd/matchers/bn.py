"""BatchNorm-statistic matching: the batch-match-global regulariser of Eq. 8.

``R(x') = Σ_k β_k ‖μ_k(x') − BN_k^RM‖₂ + γ_k ‖σ²_k(x') − BN_k^RV‖₂`` over the model's BN layers,
with the channel-wise batch mean and (biased) variance of each BN layer's input.

Two registered matchers share this implementation:

* ``bn`` (SRe²L): every layer weighs 1; the first layer's multiplier is configurable (default 1).
* ``imbalanced-bn`` (SC-DD, Sec. 2.3): the first layer (k = 0) weighs ``first_bn_multiplier``
  (Table 5: 10× best); ``mean_weights`` / ``var_weights`` give β_k / γ_k per layer explicitly;
  ``learnable`` makes the coefficients trainable.

Learnable coefficients: the paper only says β_k and γ_k were also tried as learnable
hyperparameters, with accuracy similar to the grid search of Table 5, not how. Minimising Eq. 8
over free weights would drive them to zero, so scdd uses the standard learnable loss weighting of
Kendall, Gal & Cipolla (2018): β_k = β⁰_k·exp(−s_k), γ_k = γ⁰_k·exp(−t_k), plus the penalty
Σ_k β⁰_k·s_k + γ⁰_k·t_k, with log-scales s, t starting at 0 (so β, γ start at the configured
values) and optimised by Adam jointly with the images, reset for every batch. At its optimum a
layer's weight is β⁰_k divided by its current mismatch, so every layer is matched in proportion
to its relative, not absolute, error.

The statistics are taken inside each BN layer's forward (the layer's forward is wrapped while
the matcher is attached) and the loss is assembled from them in a few vectorised operations, so
matching costs one extra read of each BN input forward and one backward (see ``moments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from scdd.errors import ConfigError
from scdd.matchers.moments import eval_batch_norm_with_moments, moments_with_grad
from scdd.models.classifier import batchnorm_layers, running_statistics


@dataclass
class BNMatchConfig:
    """``imbalanced-bn`` options. Defaults: Table 5 (first-BN multiplier 10, other layers 1)."""

    first_bn_multiplier: float = 10.0
    mean_weights: tuple[float, ...] = ()  # β_k for every BN layer; empty: 1 each (k = 0 times the multiplier)
    var_weights: tuple[float, ...] = ()  # γ_k likewise
    learnable: bool = False  # train log-scales of β_k, γ_k jointly with the images (see module doc)
    learnable_lr: float = 0.05  # Adam learning rate of those log-scales

    def __post_init__(self) -> None:
        if self.learnable_lr <= 0:
            raise ConfigError(f"learnable_lr must be positive, got {self.learnable_lr}")


@dataclass
class UniformBNConfig:
    """``bn`` options: SRe²L's uniform matching, every layer weight 1 unless the first is scaled."""

    first_bn_multiplier: float = 1.0


class BNStatMatcher:
    """Attach to a model, run a forward pass, read ``loss()``; ``detach()`` restores the model.

    ``layer_losses()`` gives each layer's weighted term for the last forward pass.
    """

    def __init__(self, config: BNMatchConfig) -> None:
        self.config = config
        self.layer_names: list[str] = []
        self._layers: list[nn.modules.batchnorm._BatchNorm] = []
        self._means: list[torch.Tensor | None] = []
        self._vars: list[torch.Tensor | None] = []
        self._log_scales: torch.Tensor | None = None  # [2, K] when learnable

    # ------------------------------------------------------------------ weights

    def _base_weights(self, count: int) -> torch.Tensor:
        """``[2, K]``: β⁰_k (row 0) and γ⁰_k (row 1)."""

        def expand(given: tuple[float, ...], label: str) -> list[float]:
            if not given:
                return [float(self.config.first_bn_multiplier)] + [1.0] * (count - 1)
            if len(given) != count:
                raise ConfigError(f"{label} has {len(given)} values but the model has {count} BatchNorm layers")
            return [float(value) for value in given]

        return torch.tensor([expand(self.config.mean_weights, "mean_weights"), expand(self.config.var_weights, "var_weights")])

    def weights(self) -> torch.Tensor:
        """The current ``[2, K]`` coefficients (β_k, γ_k), learned ones included."""
        if self._log_scales is None:
            return self._weights
        return self._weights * torch.exp(-self._log_scales)

    def reset(self) -> None:
        """Learnable log-scales back to 0 (coefficients back to their configured values)."""
        if self.config.learnable and self._layers:
            self._log_scales = torch.zeros_like(self._weights, requires_grad=True)

    def param_groups(self) -> list[dict[str, Any]]:
        if self._log_scales is None:
            return []
        return [{"params": [self._log_scales], "lr": self.config.learnable_lr, "weight_decay": 0.0}]

    # ------------------------------------------------------------------ attach / detach

    def attach(self, model: nn.Module) -> BNStatMatcher:
        self.detach()
        layers = batchnorm_layers(model)
        if not layers:
            raise ConfigError("BN-statistic matching needs a model with BatchNorm2d layers")
        base = self._base_weights(len(layers))
        self.layer_names = [name for name, _ in layers]
        self._layers = [layer for _, layer in layers]
        device = running_statistics(self._layers[0])[0].device
        self._weights = base.to(device)
        self._segments = torch.cat(
            [torch.full((layer.num_features,), index, dtype=torch.long) for index, layer in enumerate(self._layers)]
        ).to(device)
        self._means = [None] * len(layers)
        self._vars = [None] * len(layers)
        for index, layer in enumerate(self._layers):
            layer.forward = self._matching_forward(index, layer)  # type: ignore[method-assign]  # per-instance; detach() removes it
        self._log_scales = None
        self.reset()
        return self

    def _matching_forward(self, index: int, layer: nn.modules.batchnorm._BatchNorm):
        def forward(x: torch.Tensor) -> torch.Tensor:
            if layer.training or layer.running_mean is None or layer.running_var is None:
                mean, var = moments_with_grad(x)
                output = type(layer).forward(layer, x)
            else:
                output, mean, var = eval_batch_norm_with_moments(layer, x)
            self._means[index] = mean
            self._vars[index] = var
            return output

        return forward

    def detach(self) -> None:
        for layer in self._layers:
            layer.__dict__.pop("forward", None)
        self._layers = []
        self._means = []
        self._vars = []
        self._log_scales = None

    # ------------------------------------------------------------------ loss

    def _distances(self) -> torch.Tensor:
        """``[2, K]``: ‖μ_k − RM_k‖₂ (row 0) and ‖σ²_k − RV_k‖₂ (row 1) for the last forward."""
        if not self._layers or any(mean is None for mean in self._means):
            raise RuntimeError("no forward pass has run since the matcher was attached")
        means = torch.cat([mean for mean in self._means if mean is not None])  # none is None (checked above)
        variances = torch.cat([var for var in self._vars if var is not None])  # set with the means
        running = self._running_statistics().to(means)
        squared = (torch.stack([means, variances]) - running).square()
        sums = torch.zeros(2, len(self._layers), device=means.device, dtype=squared.dtype)
        sums.index_add_(1, self._segments.to(means.device), squared)
        return sums.clamp_min(torch.finfo(sums.dtype).tiny).sqrt()

    def _running_statistics(self) -> torch.Tensor:
        """``[2, ΣC]`` running means and variances as they are now (a layer in training mode updates them)."""
        statistics = [running_statistics(layer) for layer in self._layers]
        means = torch.cat([mean for mean, _ in statistics])
        variances = torch.cat([var for _, var in statistics])
        return torch.stack([means, variances])

    def layer_losses(self) -> torch.Tensor:
        """Each BN layer's weighted term β_k‖·‖ + γ_k‖·‖ for the last forward pass, ``[K]``."""
        distances = self._distances()
        return (self.weights().to(distances.device) * distances).sum(0)

    def loss(self) -> torch.Tensor:
        total = self.layer_losses().sum()
        if self._log_scales is not None:
            total = total + (self._weights * self._log_scales).sum().to(total.device)
        return total

    def __enter__(self) -> BNStatMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def build(config: BNMatchConfig) -> BNStatMatcher:
    """The ``imbalanced-bn`` matcher (SC-DD, Eq. 8)."""
    return BNStatMatcher(config)


def build_uniform(config: UniformBNConfig) -> BNStatMatcher:
    """The ``bn`` matcher (SRe²L): uniform weights, configurable first-layer multiplier."""
    return BNStatMatcher(BNMatchConfig(first_bn_multiplier=config.first_bn_multiplier))
