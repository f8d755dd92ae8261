"""ResNet backbones from timm, adapted to small inputs with the CIFAR-style stem
(3x3 stride-1 first convolution, no max-pool) that SRe²L/SC-DD use below 64 px.

The last BatchNorm of each residual block starts at weight 1, as in torchvision (which the
paper's code uses), not timm's zero init: at the short budgets of small runs a zero-initialised
residual branch learns far more slowly (a one-block-per-stage ResNet reached 52% instead of
95% on the embedded MNIST after two supervised epochs)."""

from __future__ import annotations

import timm
from timm.models.resnet import BasicBlock, ResNet
from torch import nn

from scdd.models.classifier import submodule
from scdd.models.stem import StemConfig, wants_small_stem


def _adapt(model: nn.Module, in_chans: int, image_size: int, config: StemConfig) -> nn.Module:
    if wants_small_stem(config, image_size):
        stem_width = submodule(model, "conv1", nn.Conv2d).out_channels
        model.conv1 = nn.Conv2d(in_chans, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def timm_resnet(model_name: str):
    """A factory building timm's ``model_name`` as a pooled-feature backbone (no classifier)."""

    def build(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
        model = timm.create_model(model_name, pretrained=False, num_classes=0, in_chans=in_chans, zero_init_last=False)
        return _adapt(model, in_chans, image_size, config)

    build.__name__ = f"build_{model_name}"
    return build


def resnet10_slim(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
    """ResNet-10 (one BasicBlock per stage) with stage widths 16-32-64-128: the fast CPU default."""
    model = ResNet(
        BasicBlock,  # type: ignore[arg-type]  # timm annotates `block` as an instance; it takes the class
        (1, 1, 1, 1),
        num_classes=0,
        in_chans=in_chans,
        channels=(16, 32, 64, 128),
        zero_init_last=False,
    )
    return _adapt(model, in_chans, image_size, config)


resnet18 = timm_resnet("resnet18")
resnet50 = timm_resnet("resnet50")
resnet101 = timm_resnet("resnet101")
