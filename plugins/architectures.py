"""Built-in architectures: timm ResNets with a small-input stem, and the cross-architecture
students of Table 8 (timm / torchvision), each adapted to the dataset's size and channels."""

from scdd.registry import hookimpl

_STEM = "scdd.models.stem:StemConfig"


@hookimpl
def register_architectures(register):
    register(
        "resnet10-slim",
        "scdd.models.resnet:resnet10_slim",
        config=_STEM,
        description="ResNet-10 with 16-32-64-128 channels: the fast CPU default",
    )
    register(
        "convnet",
        "scdd.models.convnet:convnet",
        config="scdd.models.convnet:ConvNetConfig",
        aliases=["convnet-bn", "convnetbn"],
        description="ConvNet-BN of the distillation literature: depth x (conv3x3-BN-ReLU-avgpool), width and depth options",
    )
    register("resnet18", "scdd.models.resnet:resnet18", config=_STEM, description="ResNet-18 (timm)")
    register("resnet50", "scdd.models.resnet:resnet50", config=_STEM, description="ResNet-50 (timm)")
    register("resnet101", "scdd.models.resnet:resnet101", config=_STEM, description="ResNet-101 (timm)")
    register(
        "regnet-x-8gf",
        "scdd.models.zoo:regnet_x_8gf",
        config=_STEM,
        aliases=["regnetx_080"],
        description="RegNet-X-8GF (timm regnetx_080)",
    )
    register(
        "regnet-x-200mf",
        "scdd.models.zoo:regnet_x_200mf",
        config=_STEM,
        aliases=["regnetx_002"],
        description="RegNet-X-200MF (timm regnetx_002): the small RegNet",
    )
    register(
        "mobilenet-v3-large",
        "scdd.models.zoo:mobilenet_v3_large",
        config=_STEM,
        aliases=["mobilenetv3_large_100", "mobilenet-v3-l"],
        description="MobileNet-V3-Large 1.0 (timm)",
    )
    register(
        "shufflenet-v2-x0.5",
        "scdd.models.zoo:shufflenet_v2_x0_5",
        config=_STEM,
        aliases=["shufflenet_v2_x0_5", "shufflenet-v2-0.5x"],
        description="ShuffleNetV2 0.5x (torchvision)",
    )
    register(
        "squeezenet1.0",
        "scdd.models.zoo:squeezenet1_0",
        config=_STEM,
        aliases=["squeezenet1_0", "squeezenet-1.0", "squeezenet"],
        description="SqueezeNet 1.0 (torchvision), no BatchNorm",
    )
    register(
        "vit-tiny",
        "scdd.models.zoo:vit_tiny",
        config="scdd.models.zoo:ViTConfig",
        aliases=["vit_tiny_patch16_224", "vit-t"],
        description="ViT-Tiny (timm), patch size fitted to the image size; no BatchNorm",
    )
    register(
        "vgg11-bn",
        "scdd.models.zoo:vgg11_bn",
        config=_STEM,
        aliases=["vgg-11-bn", "vgg11"],
        description="VGG-11 with BatchNorm (torchvision), pooled 512 features",
    )
