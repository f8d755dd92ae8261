"""Import of published self-supervised checkpoints (MoCo v2, MoCo v3, SwAV, DINO, torchvision) into
scdd's backbone and classifier artifacts. ``FORMATS`` is importable without torch."""

FORMATS = ("moco_v2", "moco_v3", "swav", "dino", "torchvision")

__all__ = ["FORMATS"]
