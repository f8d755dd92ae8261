"""MoCo v3 (Chen, Xie & He, 2021) for ResNet backbones: a momentum encoder, a projector and a
predictor, the symmetric contrastive loss over in-batch negatives, and a cosine momentum schedule.

Heads follow MoCo v3's ResNet recipe: a 2-layer projector ending in an affine-free BatchNorm and
a 2-layer predictor without a final BatchNorm. Momentum updates use lightly's utilities.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from lightly.models.modules.heads import ProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from scdd import distributed
from scdd.augment import CropSpec, ViewSpec, random_view
from scdd.data.base import DatasetSplits
from scdd.progress import SILENT, Progress
from scdd.runtime import generator
from scdd.ssl.base import PretrainConfig, PretrainResult, pixel_encoder, train_epochs
from scdd.ssl.losses import moco_v3_contrastive_loss


@dataclass
class MoCoV3Config(PretrainConfig):
    """MoCo v3 defaults for ResNet: τ = 1.0, momentum 0.99 → 1 (cosine), MLP 4096, output 256, crops from 8%."""

    temperature: float = 1.0
    base_momentum: float = 0.99
    hidden_dim: int = 4096
    output_dim: int = 256
    crop_min_scale: float = 0.08


def _mlp(in_dim: int, hidden_dim: int, out_dim: int, *, last_bn: bool) -> ProjectionHead:
    last_norm = nn.BatchNorm1d(out_dim, affine=False) if last_bn else None
    return ProjectionHead(
        [
            (in_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)),
            (hidden_dim, out_dim, last_norm, None, False),
        ]
    )


def _view_specs(config: MoCoV3Config, data: DatasetSplits) -> tuple[ViewSpec, ViewSpec]:
    """MoCo v3's asymmetric pair: blur always in view 1, rarely in view 2, solarize only in view 2."""
    flip_p = 0.5 if data.info.hflip else 0.0
    crop = CropSpec(scale=(config.crop_min_scale, 1.0))
    return (
        ViewSpec(crop=crop, flip_p=flip_p, blur_p=1.0, solarize_p=0.0),
        ViewSpec(crop=crop, flip_p=flip_p, blur_p=0.1, solarize_p=0.2),
    )


class MoCoV3Pretrainer:
    def __init__(self, config: MoCoV3Config) -> None:
        self.config = config

    def pretrain(
        self,
        backbone: nn.Module,
        data: DatasetSplits,
        *,
        device: torch.device,
        seed: int,
        progress: Progress = SILENT,
    ) -> PretrainResult:
        config = self.config
        backbone.to(device).train()
        projector = _mlp(backbone.num_features, config.hidden_dim, config.output_dim, last_bn=True).to(device)
        predictor = _mlp(config.output_dim, config.hidden_dim, config.output_dim, last_bn=False).to(device)
        base = nn.Sequential(pixel_encoder(backbone, data.info), projector)
        momentum_encoder = copy.deepcopy(base)
        deactivate_requires_grad(momentum_encoder)
        views = _view_specs(config, data)
        augment_generator = generator(seed, "moco-v3", "views", *distributed.rank_parts(), device=device)

        def step(images: torch.Tensor, labels: torch.Tensor, global_step: int, total: int) -> torch.Tensor:
            view_1 = random_view(images, views[0], generator=augment_generator)
            view_2 = random_view(images, views[1], generator=augment_generator)
            query_1, query_2 = predictor(base(view_1)), predictor(base(view_2))
            with torch.no_grad():
                key_1, key_2 = momentum_encoder(view_1), momentum_encoder(view_2)
            return moco_v3_contrastive_loss(query_1, key_2, config.temperature) + moco_v3_contrastive_loss(
                query_2, key_1, config.temperature
            )

        def after_step(global_step: int, total: int) -> None:
            momentum = cosine_schedule(global_step, total, config.base_momentum, 1.0)
            update_momentum(base, momentum_encoder, m=momentum)

        curve = train_epochs(
            name="moco-v3",
            config=config,
            data=data,
            parameters=[*base.parameters(), *predictor.parameters()],
            step=step,
            device=device,
            seed=seed,
            progress=progress,
            after_step=after_step,
            state={"modules": {"base": base, "predictor": predictor, "momentum": momentum_encoder}, "generators": {"views": augment_generator}},
        )
        return PretrainResult(backbone=backbone.eval(), loss_per_epoch=curve)


def build(config: MoCoV3Config) -> MoCoV3Pretrainer:
    return MoCoV3Pretrainer(config)
