"""The paper's settings for CIFAR-100, Tiny-ImageNet and ImageNet-1K, as data: every value with
the table (or section) it comes from.

Layout of each preset: nested dicts shaped like ``RunConfig`` whose leaves are ``Sourced``
values; ``PAPER_ONLY`` holds values the paper gives that have no setting in scdd (shown by
``scdd presets show``, not applied); ``BY_PRETRAINER`` holds values that depend on the squeeze
objective (Table 13: recovery learning rate and α_BN per pretrained model on ImageNet-1K).
Component names (datasets, architectures, pretrainers) are plain strings; nothing is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAPER_ONLY = "paper_only"
BY_PRETRAINER = "by_pretrainer"


@dataclass(frozen=True)
class Sourced:
    """A preset value and where the paper gives it."""

    value: Any
    source: str
    note: str = ""


def _pretrain(table: str) -> dict[str, Sourced]:
    """The "Pretrain" column shared by Tables 14 and 15."""
    return {
        "epochs": Sourced(200, table),
        "batch_size": Sourced(512, table),
        "optimizer": Sourced("sgd", table),
        "lr": Sourced(0.06, table),
        "weight_decay": Sourced(5e-4, table),
        "momentum": Sourced(0.9, table),
    }


def _recover(table: str, *, alpha_bn: float, lr: float, batch_size: int) -> dict[str, Sourced]:
    """A "Recover" column (Tables 14-16 differ only in α_BN, learning rate and batch size)."""
    return {
        "alpha_bn": Sourced(alpha_bn, table),
        "optimizer": Sourced("adam", table),
        "lr": Sourced(lr, table),
        "weight_decay": Sourced(1e-4, table),
        "betas": Sourced((0.5, 0.9), table),
        "batch_size": Sourced(batch_size, table),
        "iterations": Sourced(1000, table),
    }


_RRC = "RandomResizedCrop (RRC*), at torchvision's default scale range (0.08, 1)"

CIFAR100: dict[str, Any] = {
    "dataset": Sourced("cifar100", "Table 14"),
    "squeeze": {
        "pretrainer": Sourced("moco-v2", "Sec. 3.2", "MoCo-v2-200ep ResNet-18 is the compression model"),
        "architecture": Sourced("resnet18", "Sec. 3.2"),
        "pretrainer_options": _pretrain("Table 14"),
    },
    "recover": {**_recover("Table 14", alpha_bn=0.005, lr=0.4, batch_size=100), "ipc": Sourced(50, "Table 1")},
    "posttrain": {
        "students": Sourced(("resnet18",), "Table 1", "results are based on ResNet-18"),
        "optimizer": Sourced("adamw", "Table 14"),
        "lr": Sourced(0.005, "Table 14"),
        "weight_decay": Sourced(0.01, "Table 14"),
        "betas": Sourced((0.9, 0.999), "Table 14"),
        "batch_size": Sourced(64, "Table 14"),
        "epochs": Sourced(200, "Table 14"),
    },
    PAPER_ONLY: {
        "squeeze.lr_schedule": Sourced("cosine", "Table 14", "scdd always uses a cosine schedule"),
        "recover.lr_schedule": Sourced("cosine", "Table 14", "scdd always uses a cosine schedule"),
        "posttrain.lr_schedule": Sourced("cosine", "Table 14", "scdd always uses a cosine schedule"),
    },
}

TINY_IMAGENET: dict[str, Any] = {
    "dataset": Sourced("tiny-imagenet", "Table 15"),
    "squeeze": {
        "pretrainer": Sourced("moco-v2", "Appendix C", "the same MoCo framework as on CIFAR-100"),
        "architecture": Sourced("resnet18", "Table 1", "results are based on ResNet-18"),
        "pretrainer_options": _pretrain("Table 15"),
    },
    "recover": {
        **_recover("Table 15", alpha_bn=0.1, lr=0.6, batch_size=100),
        "crop_min_scale": Sourced(0.08, "Table 15", _RRC),
        "ipc": Sourced(50, "Table 1"),
    },
    "posttrain": {
        "students": Sourced(("resnet18",), "Table 1", "results are based on ResNet-18"),
        "optimizer": Sourced("sgd", "Table 15"),
        "lr": Sourced(0.2, "Table 15"),
        "weight_decay": Sourced(1e-4, "Table 15"),
        "momentum": Sourced(0.9, "Table 15"),
        "batch_size": Sourced(64, "Table 15"),
        "epochs": Sourced(500, "Table 15"),
    },
    PAPER_ONLY: {
        "squeeze.lr_schedule": Sourced("cosine", "Table 15", "scdd always uses a cosine schedule"),
        "recover.lr_schedule": Sourced("cosine", "Table 15", "scdd always uses a cosine schedule"),
        "posttrain.lr_schedule": Sourced("cosine", "Table 15", "scdd always uses a cosine schedule"),
        "posttrain.augmentation": Sourced("RandAugment", "Table 15", "post-training has no RandAugment setting yet"),
    },
}

IMAGENET_1K: dict[str, Any] = {
    "dataset": Sourced("imagenet", "Table 16"),
    "squeeze": {
        "pretrainer": Sourced("moco-v3", "Appendix C", "the linear probe of MoCo v3"),
        "architecture": Sourced("resnet50", "Table 5", "MoCo-v3-300ep ResNet-50 in recovery"),
        "pretrainer_options": {"epochs": Sourced(300, "Table 5", "the paper uses the official 300-epoch checkpoint")},
    },
    "align": {
        "aligner": Sourced("linear-probe", "Appendix C"),
        "aligner_options": {
            "epochs": Sourced(200, "Table 16"),
            "batch_size": Sourced(256, "Table 16"),
            "optimizer": Sourced("sgd", "Table 16"),
            "lr": Sourced(0.03, "Table 16"),
            "weight_decay": Sourced(1e-4, "Table 16"),
            "momentum": Sourced(0.9, "Table 16"),
        },
    },
    "recover": {
        **_recover("Table 16", alpha_bn=0.0005, lr=0.25, batch_size=50),
        "crop_min_scale": Sourced(0.08, "Table 16", _RRC),
        "ipc": Sourced(50, "Table 5"),
    },
    "relabel": {"crop_min_scale": Sourced(0.08, "Table 16", "validation " + _RRC)},
    "posttrain": {
        "students": Sourced(("resnet18", "resnet50", "resnet101"), "Table 5"),
        "optimizer": Sourced("adamw", "Table 16"),
        "lr": Sourced(0.001, "Table 16"),
        "weight_decay": Sourced(0.01, "Table 16"),
        "betas": Sourced((0.9, 0.999), "Table 16"),
        "batch_size": Sourced(64, "Table 16"),
        "epochs": Sourced(300, "Table 16", "the main results use 600 (Appendix C)"),
    },
    BY_PRETRAINER: {
        "moco-v2": {"recover": {"lr": Sourced(0.35, "Table 13"), "alpha_bn": Sourced(0.25, "Table 13")}},
        "moco-v3": {"recover": {"lr": Sourced(0.25, "Table 13"), "alpha_bn": Sourced(0.0005, "Table 13")}},
        "swav": {"recover": {"lr": Sourced(0.3, "Table 13"), "alpha_bn": Sourced(0.001, "Table 13")}},
        "dino": {"recover": {"lr": Sourced(0.25, "Table 13"), "alpha_bn": Sourced(0.01, "Table 13")}},
    },
    PAPER_ONLY: {
        "align.lr_schedule": Sourced("cosine", "Table 16", "scdd always uses a cosine schedule"),
        "recover.lr_schedule": Sourced("cosine", "Table 16", "scdd always uses a cosine schedule"),
        "recover.iterations_in_text": Sourced(3000, "Sec. 3.1", "the text (Table 4's best) says 3K; Table 16 says 1,000"),
        "posttrain.lr_schedule": Sourced("cosine", "Table 16", "scdd always uses a cosine schedule"),
    },
}

PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "cifar100": CIFAR100,
    "tiny-imagenet": TINY_IMAGENET,
    "imagenet-1k": IMAGENET_1K,
}
