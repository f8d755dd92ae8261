"""Self-supervised objectives that lightly does not provide in the exact published form."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def moco_v3_contrastive_loss(query: torch.Tensor, key: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo v3's InfoNCE over in-batch negatives: ``CE(q·kᵀ/τ, diagonal) · 2τ`` on l2-normalised vectors.

    ``key`` comes from the momentum encoder and carries no gradient.
    """
    query = F.normalize(query, dim=1)
    key = F.normalize(key.detach(), dim=1)
    logits = query @ key.T / temperature
    targets = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(logits, targets) * (2 * temperature)
