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

from scdd.augment import CropSpec, ViewSpec
from scdd.data.base import DatasetSplits
from scdd.ssl.base import PixelEncoder, PretrainConfig, Pretrainer
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


class MoCoV3Pretrainer(Pretrainer[MoCoV3Config]):
    name = "moco-v3"

    def build(self, encoder: PixelEncoder, data: DatasetSplits) -> dict[str, nn.Module]:
        config = self.config
        projector = _mlp(encoder.num_features, config.hidden_dim, config.output_dim, last_bn=True)
        self.predictor = _mlp(config.output_dim, config.hidden_dim, config.output_dim, last_bn=False)
        self.base = nn.Sequential(encoder, projector)
        self.momentum_encoder = copy.deepcopy(self.base)
        deactivate_requires_grad(self.momentum_encoder)
        # MoCo v3's asymmetric pair: blur always in view 1, rarely in view 2, solarize only in view 2
        crop = CropSpec(scale=(config.crop_min_scale, 1.0))
        self.specs = (
            ViewSpec(crop=crop, flip_p=self.flip_p, hue=config.hue, blur_p=1.0, solarize_p=0.0),
            ViewSpec(crop=crop, flip_p=self.flip_p, hue=config.hue, blur_p=0.1, solarize_p=0.2),
        )
        return {"base": self.base, "predictor": self.predictor, "momentum": self.momentum_encoder}

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> torch.Tensor:
        view_1, view_2 = self.view(images, self.specs[0]), self.view(images, self.specs[1])
        query_1, query_2 = self.predictor(self.base(view_1)), self.predictor(self.base(view_2))
        with torch.no_grad():
            key_1, key_2 = self.momentum_encoder(view_1), self.momentum_encoder(view_2)
        temperature = self.config.temperature
        return moco_v3_contrastive_loss(query_1, key_2, temperature) + moco_v3_contrastive_loss(query_2, key_1, temperature)

    def after_step(self, step: int, total: int) -> None:
        momentum = cosine_schedule(step, total, self.config.base_momentum, 1.0)
        update_momentum(self.base, self.momentum_encoder, m=momentum)


build = MoCoV3Pretrainer
