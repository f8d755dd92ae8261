"""The paper's settings for CIFAR-100, Tiny-ImageNet and ImageNet-1K, as data: every value with
the table or section it comes from, or, where the paper gives none, the official code's file.

Layout of each preset: nested dicts shaped like ``RunConfig`` whose leaves are ``Sourced``
values; ``BUILT_IN`` holds values scdd always follows (the cosine schedules) and ``USER_FILE`` files
the user gives through a setting (a published checkpoint): both are shown by ``scdd presets show``,
not applied; ``BY_PRETRAINER`` holds values that depend on the squeeze objective (Table 13:
recovery learning rate and α_BN per pretrained model on ImageNet-1K). ``OFFICIAL`` holds, per
preset, the code's values where code and paper disagree (the ``NAME-official`` presets,
``scdd.presets.official``). Component names are plain strings; nothing is imported.
"""

from __future__ import annotations

from typing import Any

from scdd.presets.sources import (
    BUILT_IN,
    BY_PRETRAINER,
    SC_CIFAR_POST,
    SC_CIFAR_RECOVER,
    SC_IMAGENET_POST,
    SC_IMAGENET_POST_UTILS,
    SC_IMAGENET_RECOVER,
    SC_README,
    SCHEDULE_NOTE,
    SR_TINY_RECOVER,
    TINY_KD,
    TINY_KD_SCRIPT,
    USER_FILE,
    Sourced,
    disputed,
    moco_cifar_demo,
)

__all__ = ["BUILT_IN", "BY_PRETRAINER", "OFFICIAL", "PAPER_PRESETS", "USER_FILE", "Sourced"]


def _pretrain(table: str) -> dict[str, Any]:
    """The "Pretrain" column shared by Tables 14 and 15, and MoCo's CIFAR demo recipe for MoCo v2."""
    return {
        "epochs": Sourced(200, table),
        "batch_size": Sourced(512, table),
        "optimizer": Sourced("sgd", table),
        "lr": Sourced(0.06, table),
        "weight_decay": Sourced(5e-4, table),
        "momentum": Sourced(0.9, table),
    }


def _recover(table: str, *, alpha_bn: float, lr: float, batch_size: int, decay: Sourced) -> dict[str, Sourced]:
    """A "Recover" column (Tables 14-16 differ only in α_BN, learning rate and batch size)."""
    return {
        "alpha_bn": Sourced(alpha_bn, table),
        "optimizer": Sourced("adam", table),
        "lr": Sourced(lr, table),
        "weight_decay": decay,
        "betas": Sourced((0.5, 0.9), table),
        "batch_size": Sourced(batch_size, table),
        "iterations": Sourced(1000, table),
    }


def _schedules(table: str, *stages: str) -> dict[str, Sourced]:
    return {f"{stage}.lr_schedule": Sourced("cosine", table, SCHEDULE_NOTE) for stage in stages}


_RRC = "RandomResizedCrop (RRC*), at torchvision's default scale range (0.08, 1)"
_RUNS = Sourced(3, "Table 1", "mean ± std of 3 runs")
_NO_DECAY = "Adam over the pixels, betas (0.5, 0.9), without weight decay"

# CIFAR-100: Table 14; the SC-DD CIFAR-100 code where the table is silent.
_CIFAR_DECAY = disputed(Sourced(1e-4, "Table 14"), Sourced(0.0, f"{SC_CIFAR_RECOVER} l.61", _NO_DECAY))
_CIFAR_POST_LR = disputed(Sourced(0.005, "Table 14"), Sourced(0.001, f"{SC_CIFAR_POST} l.119", "AdamW built with lr=0.001; --lr is unused"))
_CIFAR_VIEWS = f"{SC_CIFAR_RECOVER} l.72-83"
_CIFAR_MIX = f"{SC_CIFAR_POST} l.137-147, 192"

_CIFAR_SCHEDULE = disputed(
    Sourced(0, "Table 14", "cosine to zero at the last epoch"),
    Sourced(600, f"{SC_CIFAR_POST} l.121-128", "factor 0.5·(1 + cos(π·e / (2·300))) over 200 epochs ends at 0.75× (per epoch there)"),
)

CIFAR100: dict[str, Any] = {
    "dataset": Sourced("cifar100", "Table 14"),
    "squeeze": {
        "pretrainer": Sourced("moco-v2", "Sec. 3.2", "MoCo-v2-200ep ResNet-18 is the compression model"),
        "architecture": Sourced("resnet18", "Sec. 3.2"),
        "pretrainer_options": _pretrain("Table 14"),
        "pretrainer_options_by_name": {"moco-v2": moco_cifar_demo()},
    },
    "recover": {
        **_recover("Table 14", alpha_bn=0.005, lr=0.4, batch_size=100, decay=_CIFAR_DECAY[0]),
        "crop": Sourced(False, _CIFAR_VIEWS, "crop and flip commented out: roll only"),
        "flip": Sourced(False, _CIFAR_VIEWS, "crop and flip commented out: roll only"),
        "jitter": Sourced(0.125, _CIFAR_VIEWS, "torch.roll by randint(0, 4) px of 32 (--jitter 4)"),
        "view_scope": Sourced("batch", _CIFAR_VIEWS, "one roll per step for the whole batch"),
        "ipc": Sourced(50, "Table 1"),
    },
    "relabel": {
        "crop": Sourced("padded", f"{SC_CIFAR_POST} l.55-60", "RandomCrop(32, padding=4) + flip"),
        "crop_padding": Sourced(4, f"{SC_CIFAR_POST} l.55-60"),
        "mix": Sourced("mixup", _CIFAR_MIX, "the teacher labels the mixed batch (in train mode there; scdd's in eval mode)"),
        "mix_alpha": Sourced(0.8, _CIFAR_MIX),
        "mix_scope": Sourced("batch", _CIFAR_MIX, "one λ ~ Beta(0.8, 0.8) per batch, partner torch.randperm(batch)"),
    },
    "posttrain": {
        "students": Sourced(("resnet18",), "Table 1", "results are based on ResNet-18"),
        "optimizer": Sourced("adamw", "Table 14"),
        "lr": _CIFAR_POST_LR[0],
        "weight_decay": Sourced(0.01, "Table 14"),
        "betas": Sourced((0.9, 0.999), "Table 14"),
        "batch_size": Sourced(64, "Table 14"),
        "epochs": Sourced(200, "Table 14"),
        "temperature": Sourced(30.0, f"{SC_CIFAR_POST} l.180"),
        "temperature_squared": Sourced(False, f"{SC_CIFAR_POST} l.181, 198-201", "KLDiv(batchmean) without T²"),
        "schedule_epochs": _CIFAR_SCHEDULE[0],
        "runs": _RUNS,
    },
    BUILT_IN: _schedules("Table 14", "squeeze", "recover", "posttrain"),
}

# Tiny-ImageNet: Table 15; no SC-DD Tiny-ImageNet code exists, so SRe²L's Tiny code where the table is silent.
_TINY_DECAY = disputed(Sourced(1e-4, "Table 15"), Sourced(0.0, f"{SR_TINY_RECOVER} l.40", _NO_DECAY))
_TINY_VIEWS = f"{SR_TINY_RECOVER} l.49-58"
_TINY_POST = f"{TINY_KD_SCRIPT} l.4-20"
_TINY_BATCH = disputed(Sourced(64, "Table 15"), Sourced(256, _TINY_POST))
_TINY_EPOCHS = disputed(Sourced(500, "Table 15"), Sourced(100, _TINY_POST))
_TINY_AUGMENT = disputed(
    Sourced(2, "Table 15", "RandAugment; the paper gives no parameters: torchvision's 2 ops at magnitude 9"),
    Sourced(0, f"{TINY_KD} l.118-123", "RandomResizedCrop(64) + flip only; --auto-augment is parsed but unused"),
)
_TINY_WARMUP = disputed(Sourced(0, "Table 15", "cosine, no warm-up"), Sourced(5, _TINY_POST, "linear warm-up epochs"))

TINY_IMAGENET: dict[str, Any] = {
    "dataset": Sourced("tiny-imagenet", "Table 15"),
    "squeeze": {
        "pretrainer": Sourced("moco-v2", "Appendix C", "the same MoCo framework as on CIFAR-100"),
        "architecture": Sourced("resnet18", "Table 1", "results are based on ResNet-18"),
        "pretrainer_options": _pretrain("Table 15"),
        "pretrainer_options_by_name": {"moco-v2": moco_cifar_demo()},
    },
    "recover": {
        **_recover("Table 15", alpha_bn=0.1, lr=0.6, batch_size=100, decay=_TINY_DECAY[0]),
        "crop_min_scale": Sourced(0.08, "Table 15", _RRC),
        "jitter": Sourced(0.0625, _TINY_VIEWS, "roll by randint(-4, 4) px of 64"),
        "jitter_symmetric": Sourced(True, _TINY_VIEWS, "roll by randint(-4, 4) px of 64"),
        "view_scope": Sourced("batch", _TINY_VIEWS, "one crop, flip and roll per step for the whole batch"),
        "ipc": Sourced(50, "Table 1"),
    },
    "relabel": {
        "crop_min_scale": Sourced(0.08, f"{TINY_KD} l.118-123", "RandomResizedCrop(64) at the default scale"),
        "randaugment_ops": _TINY_AUGMENT[0],
        "randaugment_magnitude": Sourced(9, "Table 15", "torchvision's default"),
    },
    "posttrain": {
        "students": Sourced(("resnet18",), "Table 1", "results are based on ResNet-18"),
        "optimizer": Sourced("sgd", "Table 15"),
        "lr": Sourced(0.2, "Table 15"),
        "weight_decay": Sourced(1e-4, "Table 15"),
        "momentum": Sourced(0.9, "Table 15"),
        "batch_size": _TINY_BATCH[0],
        "epochs": _TINY_EPOCHS[0],
        "warmup_epochs": _TINY_WARMUP[0],
        "temperature": Sourced(20.0, TINY_KD_SCRIPT, "-T 20"),
        "temperature_squared": Sourced(True, f"{TINY_KD} l.35-37"),
        "runs": _RUNS,
    },
    BUILT_IN: _schedules("Table 15", "squeeze", "recover", "posttrain"),
}

# ImageNet-1K: Table 16 (Table 13 per pretrainer, Sec. 3.1's 3K iterations); SC-DD's ImageNet code where they are silent.
_IMAGENET_DECAY = disputed(Sourced(1e-4, "Table 16"), Sourced(0.0, f"{SC_IMAGENET_RECOVER} l.47", _NO_DECAY))
_IMAGENET_ITERATIONS = disputed(
    Sourced(3000, "Sec. 3.1", "Table 4's 3K row equals Tables 5 and 8; Table 16 says 1,000"),
    Sourced(1000, f"{SC_README} l.62", "--iteration 1000"),
)
_IMAGENET_RECOVER_LR = disputed(Sourced(0.25, "Table 16"), Sourced(0.1, f"{SC_README} l.62", "--lr 0.1"))
_IMAGENET_ALPHA = disputed(Sourced(0.0005, "Table 16"), Sourced(0.01, f"{SC_README} l.62", "--r-bn 0.01"))
_IMAGENET_VIEWS = f"{SC_IMAGENET_RECOVER} l.56-65"
_IMAGENET_MIX = f"{SC_IMAGENET_POST} l.66-67; {SC_IMAGENET_POST_UTILS} l.114-130"
_TEACHER = disputed(
    Sourced("aligned", "Eq. 10", "the SSL model after alignment labels the crops"),
    Sourced(
        "torchvision's supervised ResNet-18",
        f"{SC_IMAGENET_POST} l.141; {SC_README} l.74",
        "--teacher-model resnet18, pretrained=True: `scdd import-checkpoint --format torchvision FILE --out DIR`, "
        "then --set relabel.teacher=DIR/classifier.safetensors (without it the aligned model labels)",
    ),
)

IMAGENET_1K: dict[str, Any] = {
    "dataset": Sourced("imagenet", "Table 16"),
    "squeeze": {
        "pretrainer": Sourced("moco-v3", "Appendix C", "the linear probe of MoCo v3"),
        "architecture": Sourced("resnet50", "Table 5", "MoCo-v3-300ep ResNet-50 in recovery"),
        "pretrainer_options": {"epochs": Sourced(300, "Table 5", "the paper uses the official 300-epoch checkpoint")},
        "checkpoint_format": Sourced(
            "moco_v3",
            "Table 10",
            "the off-the-shelf official checkpoint, not a squeeze from scratch (--set squeeze.checkpoint_format='' for that)",
        ),
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
        **_recover("Table 16", alpha_bn=0.0005, lr=0.25, batch_size=50, decay=_IMAGENET_DECAY[0]),
        "lr": _IMAGENET_RECOVER_LR[0],
        "alpha_bn": _IMAGENET_ALPHA[0],
        "iterations": _IMAGENET_ITERATIONS[0],
        "crop_min_scale": Sourced(0.08, "Table 16", _RRC),
        "jitter": Sourced(32 / 224, _IMAGENET_VIEWS, "roll by randint(0, 32) px of 224 (--jitter 32)"),
        "view_scope": Sourced("batch", _IMAGENET_VIEWS, "RRC + flip on the 4-D batch: one view per step"),
        "ipc": Sourced(50, "Table 5"),
    },
    "relabel": {
        "teacher": _TEACHER[0],
        "crop_min_scale": Sourced(0.08, "Table 16", "validation " + _RRC),
        "mix": Sourced("cutmix", f"{SC_README} l.74", "--mix-type cutmix"),
        "mix_alpha": Sourced(1.0, _IMAGENET_MIX),
        "mix_scope": Sourced("batch", _IMAGENET_MIX, "one λ ~ Beta(1, 1) and one box per batch, partner randperm(batch)"),
    },
    "posttrain": {
        "students": Sourced(("resnet18", "resnet50", "resnet101"), "Table 5"),
        "optimizer": Sourced("adamw", "Table 16"),
        "lr": Sourced(0.001, "Table 16"),
        "weight_decay": Sourced(0.01, "Table 16"),
        "betas": Sourced((0.9, 0.999), "Table 16"),
        "batch_size": Sourced(64, "Table 16"),
        "epochs": Sourced(300, "Table 16", "the main results use 600 (Appendix C)"),
        "temperature": Sourced(20.0, f"{SC_IMAGENET_POST} l.60-61"),
        "temperature_squared": Sourced(False, f"{SC_IMAGENET_POST} l.220-226", "no T² factor"),
        "decay_norm_and_bias": Sourced(False, f"{SC_IMAGENET_POST_UTILS} l.58-72", "AdamW decays only weights with ndim > 1"),
        "runs": _RUNS,
    },
    BY_PRETRAINER: {
        "moco-v2": {"recover": {"lr": Sourced(0.35, "Table 13"), "alpha_bn": Sourced(0.25, "Table 13")}},
        "moco-v3": {"recover": {"lr": Sourced(0.25, "Table 13"), "alpha_bn": Sourced(0.0005, "Table 13")}},
        "swav": {"recover": {"lr": Sourced(0.3, "Table 13"), "alpha_bn": Sourced(0.001, "Table 13")}},
        "dino": {"recover": {"lr": Sourced(0.25, "Table 13"), "alpha_bn": Sourced(0.01, "Table 13")}},
    },
    BUILT_IN: _schedules("Table 16", "align", "recover", "posttrain"),
    USER_FILE: {
        "squeeze.checkpoint": Sourced(
            "the official MoCo v3 ResNet-50 (r-50-300ep.pth.tar)",
            "Table 10; Table 5: MoCo-v3-300ep",
            "scdd downloads nothing",
        ),
    },
}

PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "cifar100": CIFAR100,
    "tiny-imagenet": TINY_IMAGENET,
    "imagenet-1k": IMAGENET_1K,
}

# The official code's values where it and the paper disagree (the ``NAME-official`` presets); None removes an entry.
OFFICIAL: dict[str, dict[str, Any]] = {
    "cifar100": {
        "recover": {"weight_decay": _CIFAR_DECAY[1]},
        "posttrain": {
            "lr": _CIFAR_POST_LR[1],
            "schedule_epochs": _CIFAR_SCHEDULE[1],
        },
    },
    "tiny-imagenet": {
        "recover": {"weight_decay": _TINY_DECAY[1]},
        "relabel": {"randaugment_ops": _TINY_AUGMENT[1]},
        "posttrain": {"batch_size": _TINY_BATCH[1], "epochs": _TINY_EPOCHS[1], "warmup_epochs": _TINY_WARMUP[1]},
    },
    "imagenet-1k": {
        "recover": {
            "weight_decay": _IMAGENET_DECAY[1],
            "lr": _IMAGENET_RECOVER_LR[1],
            "alpha_bn": _IMAGENET_ALPHA[1],
            "iterations": _IMAGENET_ITERATIONS[1],
        },
        "relabel": {"teacher": None},  # the user's file instead (without one, the default: the aligned model)
        USER_FILE: {"relabel.teacher": _TEACHER[1]},
        BY_PRETRAINER: None,  # the README's values, whatever the pretrainer
    },
}
