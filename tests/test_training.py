"""Optimisers of the training loop: LARS is lightly's layer-wise scaled SGD."""

import torch

from scdd.training import make_optimizer


def test_lars_scales_each_layer_by_its_trust_ratio():
    """One step without momentum: p ← p − lr · η‖p‖ / (‖g‖ + λ‖p‖ + ε) · (g + λp) (You et al., Eq. 6)."""
    weight = torch.nn.Parameter(torch.full((3, 3), 2.0))
    weight.grad = torch.full((3, 3), 0.5)
    optimizer = make_optimizer("lars", [weight], lr=1.0, weight_decay=0.1, momentum=0.0)
    before, grad = weight.detach().clone(), weight.grad.clone()
    optimizer.step()
    trust = 0.001 * before.norm() / (grad.norm() + 0.1 * before.norm() + 1e-8)
    assert torch.allclose(weight.detach(), before - trust * (grad + 0.1 * before))
    sgd_step = before - 1.0 * (grad + 0.1 * before)
    assert not torch.allclose(weight.detach(), sgd_step)
