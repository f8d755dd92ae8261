"""Every registered architecture builds for 1-channel 28 px and 3-channel 32 px inputs and trains a step;
parameter counts match the timm / torchvision references at ImageNet geometry (Table 8's #Params)."""

import pytest
import timm
import torch
import torchvision

from scdd.data.base import DatasetInfo
from scdd.models.build import build_classifier
from scdd.models.zoo import StemConfig, shufflenet_v2_x0_5, vit_patch_size
from scdd.registry import get_registry


def _info(channels, size, classes=10):
    return DatasetInfo("t", classes, channels, size, (0.5,) * channels, (0.5,) * channels, tuple(map(str, range(classes))))


def _architectures():
    return [c.name for c in get_registry() if c.kind == "architecture"]


# Light students also take a training step; the heavy ones (ResNet-50/101, RegNet-X-8GF) only a forward pass.
TRAIN_STEP = {"shufflenet-v2-x0.5", "squeezenet1.0", "vit-tiny", "regnet-x-200mf", "vgg11-bn"}


@pytest.mark.parametrize("name", _architectures())
def test_architecture_handles_grayscale_28px(name):
    torch.manual_seed(0)
    model = build_classifier(name, _info(1, 28))
    with torch.no_grad():
        features = model.eval().features(torch.rand(1, 1, 28, 28))
    assert features.shape == (1, model.backbone.num_features)
    if name not in TRAIN_STEP:
        return
    logits = model.train()(torch.rand(2, 1, 28, 28))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name, reference",
    [
        ("resnet18", lambda: torchvision.models.resnet18()),
        ("shufflenet-v2-x0.5", lambda: torchvision.models.shufflenet_v2_x0_5()),
        ("squeezenet1.0", lambda: torchvision.models.squeezenet1_0()),
        ("mobilenet-v3-large", lambda: timm.create_model("mobilenetv3_large_100")),
        ("vit-tiny", lambda: timm.create_model("vit_tiny_patch16_224")),
        ("regnet-x-200mf", lambda: timm.create_model("regnetx_002")),
    ],
)
def test_parameter_count_matches_reference_at_imagenet_geometry(name, reference):
    ours = build_classifier(name, _info(3, 224, 1000))
    assert _count(ours) == _count(reference())


def test_small_inputs_keep_spatial_resolution():
    """The CIFAR-style stem: a 32 px input still has a >1 px map before pooling."""
    small = shufflenet_v2_x0_5(StemConfig(), in_chans=3, image_size=32)
    large = shufflenet_v2_x0_5(StemConfig(small_input_stem="no"), in_chans=3, image_size=32)
    x = torch.rand(2, 3, 32, 32)
    size = lambda m: m.conv5(m.stage4(m.stage3(m.stage2(m.maxpool(m.conv1(x)))))).shape[-1]  # noqa: E731
    assert size(small) == 4 and size(large) == 1


@pytest.mark.parametrize("size, patch", [(28, 4), (32, 4), (64, 8), (224, 16), (30, 2)])
def test_vit_patch_size_fits_image(size, patch):
    assert vit_patch_size(size) == patch


def test_squeezenet_head_starts_small_like_torchvisions_last_layer():
    """SqueezeNet (no BatchNorm) gets torchvision's last-layer init, N(0, 0.01), for its head: with the
    default head its soft-label training collapsed to chance. Other architectures keep the default head."""
    torch.manual_seed(0)
    squeezenet = build_classifier("squeezenet1.0", _info(1, 28))
    assert squeezenet.head.weight.std().item() == pytest.approx(0.01, rel=0.1)
    assert torch.count_nonzero(squeezenet.head.bias) == 0
    resnet = build_classifier("resnet10-slim", _info(1, 28))
    assert resnet.head.weight.std().item() > 0.02 and torch.count_nonzero(resnet.head.bias) > 0


@pytest.mark.parametrize("size, channels", [(28, 1), (8, 1), (32, 3)])
def test_convnet_flattens_its_native_map_and_takes_smaller_views(size, channels):
    """ConvNet-BN (DC/DSA/MTT's ConvNet with BatchNorm): width x side² flattened features at the dataset's size;
    multi-crop views smaller than that give features of the same size."""
    model = build_classifier("convnet", _info(channels, size), {"width": 16, "depth": 3})
    side = {28: 3, 8: 1, 32: 4}[size]
    assert model.backbone.num_features == 16 * side * side
    assert len([m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]) == 3
    with torch.no_grad():
        assert model.eval().features(torch.rand(2, channels, size, size)).shape == (2, 16 * side * side)
        assert model.features(torch.rand(2, channels, size // 2 - 1, size // 2 - 1)).shape == (2, 16 * side * side)
    wide = build_classifier("convnet", _info(channels, size), {"width": 32, "depth": 2, "pool": "avg"})
    assert wide.backbone.num_features == 32
