"""Import a published checkpoint as scdd artifacts: the backbone squeeze would write and, when the
file (or ``--linear``) has a linear classifier, the classifier align would write.

The file's ResNet (18, 50 or 101, read from its keys) is built with the ImageNet stem and loaded
strictly, BatchNorm running statistics included, so the written tensors equal the source's exactly
(``scdd.published.convert``). Nothing is written until every check has passed.
"""

from __future__ import annotations

from pathlib import Path

from torchvision.models import ResNet50_Weights

from scdd.data.base import DatasetInfo
from scdd.models.saved import save_model
from scdd.published.convert import load_published
from scdd.stages.align import CLASSIFIER_FILE
from scdd.stages.common import StageResult, Stopwatch
from scdd.stages.squeeze import BACKBONE_FILE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_info() -> DatasetInfo:
    """ImageNet-1K as the published checkpoints saw it: 3 channels, 224 px, 1000 classes (names from
    torchvision, prefixed by index so that every name is unique), ImageNet mean and std."""
    categories = ResNet50_Weights.IMAGENET1K_V1.meta["categories"]
    return DatasetInfo(
        name="imagenet",
        num_classes=len(categories),
        channels=3,
        image_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        class_names=tuple(f"{index:03d} {name}" for index, name in enumerate(categories)),
    )


def import_checkpoint(
    source: Path,
    out_dir: Path,
    *,
    format: str,
    info: DatasetInfo | None = None,
    linear: Path | None = None,
    trust_pickle: bool = False,
) -> StageResult:
    """Convert ``source`` (a ``format`` checkpoint) into ``backbone.safetensors`` (+ ``classifier.safetensors``)."""
    info = info or imagenet_info()
    with Stopwatch() as clock:
        published = load_published(source, format=format, info=info, linear=linear, trust_pickle=trust_pickle)
    backbone_record = published.record("backbone", info, loss_per_epoch=[])
    artifacts = {"backbone": save_model(Path(out_dir) / BACKBONE_FILE, published.backbone, backbone_record)}
    if published.classifier is not None:
        record = published.record("classifier", info, aligner="imported")
        artifacts["classifier"] = save_model(Path(out_dir) / CLASSIFIER_FILE, published.classifier, record)
    return StageResult(
        "import",
        artifacts=artifacts,
        metrics={
            "layout": published.layout,
            "architecture": published.architecture,
            "kept": published.kept,
            "dropped": published.dropped,
        },
        seconds=clock.seconds,
    )
