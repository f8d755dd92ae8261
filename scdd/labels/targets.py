"""The teacher's targets for a batch of crops and the student's loss towards them (Eq. 10)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass
class SoftTargets:
    """Teacher targets for a batch: full ``logits`` [B, C], or top-K ``probs``/``indices`` [B, K]
    (probabilities at ``temperature``; the mass outside the K classes is spread evenly over the others)."""

    logits: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    indices: torch.Tensor | None = None
    temperature: float = 1.0

    def select(self, index: torch.Tensor) -> SoftTargets:
        pick = lambda t: None if t is None else t[index]  # noqa: E731
        return replace(self, logits=pick(self.logits), probs=pick(self.probs), indices=pick(self.indices))

    def to(self, device: torch.device) -> SoftTargets:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, logits=move(self.logits), probs=move(self.probs), indices=move(self.indices))

    def distribution(self, num_classes: int, temperature: float) -> torch.Tensor:
        """The dense target distribution ``[B, C]`` the student is trained towards at ``temperature``.

        Top-K targets keep the teacher's K probabilities as stored and give each other class an equal
        share of the remaining mass (FKD's label compression), so the teacher's confidence is kept.
        At a temperature other than the stored one the dense distribution is re-tempered
        (``p ∝ p^(T_stored/T)``), which is exact for the K kept classes relative to each other.
        """
        if self.logits is not None:
            return F.softmax(self.logits.float() / temperature, dim=1)
        assert self.probs is not None and self.indices is not None  # top-K targets, without logits
        probs = self.probs.float().clamp(min=0)
        kept = probs.sum(dim=1, keepdim=True).clamp(max=1.0)
        others = max(num_classes - probs.shape[1], 1)
        dense = ((1.0 - kept) / others).expand(-1, num_classes).clone()
        dense.scatter_(1, self.indices.long(), probs)
        if temperature != self.temperature:
            dense = dense ** (self.temperature / temperature)
        return dense / dense.sum(dim=1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)


def soft_label_loss(
    student_logits: torch.Tensor, targets: SoftTargets | torch.Tensor, temperature: float, *, squared: bool = True
) -> torch.Tensor:
    """``T² · KL(p_teacher(T) ‖ softmax(s/T))``, batch mean (Eq. 10 with SRe²L's temperature); without
    ``squared`` the plain KL, as the official CIFAR-100 and ImageNet post-training code computes it.

    ``targets`` may be plain teacher logits; top-K targets are made dense by ``SoftTargets.distribution``.
    """
    if isinstance(targets, torch.Tensor):
        targets = SoftTargets(logits=targets)
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    if targets.logits is not None:
        kl = F.kl_div(log_student, F.log_softmax(targets.logits.float() / temperature, dim=1), reduction="batchmean", log_target=True)
        return kl * temperature**2 if squared else kl
    target = targets.distribution(student_logits.shape[1], temperature)
    kl = (torch.xlogy(target, target) - target * log_student).sum(dim=1).mean()
    return kl * temperature**2 if squared else kl
