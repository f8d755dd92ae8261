"""MoCo v2 (Chen, Fan, Girshick & He, 2020) for ResNet backbones: a momentum key encoder, a queue of
negative keys, InfoNCE with temperature, a 2-layer MLP projection head and the MoCo v2
augmentations (random-resized crop from 20%, colour jitter, grayscale, Gaussian blur, flip).

The loss and the queue are lightly's ``NTXentLoss`` with a memory bank (logits ``[q·k₊, q·queue]/τ``,
cross-entropy towards the positive; the queue is read before the batch's keys are enqueued); the
projection head is lightly's ``MoCoProjectionHead`` (2048-d hidden layer, ReLU, no BatchNorm).

MoCo shuffles BatchNorm across GPUs so that a batch's BN statistics cannot leak which key matches
which query. On one device both encoders normalise ``shuffle_bn_groups`` groups of the batch
separately (one per emulated GPU: lightly's ``SplitBatchNorm``, ``scdd.models.batchnorm``), the key
encoder on a batch shuffled and un-shuffled afterwards by lightly's ``batch_shuffle`` /
``batch_unshuffle``, as MoCo's own CIFAR demo does. The backbone gets its plain BatchNorm layers
back, with the mean of the groups' running statistics, when the squeeze ends.

The CIFAR demo's recipe (the paper's App. C footnote 3, used for CIFAR-100 and Tiny-ImageNet) is a
set of options: queue 4096, momentum 0.99, τ 0.1, ``head="linear"`` (512 → 128), crops from 0.08,
``blur_p=0``. Its hue jitter (0.1) has no counterpart here (``ViewSpec`` jitters no hue).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.heads import MoCoProjectionHead
from lightly.models.utils import batch_shuffle, batch_unshuffle, deactivate_requires_grad, update_momentum
from torch import nn

from scdd.augment import CropSpec, ViewSpec
from scdd.data.base import DatasetSplits
from scdd.errors import ConfigError
from scdd.models.batchnorm import merge_split_batchnorm, split_batchnorm
from scdd.ssl.base import PixelEncoder, PretrainConfig, Pretrainer

HEADS = ("mlp", "linear")


@dataclass
class MoCoV2Config(PretrainConfig):
    """MoCo v2 for ResNet-50: SGD lr 0.03 at batch 256, weight decay 1e-4, τ = 0.2, queue 65,536,
    key-encoder momentum 0.999, MLP 2048 → 128, crops from 20%, 8 GPUs' worth of shuffled BatchNorm."""

    batch_size: int = 256
    lr: float = 0.03
    weight_decay: float = 1e-4
    temperature: float = 0.2
    queue_size: int = 65536
    encoder_momentum: float = 0.999
    hidden_dim: int = 2048
    output_dim: int = 128
    crop_min_scale: float = 0.2
    shuffle_bn_groups: int = 8
    head: str = "mlp"  # "mlp" (MoCo v2) or "linear": one layer features → output_dim (MoCo's CIFAR demo)
    blur_p: float = 0.5  # Gaussian blur probability (the CIFAR demo has none)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.queue_size < self.batch_size:
            raise ConfigError(f"moco-v2: queue_size ({self.queue_size}) must hold at least one batch ({self.batch_size})")
        if self.head not in HEADS:
            raise ConfigError(f"moco-v2: head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.shuffle_bn_groups < 1 or self.batch_size % self.shuffle_bn_groups:
            raise ConfigError(f"moco-v2: batch_size ({self.batch_size}) must split into shuffle_bn_groups ({self.shuffle_bn_groups})")


def view_spec(config: MoCoV2Config, flip_p: float) -> ViewSpec:
    """MoCo v2's "aug+": crop, colour jitter (0.4, 0.4, 0.4, hue 0.1) with p 0.8, grayscale 0.2, blur 0.5, flip."""
    return ViewSpec(crop=CropSpec(scale=(config.crop_min_scale, 1.0)), flip_p=flip_p, saturation=0.4, hue=config.hue, blur_p=config.blur_p)


def projection_head(config: MoCoV2Config, features: int) -> nn.Module:
    """lightly's 2-layer MLP head, or the CIFAR demo's single linear layer (the ResNet's own fc)."""
    if config.head == "linear":
        return nn.Linear(features, config.output_dim)
    return MoCoProjectionHead(features, config.hidden_dim, config.output_dim)


def build_criterion(config: MoCoV2Config) -> NTXentLoss:
    """InfoNCE over the positive key and the queue of negatives (lightly's memory-bank NT-Xent)."""
    return NTXentLoss(temperature=config.temperature, memory_bank_size=(config.queue_size, config.output_dim))


class MoCoV2Pretrainer(Pretrainer[MoCoV2Config]):
    name = "moco-v2"
    sync_batchnorm = False  # shuffled per-group BatchNorm is MoCo v2's point; synchronised BN would undo it

    def build(self, encoder: PixelEncoder, data: DatasetSplits) -> dict[str, nn.Module]:
        config = self.config
        head = projection_head(config, encoder.num_features)
        self.query_encoder = split_batchnorm(nn.Sequential(encoder, head), config.shuffle_bn_groups)
        self.key_encoder = copy.deepcopy(self.query_encoder)
        deactivate_requires_grad(self.key_encoder)
        self.criterion = build_criterion(config)
        self.spec = view_spec(config, self.flip_p)
        return {"query": self.query_encoder, "key": self.key_encoder, "criterion": self.criterion}

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> torch.Tensor:
        query_view, key_view = self.view(images, self.spec), self.view(images, self.spec)
        query = self.query_encoder(query_view)
        with torch.no_grad():
            update_momentum(self.query_encoder, self.key_encoder, m=self.config.encoder_momentum)
            shuffled, order = batch_shuffle(key_view)  # torch's global generator, kept with the progress
            key = batch_unshuffle(self.key_encoder(shuffled), order)
        return self.criterion(query, key)

    def kept_backbone(self, backbone: nn.Module) -> nn.Module:
        return merge_split_batchnorm(backbone)


build = MoCoV2Pretrainer
