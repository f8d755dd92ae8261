"""The paper presets against the paper: values transcribed here by hand from its appendix
(Tables 13-16), Table 1, Table 5, Sec. 3.2 and Appendix C, independently of scdd.presets.paper."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from scdd.cli import cli

from scdd.config import make_run_config
from scdd.presets import preset_for_dataset, preset_rows

# Table 14 / 15 "Pretrain" columns: SGD, lr 0.06, wd 5e-4, momentum 0.9, batch 512, cosine, 200 epochs.
_PRETRAIN = {"epochs": 200, "batch_size": 512, "optimizer": "sgd", "lr": 0.06, "weight_decay": 5e-4, "momentum": 0.9}

PAPER = {
    "cifar100": {
        "dataset": ("cifar100", "Table 14"),
        "squeeze.pretrainer": ("moco-v2", "Sec. 3.2"),
        "squeeze.architecture": ("resnet18", "Sec. 3.2"),
        **{f"squeeze.pretrainer_options.{k}": (v, "Table 14") for k, v in _PRETRAIN.items()},
        "recover.alpha_bn": (0.005, "Table 14"),
        "recover.optimizer": ("adam", "Table 14"),
        "recover.lr": (0.4, "Table 14"),
        "recover.weight_decay": (1e-4, "Table 14"),
        "recover.betas": ((0.5, 0.9), "Table 14"),
        "recover.batch_size": (100, "Table 14"),
        "recover.iterations": (1000, "Table 14"),
        "recover.ipc": (50, "Table 1"),
        "posttrain.students": (("resnet18",), "Table 1"),
        "posttrain.optimizer": ("adamw", "Table 14"),
        "posttrain.lr": (0.005, "Table 14"),
        "posttrain.weight_decay": (0.01, "Table 14"),
        "posttrain.betas": ((0.9, 0.999), "Table 14"),
        "posttrain.batch_size": (64, "Table 14"),
        "posttrain.epochs": (200, "Table 14"),
        "squeeze.lr_schedule": ("cosine", "Table 14"),
        "recover.lr_schedule": ("cosine", "Table 14"),
        "posttrain.lr_schedule": ("cosine", "Table 14"),
    },
    "tiny-imagenet": {
        "dataset": ("tiny-imagenet", "Table 15"),
        "squeeze.pretrainer": ("moco-v2", "Appendix C"),
        "squeeze.architecture": ("resnet18", "Table 1"),
        **{f"squeeze.pretrainer_options.{k}": (v, "Table 15") for k, v in _PRETRAIN.items()},
        "recover.alpha_bn": (0.1, "Table 15"),
        "recover.optimizer": ("adam", "Table 15"),
        "recover.lr": (0.6, "Table 15"),
        "recover.weight_decay": (1e-4, "Table 15"),
        "recover.betas": ((0.5, 0.9), "Table 15"),
        "recover.batch_size": (100, "Table 15"),
        "recover.iterations": (1000, "Table 15"),
        "recover.crop_min_scale": (0.08, "Table 15"),
        "recover.ipc": (50, "Table 1"),
        "posttrain.students": (("resnet18",), "Table 1"),
        "posttrain.optimizer": ("sgd", "Table 15"),
        "posttrain.lr": (0.2, "Table 15"),
        "posttrain.weight_decay": (1e-4, "Table 15"),
        "posttrain.momentum": (0.9, "Table 15"),
        "posttrain.batch_size": (64, "Table 15"),
        "posttrain.epochs": (500, "Table 15"),
        "squeeze.lr_schedule": ("cosine", "Table 15"),
        "recover.lr_schedule": ("cosine", "Table 15"),
        "posttrain.lr_schedule": ("cosine", "Table 15"),
        "posttrain.augmentation": ("RandAugment", "Table 15"),
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
        "recover.iterations": (1000, "Table 16"),
        "recover.crop_min_scale": (0.08, "Table 16"),
        "recover.ipc": (50, "Table 5"),
        "relabel.crop_min_scale": (0.08, "Table 16"),
        "posttrain.students": (("resnet18", "resnet50", "resnet101"), "Table 5"),
        "posttrain.optimizer": ("adamw", "Table 16"),
        "posttrain.lr": (0.001, "Table 16"),
        "posttrain.weight_decay": (0.01, "Table 16"),
        "posttrain.betas": ((0.9, 0.999), "Table 16"),
        "posttrain.batch_size": (64, "Table 16"),
        "posttrain.epochs": (300, "Table 16"),
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
        "recover.iterations_in_text": (3000, "Sec. 3.1"),
        "posttrain.lr_schedule": ("cosine", "Table 16"),
    },
}
NOT_A_SETTING = {"lr_schedule", "augmentation", "iterations_in_text"}


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
    for setting, (value, _) in PAPER[name].items():
        if setting.startswith("[") or setting.rsplit(".", 1)[-1] in NOT_A_SETTING:
            continue
        assert _setting(config, setting) == value, setting
    assert config.relabel.epochs == config.posttrain.epochs


@pytest.mark.parametrize("pretrainer", ["moco-v2", "moco_v3", "SwAV", "dino"])
def test_table_13_follows_the_chosen_pretrainer(pretrainer):
    config = make_run_config({"squeeze": {"pretrainer": pretrainer}}, preset="imagenet-1k")
    key = pretrainer.lower().replace("_", "-")
    assert (config.recover.lr, config.recover.alpha_bn) == (PAPER["imagenet-1k"][f"[{key}] recover.lr"][0],
                                                            PAPER["imagenet-1k"][f"[{key}] recover.alpha_bn"][0])


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
    assert "RandAugment" in result.output and "no scdd setting" in result.output
    listing = CliRunner().invoke(cli, ["presets", "list"])
    assert listing.exit_code == 0 and "imagenet-1k\timagenet" in listing.output


def test_unknown_preset_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["presets", "show", "imagenet-22k"])
    assert result.exit_code != 0 and "unknown preset 'imagenet-22k'" in result.output
