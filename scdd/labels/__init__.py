"""Crop-level soft labels: the crop plan of every epoch (``plan``), the teacher's targets and the
student's loss (``targets``), how stored labels are encoded (``encoding``) and where they are kept
(``store``: safetensors shards, or the teacher itself in online mode)."""

from scdd.labels.encoding import PRECISIONS, LabelEncoding
from scdd.labels.plan import MIX_KINDS, EpochPlan, PlanSpec, plan_epoch, region_mask, render_crops, replay_batches, replay_crops
from scdd.labels.store import (
    SOFT_LABELS_FILE,
    OnlineSoftLabels,
    ShardWriter,
    StoredSoftLabels,
    open_soft_labels,
    read_metadata,
    write_online_descriptor,
)
from scdd.labels.targets import SoftTargets, soft_label_loss

__all__ = [
    "MIX_KINDS",
    "PRECISIONS",
    "SOFT_LABELS_FILE",
    "EpochPlan",
    "LabelEncoding",
    "OnlineSoftLabels",
    "PlanSpec",
    "ShardWriter",
    "SoftTargets",
    "StoredSoftLabels",
    "open_soft_labels",
    "plan_epoch",
    "read_metadata",
    "region_mask",
    "render_crops",
    "replay_batches",
    "replay_crops",
    "soft_label_loss",
    "write_online_descriptor",
]
