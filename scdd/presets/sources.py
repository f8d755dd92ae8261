"""Where preset values come from: the paper's tables and sections, or the authors' public code.

Code sources are files of three public repositories, read at these commits:

- ``SCDD/...`` and ``SRe2L/...``: VILA-Lab/SRe2L @ 8d00cba364bf (SC-DD's code is its ``SCDD/``
  folder: CIFAR-100 and ImageNet-1K only; ``SRe2L/`` is the code Sec. 3.1 says recovery and
  post-training follow);
- ``tiny-imagenet/...``: zeyuanyin/tiny-imagenet @ 275c667a116a (SRe²L's Tiny-ImageNet post-training);
- ``moco-cifar-demo``: facebookresearch/moco @ f7364915bc4e, ``colab/moco_cifar10_demo.ipynb``
  (the demo App. C's footnote 3 cites for the CIFAR-100 squeeze); "cell N" counts from 0.

Where paper and code disagree, ``disputed`` gives both values, each noting the other: the paper
presets take the paper's, the ``-official`` presets (``scdd.presets.official``) the code's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

BUILT_IN = "built_in"  # values scdd always follows, with no setting to change (shown, not applied)
USER_FILE = "user_file"  # files the user supplies through a setting (shown with the setting, not applied)
BY_PRETRAINER = "by_pretrainer"

SC_CIFAR_RECOVER = "SCDD/cifar100_code/recover/recover_cifar100.py"
SC_CIFAR_POST = "SCDD/cifar100_code/post_train/post_cifar100.py"
SC_IMAGENET_RECOVER = "SCDD/imagenet_code/recover/data_synthesis.py"
SC_IMAGENET_POST = "SCDD/imagenet_code/post_train/train_kd.py"
SC_IMAGENET_POST_UTILS = "SCDD/imagenet_code/post_train/utils.py"
SC_README = "SCDD/README.md"
SR_TINY_RECOVER = "SRe2L/*small_dataset/recover_tiny.py"
TINY_KD = "tiny-imagenet/classification/train_kd.py"
TINY_KD_SCRIPT = "tiny-imagenet/script/train_kd.sh"
MOCO_DEMO = "moco-cifar-demo"


@dataclass(frozen=True)
class Sourced:
    """A preset value and where the paper (or the official code) gives it."""

    value: Any
    source: str
    note: str = ""


def disputed(paper: Sourced, code: Sourced) -> tuple[Sourced, Sourced]:
    """``(paper's, code's)``, each with a note naming the other value and its source."""

    def noted(item: Sourced, other: Sourced, who: str) -> Sourced:
        mention = f"{who}: {other.value!r} ({other.source})"
        return replace(item, note=f"{item.note}; {mention}" if item.note else mention)

    return noted(paper, code, "official code"), noted(code, paper, "paper")


def moco_cifar_demo() -> dict[str, Sourced]:
    """MoCo's CIFAR demo recipe (App. C: "the MoCo framework", footnote 3), for MoCo v2 only (its hue
    jitter, 0.1, is the pretrainers' default ``hue``)."""
    return {
        "queue_size": Sourced(4096, f"{MOCO_DEMO} cell 4", "--moco-k"),
        "encoder_momentum": Sourced(0.99, f"{MOCO_DEMO} cell 4", "--moco-m"),
        "temperature": Sourced(0.1, f"{MOCO_DEMO} cell 4", "--moco-t"),
        "head": Sourced("linear", f"{MOCO_DEMO} cell 8", "the ResNet's own fc, 512 → 128"),
        "output_dim": Sourced(128, f"{MOCO_DEMO} cell 4", "--moco-dim"),
        "crop_min_scale": Sourced(0.08, f"{MOCO_DEMO} cell 6", "RandomResizedCrop(32) at its default scale"),
        "blur_p": Sourced(0.0, f"{MOCO_DEMO} cell 6", "no Gaussian blur"),
        "shuffle_bn_groups": Sourced(8, f"{MOCO_DEMO} cell 8", "SplitBatchNorm, 8 splits"),
    }


SCHEDULE_NOTE = "every scdd training loop decays by a per-step cosine"
