"""DINO (Caron et al., 2021) for ResNet backbones: self-distillation from a momentum teacher with
centering and sharpening, a teacher-temperature warm-up, and multi-crop.

The student sees 2 global and N local views, the teacher only the global ones; the loss is the
cross-entropy between the teacher's centred, sharpened softmax (temperature τt) and the student's
softmax (τs = 0.1) over every pair of different views. The centre is an EMA (0.9) of the teacher's
batch mean. τt warms up linearly from 0.04 to 0.07 over the first 30 epochs; the teacher follows the
student with momentum 0.996 → 1 (cosine). The loss is lightly's ``DINOLoss``, the head lightly's
``DINOProjectionHead`` (3-layer MLP, l2-normalised bottleneck, weight-normalised last layer whose
gradients are cancelled during the first epoch). As in DINO, the teacher is the model kept: the
returned backbone is the teacher's, with the BatchNorm statistics of its own forward passes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from lightly.loss import DINOLoss
from lightly.models.modules.heads import DINOProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from scdd.augment import CropSpec, MultiCropSpec, ViewSpec, local_crop_size
from scdd.data.base import DatasetSplits
from scdd.errors import ConfigError
from scdd.ssl.base import PixelEncoder, PretrainConfig, Pretrainer, pixel_encoder


@dataclass
class DINOConfig(PretrainConfig):
    """DINO's ResNet-50 recipe: SGD lr 0.03 per 256 images (0.06 at batch 512), weight decay 1e-4,
    10 warm-up epochs, global crops from 14%, 8 local crops of 5-14% at 96/224 of the side,
    head 2048-256 with BatchNorm and 60,000 outputs (the released ResNet-50 head)."""

    lr: float = 0.06
    weight_decay: float = 1e-4
    warmup_epochs: int = 10
    student_temperature: float = 0.1
    teacher_temperature: float = 0.07
    warmup_teacher_temperature: float = 0.04
    warmup_teacher_temperature_epochs: int = 30
    center_momentum: float = 0.9
    base_momentum: float = 0.996
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    output_dim: int = 60000
    head_batch_norm: bool = True
    freeze_last_layer_epochs: int = 1
    crop_min_scale: float = 0.14
    local_views: int = 8
    local_crop_scale: tuple[float, float] = (0.05, 0.14)
    local_crop_ratio: float = 96 / 224

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.local_views < 0:
            raise ConfigError("dino needs local_views >= 0")


def multi_crop_spec(config: DINOConfig, data: DatasetSplits) -> MultiCropSpec:
    """DINO's augmentation (BYOL's): jitter (0.4, 0.4, 0.2, hue 0.1) p 0.8, grayscale 0.2; global view 1 always
    blurred, global view 2 blurred with p 0.1 and solarised with p 0.2; local views blurred with p 0.5."""
    flip_p = 0.5 if data.info.hflip else 0.0
    global_crop = CropSpec(scale=(config.crop_min_scale, 1.0))
    return MultiCropSpec(
        global_views=(
            ViewSpec(crop=global_crop, flip_p=flip_p, hue=config.hue, blur_p=1.0),
            ViewSpec(crop=global_crop, flip_p=flip_p, hue=config.hue, blur_p=0.1, solarize_p=0.2),
        ),
        local_view=ViewSpec(
            crop=CropSpec(scale=config.local_crop_scale),
            size=local_crop_size(data.info.image_size, config.local_crop_ratio),
            flip_p=flip_p,
            hue=config.hue,
            blur_p=0.5,
        ),
        local_count=config.local_views,
    )


def build_criterion(config: DINOConfig) -> DINOLoss:
    """Cross-entropy between centred, sharpened teacher outputs and student outputs (lightly)."""
    return DINOLoss(
        output_dim=config.output_dim,
        teacher_temp=config.teacher_temperature,
        student_temp=config.student_temperature,
        center_momentum=config.center_momentum,
    )


def build_head(config: DINOConfig, in_dim: int) -> DINOProjectionHead:
    return DINOProjectionHead(in_dim, config.hidden_dim, config.bottleneck_dim, config.output_dim, batch_norm=config.head_batch_norm)


def teacher_temperature(config: DINOConfig, epoch: int) -> float:
    """Linear warm-up of τt from ``warmup_teacher_temperature`` over the first epochs, then constant."""
    warmup = config.warmup_teacher_temperature_epochs
    if epoch >= warmup:
        return config.teacher_temperature
    if warmup == 1:
        return config.warmup_teacher_temperature
    fraction = epoch / (warmup - 1)
    return config.warmup_teacher_temperature + fraction * (config.teacher_temperature - config.warmup_teacher_temperature)


class DINOPretrainer(Pretrainer[DINOConfig]):
    name = "dino"

    def build(self, encoder: PixelEncoder, data: DatasetSplits) -> dict[str, nn.Module]:
        config = self.config
        head = build_head(config, encoder.num_features)
        self.student = nn.Sequential(encoder, head)
        # A fresh copy rather than deepcopy: the weight-normalised last layer holds a non-leaf tensor.
        self.teacher = nn.Sequential(pixel_encoder(copy.deepcopy(encoder[1]), data.info), build_head(config, encoder.num_features))
        self.teacher.load_state_dict(self.student.state_dict())
        deactivate_requires_grad(self.teacher)
        self.criterion = build_criterion(config)
        self.crops = multi_crop_spec(config, data)
        self.last_layer = head.last_layer.weight_v
        return {"student": self.student, "teacher": self.teacher, "criterion": self.criterion}  # weight_g stays fixed

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> torch.Tensor:
        epoch = step // (total // self.config.epochs)
        self.last_layer.requires_grad_(epoch >= self.config.freeze_last_layer_epochs)
        global_views, local_views = self.multi_crop(images, self.crops)
        with torch.no_grad():
            teacher_out = self.teacher(torch.cat(global_views)).chunk(len(global_views))
        student_out = list(self.student(torch.cat(global_views)).chunk(len(global_views)))
        if local_views:
            student_out += self.student(torch.cat(local_views)).chunk(len(local_views))
        return self.criterion(list(teacher_out), student_out, teacher_temp=teacher_temperature(self.config, epoch))

    def after_step(self, step: int, total: int) -> None:
        update_momentum(self.student, self.teacher, m=cosine_schedule(step, total, self.config.base_momentum, 1.0))

    def kept_backbone(self, backbone: nn.Module) -> nn.Module:
        teacher_encoder = self.teacher[0]
        assert isinstance(teacher_encoder, PixelEncoder)  # build made it
        return teacher_encoder[1].requires_grad_(True)  # as in DINO, the teacher is the model kept


build = DINOPretrainer
