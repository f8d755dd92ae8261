"""BatchNorm-statistic matching: the batch-match-global regulariser of Eq. 8.

``R(x') = Σ_k β_k ‖μ_k(x') − BN_k^RM‖₂ + γ_k ‖σ²_k(x') − BN_k^RV‖₂`` over the model's BN layers,
with channel-wise batch mean and (biased) variance of each BN layer's input. SC-DD's imbalanced
weighting multiplies the first layer (k = 0) by ``first_bn_multiplier`` (Table 5: 10× best);
``mean_weights`` / ``var_weights`` give β_k / γ_k per layer explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from scdd.errors import ConfigError
from scdd.models.classifier import batchnorm_layers


@dataclass
class BNMatchConfig:
    first_bn_multiplier: float = 10.0
    mean_weights: tuple[float, ...] = ()  # β_k for every BN layer; empty: 1 each (k = 0 times the multiplier)
    var_weights: tuple[float, ...] = ()  # γ_k likewise


class BNStatMatcher:
    """Attach to a model, run a forward pass, read ``loss()``; ``detach()`` removes the hooks.

    ``layer_losses()`` gives each layer's weighted term for the last forward pass.
    """

    def __init__(self, config: BNMatchConfig) -> None:
        self.config = config
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._terms: list[torch.Tensor | None] = []
        self.layer_names: list[str] = []

    def _weights(self, count: int) -> tuple[list[float], list[float]]:
        def expand(given: tuple[float, ...], label: str) -> list[float]:
            if not given:
                return [self.config.first_bn_multiplier] + [1.0] * (count - 1)
            if len(given) != count:
                raise ConfigError(f"{label} has {len(given)} values but the model has {count} BatchNorm layers")
            return [float(value) for value in given]

        return expand(self.config.mean_weights, "mean_weights"), expand(self.config.var_weights, "var_weights")

    def attach(self, model: nn.Module) -> "BNStatMatcher":
        self.detach()
        layers = batchnorm_layers(model)
        if not layers:
            raise ConfigError("BN-statistic matching needs a model with BatchNorm2d layers")
        mean_weights, var_weights = self._weights(len(layers))
        self.layer_names = [name for name, _ in layers]
        self._terms = [None] * len(layers)
        for index, (_, layer) in enumerate(layers):
            hook = self._make_hook(index, mean_weights[index], var_weights[index])
            self._handles.append(layer.register_forward_hook(hook))
        return self

    def _make_hook(self, index: int, mean_weight: float, var_weight: float):
        def hook(module: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            features = inputs[0].float()
            mean = features.mean(dim=(0, 2, 3))
            var = features.var(dim=(0, 2, 3), unbiased=False)
            self._terms[index] = mean_weight * torch.linalg.vector_norm(mean - module.running_mean, 2) + (
                var_weight * torch.linalg.vector_norm(var - module.running_var, 2)
            )

        return hook

    def layer_losses(self) -> torch.Tensor:
        if not self._terms or any(term is None for term in self._terms):
            raise RuntimeError("no forward pass has run since the matcher was attached")
        return torch.stack(self._terms)  # type: ignore[arg-type]

    def loss(self) -> torch.Tensor:
        return self.layer_losses().sum()

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._terms = []

    def __enter__(self) -> "BNStatMatcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()


def build(config: BNMatchConfig) -> BNStatMatcher:
    return BNStatMatcher(config)
