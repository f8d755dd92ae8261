"""MoCo v3's loss (the default pretrainer's) against an independent reference: Chen, Xie & He (2021),
Algorithm 1, ``ctr(q, k) = CE(q·kᵀ/τ, arange(N)) · 2τ`` on l2-normalised vectors, computed here one
query at a time in float64 from its definition, -log(exp(q_i·k_i/τ) / Σ_j exp(q_i·k_j/τ))."""

import math

import pytest
import torch

from scdd.ssl.losses import moco_v3_contrastive_loss


def _reference(query: torch.Tensor, key: torch.Tensor, temperature: float) -> float:
    q = [row / math.sqrt(float((row * row).sum())) for row in query.double()]
    k = [row / math.sqrt(float((row * row).sum())) for row in key.double()]
    total = 0.0
    for i, qi in enumerate(q):
        scores = [float((qi * kj).sum()) / temperature for kj in k]
        total += -scores[i] + math.log(sum(math.exp(s) for s in scores))
    return total / len(q) * 2 * temperature


@pytest.mark.parametrize("temperature", [0.2, 1.0])
def test_loss_equals_the_papers_definition(temperature):
    generator = torch.Generator().manual_seed(0)
    query, key = torch.randn(12, 16, generator=generator), torch.randn(12, 16, generator=generator) * 3
    loss = moco_v3_contrastive_loss(query.double(), key.double(), temperature)
    assert loss.item() == pytest.approx(_reference(query, key, temperature), rel=1e-10)


def test_loss_is_lowest_for_matching_pairs_and_keys_get_no_gradient():
    generator = torch.Generator().manual_seed(1)
    key = torch.randn(8, 16, generator=generator, requires_grad=True)
    query = (key.detach() * 5).requires_grad_(True)  # each query points at its own key
    shuffled = query.detach()[torch.roll(torch.arange(8), 1)]
    matched = moco_v3_contrastive_loss(query, key, 0.2)
    assert matched.item() < moco_v3_contrastive_loss(shuffled, key, 0.2).item()
    matched.backward()
    assert query.grad is not None and key.grad is None  # the momentum encoder's keys are constants
