"""Recovery settings. Defaults: Table 16's recover column (ImageNet-1K) except its weight decay (the
official code's 0, see the field), Table 5's first-BN multiplier (in the matcher), and SRe²L's recovery
protocol for what the tables leave out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scdd._options import check_memory_format, check_teacher_files
from scdd.errors import ConfigError

RECOVER_OPTIMIZERS = ("adam", "adamw")
VIEW_SCOPES = ("image", "batch")


@dataclass
class RecoverConfig:
    """One field per knob of Eq. 9's optimisation."""

    matcher: str = "imbalanced-bn"
    matcher_options: dict[str, Any] = field(default_factory=dict)
    initializer: str = "noise"  # starting images (Sec. 2.4: Gaussian noise, data-free); see scdd.recovery.initializers
    initializer_options: dict[str, Any] = field(default_factory=dict)
    crop_schedule: str = "constant"  # crop scales per step (the paper's: constant); see scdd.recovery.schedules
    crop_schedule_options: dict[str, Any] = field(default_factory=dict)
    regularizer: str = ""  # an extra objective term (none in the paper); see scdd.recovery.regularizers
    regularizer_options: dict[str, Any] = field(default_factory=dict)
    # more classifier artifacts whose BN statistics are matched too and whose logits vote in L_CE (G-VBSM / CV-DD);
    # empty: the aligned classifier alone (the paper). See scdd.recovery.committee
    extra_teachers: tuple[str, ...] = ()
    ipc: int = 50
    iterations: int = 1000  # Table 16 "recovering iteration"
    batch_size: int = 50  # Table 16
    optimizer: str = "adam"  # Table 16
    lr: float = 0.25  # Table 16 "base learning rate" (cosine schedule to 0)
    betas: tuple[float, float] = (0.5, 0.9)  # Table 16 "optimizer momentum"
    # L2 on the pixels, coupled into Adam's gradient. Tables 14-16 list 1e-4 (the paper presets keep it); the
    # official code has none, and scdd's own recipes follow it: L_CE and L_BN are batch means, so a pixel's
    # gradient shrinks as 1/batch and at batch 100 the coupled decay outweighs it, holding the images at the mean.
    weight_decay: float = 0.0
    alpha_bn: float = 0.0005  # Table 16 α_BN: weight of the matcher's loss (Eq. 9)
    crop_min_scale: float = 0.08  # Table 16 RandomResizedCrop, torchvision's scale range
    crop_max_scale: float = 1.0
    crop: bool = True  # False: no crop, the view is the whole image, rolled (official CIFAR-100 recovery)
    view_scope: str = "image"  # "image": a view per image; "batch": one view per step for the batch (official code)
    flip: bool = True  # horizontal flips, where the dataset allows them
    jitter: float = 32 / 224  # largest random roll, as a fraction of the side (SRe²L: 32 px at 224 px)
    jitter_symmetric: bool = False  # roll by -jitter..jitter (SRe²L's Tiny-ImageNet code) instead of 0..jitter
    tv_weight: float = 0.0  # total-variation prior (off in SRe²L / SC-DD)
    l2_weight: float = 0.0  # L2 image prior (off in SRe²L / SC-DD)
    memory_format: str = "auto"  # the model's layout: auto (channels-last on CPU), channels-last, contiguous
    autocast: bool = False  # bfloat16 autocast of the forward pass (CUDA; CPU too where supported)

    def __post_init__(self) -> None:
        check_memory_format(self.memory_format)
        if self.ipc < 1:
            raise ConfigError(f"ipc must be at least 1, got {self.ipc}")
        if self.iterations < 1 or self.batch_size < 1:
            raise ConfigError("recovery needs iterations >= 1 and batch_size >= 1")
        if self.optimizer.lower() not in RECOVER_OPTIMIZERS:
            raise ConfigError(f"recover.optimizer must be one of {', '.join(RECOVER_OPTIMIZERS)}, got {self.optimizer!r}")
        if not self.crop and self.crop_schedule != "constant":
            raise ConfigError("recover.crop_schedule needs recover.crop=true (roll-only views have no crop scale to schedule)")
        if not 0 < self.crop_min_scale <= self.crop_max_scale <= 1:
            raise ConfigError(
                f"recovery crop scales need 0 < crop_min_scale <= crop_max_scale <= 1, got {self.crop_min_scale} and {self.crop_max_scale}"
            )
        if self.view_scope not in VIEW_SCOPES:
            raise ConfigError(f"recover.view_scope must be one of {', '.join(VIEW_SCOPES)}, got {self.view_scope!r}")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"recover.jitter is a fraction of the image side in [0, 1), got {self.jitter}")
        for name in ("lr", "alpha_bn", "weight_decay", "tv_weight", "l2_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"recover.{name} must not be negative, got {getattr(self, name)}")

    def check_teachers(self) -> None:
        """Fail before any work when ``extra_teachers`` names a file that is not there."""
        check_teacher_files(self.extra_teachers, "recover.extra_teachers")
