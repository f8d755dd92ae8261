"""The paper presets against the paper: values transcribed here by hand from its appendix
(Tables 13-16), Table 1, Table 5, Sec. 3.2 and Appendix C, independently of scdd.presets.paper."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from scdd.cli import cli
from scdd.config import make_run_config
from scdd.presets import BUILT_IN_MARK, USER_FILE_MARK, preset_for_dataset, preset_rows

# Table 14 / 15 "Pretrain" columns: SGD, lr 0.06, wd 5e-4, momentum 0.9, batch 512, cosine, 200 epochs.
_PRETRAIN = {"epochs": 200, "batch_size": 512, "optimizer": "sgd", "lr": 0.06, "weight_decay": 5e-4, "momentum": 0.9}
# Where the paper is silent, the official code (VILA-Lab/SRe2L's SCDD/ and SRe2L/ folders,
# zeyuanyin/tiny-imagenet, facebookresearch/moco's CIFAR demo), file and lines as read.
CR, CP = "SCDD/cifar100_code/recover/recover_cifar100.py", "SCDD/cifar100_code/post_train/post_cifar100.py"
IR, IP = "SCDD/imagenet_code/recover/data_synthesis.py", "SCDD/imagenet_code/post_train/train_kd.py"
IPU, README = "SCDD/imagenet_code/post_train/utils.py", "SCDD/README.md"
RT, TKD, TSH = "SRe2L/*small_dataset/recover_tiny.py", "tiny-imagenet/classification/train_kd.py", "tiny-imagenet/script/train_kd.sh"
DEMO = "moco-cifar-demo"
# MoCo's CIFAR demo: K 4096, m 0.99, τ 0.1 (cell 4), crops at the default scale, no blur (cell 6),
# the ResNet's fc as a linear 128-d head and SplitBatchNorm in 8 (cell 8).
_MOCO_DEMO = {
    "queue_size": (4096, f"{DEMO} cell 4"),
    "encoder_momentum": (0.99, f"{DEMO} cell 4"),
    "temperature": (0.1, f"{DEMO} cell 4"),
    "head": ("linear", f"{DEMO} cell 8"),
    "output_dim": (128, f"{DEMO} cell 4"),
    "crop_min_scale": (0.08, f"{DEMO} cell 6"),
    "blur_p": (0.0, f"{DEMO} cell 6"),
    "shuffle_bn_groups": (8, f"{DEMO} cell 8"),
}


def _squeeze(table: str) -> dict:
    return {
        **{f"squeeze.pretrainer_options.{k}": (v, table) for k, v in _PRETRAIN.items()},
        **{f"squeeze.pretrainer_options_by_name.moco-v2.{k}": v for k, v in _MOCO_DEMO.items()},
    }


PAPER = {
    "cifar100": {
        "dataset": ("cifar100", "Table 14"),
        "squeeze.pretrainer": ("moco-v2", "Sec. 3.2"),
        "squeeze.architecture": ("resnet18", "Sec. 3.2"),
        **_squeeze("Table 14"),
        "recover.alpha_bn": (0.005, "Table 14"),
        "recover.optimizer": ("adam", "Table 14"),
        "recover.lr": (0.4, "Table 14"),
        "recover.weight_decay": (1e-4, "Table 14"),
        "recover.betas": ((0.5, 0.9), "Table 14"),
        "recover.batch_size": (100, "Table 14"),
        "recover.iterations": (1000, "Table 14"),
        "recover.crop": (False, f"{CR} l.72-83"),
        "recover.flip": (False, f"{CR} l.72-83"),
        "recover.jitter": (4 / 32, f"{CR} l.72-83"),
        "recover.view_scope": ("batch", f"{CR} l.72-83"),
        "recover.ipc": (50, "Table 1"),
        "relabel.crop": ("padded", f"{CP} l.55-60"),
        "relabel.crop_padding": (4, f"{CP} l.55-60"),
        "relabel.mix": ("mixup", f"{CP} l.137-147, 192"),
        "relabel.mix_alpha": (0.8, f"{CP} l.137-147, 192"),
        "relabel.mix_scope": ("batch", f"{CP} l.137-147, 192"),
        "posttrain.students": (("resnet18",), "Table 1"),
        "posttrain.optimizer": ("adamw", "Table 14"),
        "posttrain.lr": (0.005, "Table 14"),
        "posttrain.weight_decay": (0.01, "Table 14"),
        "posttrain.betas": ((0.9, 0.999), "Table 14"),
        "posttrain.batch_size": (64, "Table 14"),
        "posttrain.epochs": (200, "Table 14"),
        "posttrain.temperature": (30.0, f"{CP} l.180"),
        "posttrain.temperature_squared": (False, f"{CP} l.181, 198-201"),
        "posttrain.schedule_epochs": (0, "Table 14"),
        "posttrain.runs": (3, "Table 1"),
        "squeeze.lr_schedule": ("cosine", "Table 14"),
        "recover.lr_schedule": ("cosine", "Table 14"),
        "posttrain.lr_schedule": ("cosine", "Table 14"),
    },
    "tiny-imagenet": {
        "dataset": ("tiny-imagenet", "Table 15"),
        "squeeze.pretrainer": ("moco-v2", "Appendix C"),
        "squeeze.architecture": ("resnet18", "Table 1"),
        **_squeeze("Table 15"),
        "recover.alpha_bn": (0.1, "Table 15"),
        "recover.optimizer": ("adam", "Table 15"),
        "recover.lr": (0.6, "Table 15"),
        "recover.weight_decay": (1e-4, "Table 15"),
        "recover.betas": ((0.5, 0.9), "Table 15"),
        "recover.batch_size": (100, "Table 15"),
        "recover.iterations": (1000, "Table 15"),
        "recover.crop_min_scale": (0.08, "Table 15"),
        "recover.jitter": (4 / 64, f"{RT} l.49-58"),
        "recover.jitter_symmetric": (True, f"{RT} l.49-58"),
        "recover.view_scope": ("batch", f"{RT} l.49-58"),
        "recover.ipc": (50, "Table 1"),
        "relabel.crop_min_scale": (0.08, f"{TKD} l.118-123"),
        "relabel.randaugment_ops": (2, "Table 15"),  # torchvision's defaults: the paper names RandAugment only
        "relabel.randaugment_magnitude": (9, "Table 15"),
        "posttrain.students": (("resnet18",), "Table 1"),
        "posttrain.optimizer": ("sgd", "Table 15"),
        "posttrain.lr": (0.2, "Table 15"),
        "posttrain.weight_decay": (1e-4, "Table 15"),
        "posttrain.momentum": (0.9, "Table 15"),
        "posttrain.batch_size": (64, "Table 15"),
        "posttrain.epochs": (500, "Table 15"),
        "posttrain.warmup_epochs": (0, "Table 15"),
        "posttrain.temperature": (20.0, TSH),
        "posttrain.temperature_squared": (True, f"{TKD} l.35-37"),
        "posttrain.runs": (3, "Table 1"),
        "squeeze.lr_schedule": ("cosine", "Table 15"),
        "recover.lr_schedule": ("cosine", "Table 15"),
        "posttrain.lr_schedule": ("cosine", "Table 15"),
    },
    "imagenet-1k": {
        "dataset": ("imagenet", "Table 16"),
        "squeeze.pretrainer": ("moco-v3", "Appendix C"),
        "squeeze.architecture": ("resnet50", "Table 5"),
        "squeeze.pretrainer_options.epochs": (300, "Table 5"),
        "align.aligner": ("linear-probe", "Appendix C"),
        "align.aligner_options.epochs": (200, "Table 16"),
        "align.aligner_options.batch_size": (256, "Table 16"),
        "align.aligner_options.optimizer": ("sgd", "Table 16"),
        "align.aligner_options.lr": (0.03, "Table 16"),
        "align.aligner_options.weight_decay": (1e-4, "Table 16"),
        "align.aligner_options.momentum": (0.9, "Table 16"),
        "recover.alpha_bn": (0.0005, "Table 16"),
        "recover.optimizer": ("adam", "Table 16"),
        "recover.lr": (0.25, "Table 16"),
        "recover.weight_decay": (1e-4, "Table 16"),
        "recover.betas": ((0.5, 0.9), "Table 16"),
        "recover.batch_size": (50, "Table 16"),
        "recover.iterations": (3000, "Sec. 3.1"),
        "recover.crop_min_scale": (0.08, "Table 16"),
        "recover.jitter": (32 / 224, f"{IR} l.56-65"),
        "recover.view_scope": ("batch", f"{IR} l.56-65"),
        "recover.ipc": (50, "Table 5"),
        "relabel.crop_min_scale": (0.08, "Table 16"),
        "relabel.mix": ("cutmix", f"{README} l.74"),
        "relabel.mix_alpha": (1.0, f"{IP} l.66-67; {IPU} l.114-130"),
        "relabel.mix_scope": ("batch", f"{IP} l.66-67; {IPU} l.114-130"),
        "posttrain.students": (("resnet18", "resnet50", "resnet101"), "Table 5"),
        "posttrain.optimizer": ("adamw", "Table 16"),
        "posttrain.lr": (0.001, "Table 16"),
        "posttrain.weight_decay": (0.01, "Table 16"),
        "posttrain.betas": ((0.9, 0.999), "Table 16"),
        "posttrain.batch_size": (64, "Table 16"),
        "posttrain.epochs": (300, "Table 16"),
        "posttrain.temperature": (20.0, f"{IP} l.60-61"),
        "posttrain.temperature_squared": (False, f"{IP} l.220-226"),
        "posttrain.decay_norm_and_bias": (False, f"{IPU} l.58-72"),
        "posttrain.runs": (3, "Table 1"),
        "[moco-v2] recover.lr": (0.35, "Table 13"),
        "[moco-v2] recover.alpha_bn": (0.25, "Table 13"),
        "[moco-v3] recover.lr": (0.25, "Table 13"),
        "[moco-v3] recover.alpha_bn": (0.0005, "Table 13"),
        "[swav] recover.lr": (0.3, "Table 13"),
        "[swav] recover.alpha_bn": (0.001, "Table 13"),
        "[dino] recover.lr": (0.25, "Table 13"),
        "[dino] recover.alpha_bn": (0.01, "Table 13"),
        "align.lr_schedule": ("cosine", "Table 16"),
        "recover.lr_schedule": ("cosine", "Table 16"),
        "posttrain.lr_schedule": ("cosine", "Table 16"),
        "squeeze.checkpoint_format": ("moco_v3", "Table 10"),
        "squeeze.checkpoint": ("the official MoCo v3 ResNet-50 (r-50-300ep.pth.tar)", "Table 10; Table 5: MoCo-v3-300ep"),
        "relabel.teacher": ("aligned", "Eq. 10"),
    },
}
# The official code where it and the paper disagree: the -official presets change only these.
OFFICIAL = {
    "cifar100": {
        "recover.weight_decay": (0.0, f"{CR} l.61"),
        "posttrain.lr": (0.001, f"{CP} l.119"),
        "posttrain.schedule_epochs": (600, f"{CP} l.121-128"),
    },
    "tiny-imagenet": {
        "recover.weight_decay": (0.0, f"{RT} l.40"),
        "posttrain.batch_size": (256, f"{TSH} l.4-20"),
        "posttrain.epochs": (100, f"{TSH} l.4-20"),
        "posttrain.warmup_epochs": (5, f"{TSH} l.4-20"),
        "relabel.randaugment_ops": (0, f"{TKD} l.118-123"),
    },
    "imagenet-1k": {
        "recover.weight_decay": (0.0, f"{IR} l.47"),
        "recover.lr": (0.1, f"{README} l.62"),
        "recover.alpha_bn": (0.01, f"{README} l.62"),
        "recover.iterations": (1000, f"{README} l.62"),
        "relabel.teacher": ("torchvision's supervised ResNet-18", f"{IP} l.141; {README} l.74"),
        **{f"[{name}] recover.{key}": None for name in ("moco-v2", "moco-v3", "swav", "dino") for key in ("lr", "alpha_bn")},
    },
}
for _name, _changes in OFFICIAL.items():
    PAPER[f"{_name}-official"] = {k: v for k, v in {**PAPER[_name], **_changes}.items() if v is not None}
SHOWN_ONLY = (BUILT_IN_MARK, USER_FILE_MARK)  # rows scdd shows but does not apply: built-in values, the user's files


def _setting(config, dotted: str):
    node = config
    for part in dotted.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


@pytest.mark.parametrize("name", sorted(PAPER))
def test_every_preset_value_is_the_papers_and_every_paper_value_is_there(name):
    shown = {setting: (value, source) for setting, value, source, _ in preset_rows(name)}
    assert shown == PAPER[name]


@pytest.mark.parametrize("name", sorted(PAPER))
def test_the_resolved_config_carries_the_papers_values(name):
    config = make_run_config(preset=name)
    shown_only = {setting for setting, _, _, note in preset_rows(name) if note.startswith(SHOWN_ONLY)}
    for setting, (value, _) in PAPER[name].items():
        if setting.startswith("[") or "_by_name." in setting or setting in shown_only:
            continue
        assert _setting(config, setting) == value, setting
    assert config.relabel.epochs == config.posttrain.epochs


def test_moco_cifar_demo_options_reach_only_moco_v2():
    options = make_run_config(preset="cifar100").squeeze.pretrainer_options
    assert {k: options[k] for k in _MOCO_DEMO} == {k: v for k, (v, _) in _MOCO_DEMO.items()}
    assert "queue_size" not in make_run_config({"squeeze": {"pretrainer": "moco-v3"}}, preset="cifar100").squeeze.pretrainer_options


@pytest.mark.parametrize("pretrainer", ["moco-v2", "moco_v3", "SwAV", "dino"])
def test_table_13_follows_the_chosen_pretrainer(pretrainer):
    config = make_run_config({"squeeze": {"pretrainer": pretrainer}}, preset="imagenet-1k")
    key = pretrainer.lower().replace("_", "-")
    assert (config.recover.lr, config.recover.alpha_bn) == (
        PAPER["imagenet-1k"][f"[{key}] recover.lr"][0],
        PAPER["imagenet-1k"][f"[{key}] recover.alpha_bn"][0],
    )


def test_datasets_get_their_preset_and_user_settings_win():
    assert preset_for_dataset("imagenet") == "imagenet-1k"
    assert preset_for_dataset("tiny_imagenet") == "tiny-imagenet"
    assert make_run_config({"dataset": "cifar100"}).recover.lr == 0.4
    assert make_run_config({"dataset": "cifar100", "recover": {"lr": 0.1}}).recover.lr == 0.1
    assert make_run_config({"dataset": "imagenet", "recover": {"alpha_bn": 0.5}}).recover.alpha_bn == 0.5


def test_presets_show_prints_values_with_their_tables():
    result = CliRunner().invoke(cli, ["presets", "show", "tiny-imagenet"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "recover.alpha_bn" in line)
    assert "0.1" in line and "Table 15" in line
    assert "RandAugment" in result.output and "built into scdd" in result.output  # the cosine schedules
    assert "no scdd setting" not in result.output
    listing = CliRunner().invoke(cli, ["presets", "list"])
    assert listing.exit_code == 0 and "imagenet-1k\timagenet" in listing.output


def test_unknown_preset_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["presets", "show", "imagenet-22k"])
    assert result.exit_code != 0 and "unknown preset 'imagenet-22k'" in result.output


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_presets_keep_the_ensemble_and_ema_options_off(name):
    config = make_run_config(preset=name)
    assert (config.recover.extra_teachers, config.relabel.extra_teachers, config.posttrain.ema_decay) == ((), (), 0.0)
