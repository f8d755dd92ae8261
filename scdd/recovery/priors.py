"""Optional image priors of DeepInversion-style recovery (off in SRe²L and SC-DD: their weights are 0).

``total_variation``: the L2 norms of the differences between each pixel and its right, lower,
lower-left and lower-right neighbours, summed. ``l2_prior``: the mean per-image L2 norm.
Both are taken on the augmented view, as in the reference recovery code.
"""

from __future__ import annotations

import torch


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Sum of the L2 norms of the four neighbour differences of ``[N, C, H, W]`` images."""
    horizontal = images[:, :, :, :-1] - images[:, :, :, 1:]
    vertical = images[:, :, :-1, :] - images[:, :, 1:, :]
    diagonal = images[:, :, 1:, :-1] - images[:, :, :-1, 1:]
    anti_diagonal = images[:, :, :-1, :-1] - images[:, :, 1:, 1:]
    return sum(torch.linalg.vector_norm(d) for d in (horizontal, vertical, diagonal, anti_diagonal))


def l2_prior(images: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each image's L2 norm."""
    return torch.linalg.vector_norm(images.flatten(1), dim=1).mean()
