"""Built-in architectures (timm ResNets with a small-input stem)."""

from scdd.registry import hookimpl

_CONFIG = "scdd.models.resnet:ResNetConfig"


@hookimpl
def register_architectures(register):
    register(
        "resnet10-slim",
        "scdd.models.resnet:resnet10_slim",
        config=_CONFIG,
        description="ResNet-10 with 16-32-64-128 channels: the fast CPU default",
    )
    register("resnet18", "scdd.models.resnet:resnet18", config=_CONFIG, description="ResNet-18 (timm)")
    register("resnet50", "scdd.models.resnet:resnet50", config=_CONFIG, description="ResNet-50 (timm)")
    register("resnet101", "scdd.models.resnet:resnet101", config=_CONFIG, description="ResNet-101 (timm)")
