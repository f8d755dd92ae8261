"""The official-style recovery loop, written from the paper's description, as a speed reference for
``benchmarks/speed.py``.

Not used by scdd itself. It follows Eq. 8-9 and these facts of the public SRe²L recovery code
(``data_synthesis.py`` and ``utils.py``), which SC-DD also uses:

* every step, one ``torchvision.transforms.RandomResizedCrop(size)`` and one ``RandomHorizontalFlip``
  applied to the whole batch tensor (one box and one flip decision for all images), then
  ``torch.roll`` of the batch by two offsets drawn from ``0..jitter`` (32 px at 224 px);
* a forward hook on every ``BatchNorm2d`` computing the hooked input's channel mean and biased
  variance (through a permuted, contiguous copy) and ``‖RV − σ²‖₂ + ‖RM − μ‖₂``; the first layer's
  term is multiplied by ``first_bn_multiplier``;
* loss = CE + ``r_bn`` · L_BN, plus the total-variation and L2 image priors, computed every step
  even at weight 0;
* Adam with β = (0.5, 0.9), the cosine learning rate written into the optimiser every step;
* a per-channel clamp of the images to the valid pixel range after each step, and ``loss.item()``
  every step (the best-cost bookkeeping), which waits for the device.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms


class _BNHook:
    """The public code's ``BNFeatureHook``: batch moments of a BN layer's input, distance to its running statistics."""

    def __init__(self, module: nn.BatchNorm2d) -> None:
        self.handle = module.register_forward_hook(self.hook)
        self.loss: torch.Tensor | None = None

    def hook(self, module: nn.BatchNorm2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        x = inputs[0]
        channels = x.shape[1]
        mean = x.mean([0, 2, 3])
        var = x.permute(1, 0, 2, 3).contiguous().reshape(channels, -1).var(1, unbiased=False)
        self.loss = torch.norm(module.running_var - var, 2) + torch.norm(module.running_mean - mean, 2)

    def close(self) -> None:
        self.handle.remove()


def _priors(view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The public code's image priors: L2 total variation over four neighbour directions, and the mean image norm."""
    right = view[:, :, :, :-1] - view[:, :, :, 1:]
    down = view[:, :, :-1, :] - view[:, :, 1:, :]
    diagonal = view[:, :, 1:, :-1] - view[:, :, :-1, 1:]
    anti = view[:, :, :-1, :-1] - view[:, :, 1:, 1:]
    variation = torch.norm(right) + torch.norm(down) + torch.norm(diagonal) + torch.norm(anti)
    return variation, torch.norm(view.reshape(view.shape[0], -1), dim=1).mean()


class OfficialRecovery:
    """Recovery of one batch as the public code runs it, on a frozen eval-mode ``model`` (normalised input)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        jitter: int,
        lr: float = 0.25,
        r_bn: float = 0.01,
        first_bn_multiplier: float = 10.0,
        tv_l2: float = 0.0,
        l2_scale: float = 0.0,
    ) -> None:
        self.model, self.size, self.jitter = model, size, jitter
        self.lr, self.r_bn, self.first_bn_multiplier, self.tv_l2, self.l2_scale = lr, r_bn, first_bn_multiplier, tv_l2, l2_scale
        self.low = [-m / s for m, s in zip(mean, std, strict=False)]
        self.high = [(1 - m) / s for m, s in zip(mean, std, strict=False)]
        self.augment = transforms.Compose([transforms.RandomResizedCrop(size, antialias=True), transforms.RandomHorizontalFlip()])

    def run(self, targets: torch.Tensor, iterations: int, *, seed: int = 0) -> torch.Tensor:
        """Optimise ``len(targets)`` images from noise for ``iterations`` steps; returns them (normalised space)."""
        torch.manual_seed(seed)
        offsets = random.Random(seed)
        device = targets.device
        hooks = [_BNHook(module) for module in self.model.modules() if isinstance(module, nn.BatchNorm2d)]
        rescale = [self.first_bn_multiplier] + [1.0] * (len(hooks) - 1)
        try:
            inputs = torch.randn(len(targets), len(self.low), self.size, self.size, device=device, requires_grad=True)
            optimizer = torch.optim.Adam([inputs], lr=self.lr, betas=(0.5, 0.9), eps=1e-8)
            best_cost = math.inf
            for iteration in range(iterations):
                for group in optimizer.param_groups:
                    group["lr"] = 0.5 * (1 + math.cos(math.pi * iteration / iterations)) * self.lr
                view = self.augment(inputs)
                view = torch.roll(view, shifts=(offsets.randint(0, self.jitter), offsets.randint(0, self.jitter)), dims=(2, 3))
                optimizer.zero_grad()
                outputs = self.model(view)
                loss_ce = F.cross_entropy(outputs, targets)
                loss_bn = sum(hook.loss * scale for hook, scale in zip(hooks, rescale, strict=False))
                variation, norm = _priors(view)
                loss = loss_ce + self.tv_l2 * variation + self.l2_scale * norm + self.r_bn * loss_bn
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    for channel, (low, high) in enumerate(zip(self.low, self.high, strict=False)):
                        inputs[:, channel].clamp_(low, high)
                cost = loss.item()  # the public loop's best-cost check reads the loss every step
                best_cost = min(best_cost, cost)
            return inputs.detach()
        finally:
            for hook in hooks:
                hook.close()
