"""Cross-architecture students (Table 8) from timm and torchvision, adapted to any input size and channel count.

Every factory returns a module mapping pixels (already normalised) to pooled features, with an int
``num_features``. Inputs of at most ``scdd.models.stem.SMALL_INPUT_MAX`` pixels get a CIFAR-style stem, as the
paper's CIFAR code does for ResNets: the first convolution keeps full resolution (stride 1) and the
stem's max-pool is dropped, so 28-32 px images are not reduced to a single pixel before the last stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import timm
import torch
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from scdd.errors import ConfigError
from scdd.models.classifier import feature_width, submodule
from scdd.models.stem import StemConfig, wants_small_stem


@dataclass
class ViTConfig:
    patch_size: int = 0  # 0: 16 px from 224 px up, otherwise the largest of 16/8/4/2/1 leaving >= 7 patches a side


def _conv_like(
    conv: nn.Conv2d,
    *,
    in_channels: int | None = None,
    kernel_size: int | None = None,
    stride: int | None = None,
    padding: int | None = None,
) -> nn.Conv2d:
    """A fresh convolution shaped like ``conv`` with some of its geometry replaced."""
    return nn.Conv2d(
        in_channels if in_channels is not None else conv.in_channels,
        conv.out_channels,
        kernel_size=kernel_size if kernel_size is not None else _pair(conv.kernel_size),
        stride=stride if stride is not None else _pair(conv.stride),
        padding=padding if padding is not None else conv.padding if isinstance(conv.padding, str) else _pair(conv.padding),
        bias=conv.bias is not None,
    )


def _pair(value: tuple[int, ...]) -> tuple[int, int]:
    """A 2-d convolution's (height, width) setting."""
    height, width = value
    return height, width


class TorchvisionFeatures(nn.Module):
    """A torchvision classifier cut before its last layer: ``features`` then global average pooling."""

    def __init__(self, features: nn.Module, num_features: int, head_init_std: float | None = None) -> None:
        super().__init__()
        self.features = features
        self.num_features = num_features
        self.head_init_std = head_init_std  # read by scdd.models.classifier.Classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


def _timm_features(name: str, in_chans: int, **kwargs) -> nn.Module:
    model = timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **kwargs)
    # timm reports the pre-head width as num_features; the pooled output is head_hidden_size wide
    width = getattr(model, "head_hidden_size", None) or feature_width(model)
    model.num_features = int(width)  # type: ignore[assignment]  # Module.__setattr__ stores any value; torch types it Tensor | Module
    return model


def regnet(model_name: str):
    """timm RegNet; small inputs get a stride-1 stem convolution."""

    def build(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
        model = _timm_features(model_name, in_chans)
        if wants_small_stem(config, image_size):
            model.get_submodule("stem").conv = _conv_like(submodule(model, "stem.conv", nn.Conv2d), stride=1)
        return model

    build.__name__ = f"build_{model_name}"
    return build


def mobilenet_v3_large(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
    """timm MobileNet-V3-Large 1.0 (its 1280-wide head convolution included); small inputs: stride-1 stem."""
    model = _timm_features("mobilenetv3_large_100", in_chans)
    if wants_small_stem(config, image_size):
        model.conv_stem = _conv_like(submodule(model, "conv_stem", nn.Conv2d), stride=1)
    return model


def shufflenet_v2_x0_5(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
    """torchvision ShuffleNetV2 0.5x; small inputs: stride-1 first convolution and no max-pool."""
    model = torchvision.models.shufflenet_v2_x0_5(weights=None)
    stem = model.conv1[0]
    small = wants_small_stem(config, image_size)
    model.conv1[0] = _conv_like(stem, in_channels=in_chans, stride=1 if small else stem.stride)
    if small:
        model.maxpool = nn.Identity()
    model.num_features = model.fc.in_features
    model.fc = nn.Identity()
    return model


def squeezenet1_0(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
    """torchvision SqueezeNet 1.0 up to its last Fire module, globally pooled (512 features); no BatchNorm.

    Small inputs: the 7x7 stride-2 first convolution becomes 3x3 stride 1 (its three max-pools remain).
    The classifier head is initialised as torchvision initialises SqueezeNet's final layer, N(0, 0.01):
    with a default head, soft-label post-training of this BatchNorm-free network on the embedded data
    collapsed to a constant prediction (10%); with the small head a student reaches 62%.
    """
    features = torchvision.models.squeezenet1_0(weights=None).features
    first = features[0]
    if wants_small_stem(config, image_size):
        features[0] = _conv_like(first, in_channels=in_chans, kernel_size=3, stride=1, padding=1)
    else:
        features[0] = _conv_like(first, in_channels=in_chans)
    nn.init.kaiming_uniform_(features[0].weight)
    nn.init.zeros_(features[0].bias)
    return TorchvisionFeatures(features, 512, head_init_std=0.01)


def vgg11_bn(config: StemConfig, *, in_chans: int, image_size: int) -> nn.Module:
    """torchvision's VGG-11 with BatchNorm (configuration "A"), convolutional part globally pooled (512 features).

    Small inputs drop the last max-pool, as network-slimming's CIFAR VGG does, so 28 px still
    leaves a 1x1 map after the fourth pool. Initialised as torchvision's VGG initialises it.
    """
    features = make_layers(cfgs["A"], batch_norm=True)
    features[0] = nn.Conv2d(in_chans, features[0].out_channels, kernel_size=3, padding=1)
    for module in features.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            assert module.bias is not None  # VGG's convolutions have one
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if wants_small_stem(config, image_size):
        features = features[:-1]
    return TorchvisionFeatures(features, 512)


def vit_patch_size(image_size: int, requested: int = 0) -> int:
    """The ViT patch size for ``image_size``: the requested one, or 16 at 224 px and above, else the
    largest of 16/8/4/2 dividing the image that leaves at least 7 patches a side."""
    if requested:
        if image_size % requested:
            raise ConfigError(f"vit patch_size {requested} does not divide the image size {image_size}")
        return requested
    candidates: tuple[int, ...] = (16,) if image_size >= 224 and image_size % 16 == 0 else ()
    candidates += tuple(p for p in (16, 8, 4, 2) if image_size % p == 0 and image_size // p >= 7)
    return candidates[0] if candidates else 1


def vit_tiny(config: ViTConfig, *, in_chans: int, image_size: int) -> nn.Module:
    """timm ViT-Tiny (192 wide, 12 blocks, 3 heads) at the dataset's image size; class-token features."""
    patch = vit_patch_size(image_size, config.patch_size)
    return _timm_features("vit_tiny_patch16_224", in_chans, img_size=image_size, patch_size=patch)


regnet_x_8gf = regnet("regnetx_080")
regnet_x_200mf = regnet("regnetx_002")
