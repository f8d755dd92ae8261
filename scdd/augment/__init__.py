"""Image augmentations on tensors, every random parameter drawn from an explicit generator.

* ``crops``: replayable crop boxes (relabelling stores them, post-training replays them) and the
  random-resized crop;
* ``views``: self-supervised views (colour jitter, grayscale, blur, solarisation) and multi-crop;
* ``recovery``: the view of the synthetic batch that recovery optimises through at each step.
"""

from scdd.augment.crops import CropSpec, apply_crops, random_resized_crop, sample_boxes, sample_flips
from scdd.augment.recovery import RecoveryViewSpec, SyntheticViews, shifted_crop_grid
from scdd.augment.views import MultiCropSpec, ViewSpec, local_crop_size, multi_crop, random_view

__all__ = [
    "CropSpec",
    "MultiCropSpec",
    "RecoveryViewSpec",
    "SyntheticViews",
    "ViewSpec",
    "apply_crops",
    "local_crop_size",
    "multi_crop",
    "random_resized_crop",
    "random_view",
    "sample_boxes",
    "sample_flips",
    "shifted_crop_grid",
]
