"""Runs that start from published weights (Table 10), label with another teacher, or stop a cosine early:
``squeeze.checkpoint``, ``relabel.teacher`` and ``posttrain.schedule_epochs``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from scdd.cli import cli
from scdd.config import make_run_config
from scdd.errors import ConfigError
from scdd.models.saved import load_model, save_model
from scdd.stages.posttrain import PosttrainConfig
from scdd.stages.relabel import RelabelConfig, relabel
from scdd.training import TrainLoop


def _invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def _colour_folder(root, classes=2, per_class=3):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label in range(classes):
            folder = root / split / f"c{label}"
            folder.mkdir(parents=True)
            for index in range(per_class):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def resnet18_state():
    """torchvision's ResNet-18 with random weights and non-trivial BN statistics."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var")):
            state[key] = torch.rand_like(value) + 0.5
    return state


def _squeeze(data, out, *settings):
    return _invoke(
        "squeeze",
        "--dataset",
        "imagefolder",
        "--data-root",
        data,
        "--device",
        "cpu",
        "--out",
        out,
        "--set",
        "squeeze.pretrainer=moco-v3",
        "--set",
        "squeeze.architecture=resnet18",
        *settings,
    )


def test_squeeze_takes_the_published_backbone_exactly(resnet18_state, tmp_path):
    """Table 10: the squeeze of a published MoCo v3 file is its base encoder, BN statistics included, no training."""
    backbone = {k: v for k, v in resnet18_state.items() if not k.startswith("fc.")}
    encoder = {**backbone, "fc.0.weight": torch.zeros(8, 512), "fc.3.weight": torch.zeros(4, 8)}  # a projector, dropped
    file = {
        "state_dict": {
            **{f"module.base_encoder.{k}": v for k, v in encoder.items()},
            **{f"module.momentum_encoder.{k}": v for k, v in encoder.items()},
        }
    }
    torch.save(file, tmp_path / "moco.pth")
    data = _colour_folder(tmp_path / "data")
    result = _squeeze(
        data, tmp_path / "out", "--set", f"squeeze.checkpoint={tmp_path / 'moco.pth'}", "--set", "squeeze.checkpoint_format=moco_v3"
    )
    assert result.exit_code == 0, result.output
    written = load_file(str(tmp_path / "out" / "backbone.safetensors"))
    assert set(written) == set(backbone)
    assert all(torch.equal(tensor, backbone[key]) for key, tensor in written.items())
    _, record = load_model(tmp_path / "out" / "backbone.safetensors", "backbone")
    assert record.extra["imported_from"] == "moco.pth" and record.dataset.name == "imagefolder"

    wrong = _squeeze(
        data,
        tmp_path / "wrong",
        "--set",
        "squeeze.architecture=resnet50",
        "--set",
        f"squeeze.checkpoint={tmp_path / 'moco.pth'}",
        "--set",
        "squeeze.checkpoint_format=moco_v3",
    )
    assert wrong.exit_code != 0 and "holds a resnet18; squeeze.architecture is resnet50" in wrong.output
    assert not (tmp_path / "wrong" / "backbone.safetensors").exists()


@pytest.mark.parametrize(
    "settings, message",
    [
        (["squeeze.checkpoint_format=moco_v3"], "give its file with --set squeeze.checkpoint=PATH"),
        (["squeeze.checkpoint_format=moco_v3", "squeeze.checkpoint=missing.pth"], "squeeze.checkpoint missing.pth: no such file"),
        (["squeeze.checkpoint_format=swav", "squeeze.checkpoint={file}"], "holds a swav model but squeeze.pretrainer is moco-v3"),
        (["squeeze.checkpoint={file}"], "squeeze.checkpoint_format must be one of"),
        (["relabel.teacher=missing.safetensors"], "relabel.teacher missing.safetensors: no such file"),
    ],
)
def test_a_run_naming_files_it_cannot_use_fails_before_any_work(settings, message, tmp_path):
    (tmp_path / "file.pth").write_bytes(b"")
    sets = [item for setting in settings for item in ("--set", setting.format(file=tmp_path / "file.pth"))]
    result = _invoke("run", "--device", "cpu", "--quiet", "--out", tmp_path / "run", *sets)
    assert result.exit_code != 0 and message in result.output, result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "run").exists()


def test_the_imagenet_preset_squeezes_from_the_official_checkpoint():
    config = make_run_config({"dataset": "imagenet"}, "imagenet-1k")
    assert config.squeeze.checkpoint_format == "moco_v3" and config.relabel.teacher == "aligned"
    assert make_run_config({"dataset": "cifar100"}, "cifar100-official").posttrain.schedule_epochs == 600


def test_relabel_teacher_setting_labels_with_that_classifier(tiny_run, tmp_path):
    out, _ = tiny_run
    aligned = out / "align" / "classifier.safetensors"
    model, record = load_model(aligned, "classifier")
    with torch.no_grad():
        model.head.weight.mul_(-1.0)  # another teacher: its labels differ from the aligned one's
    other = save_model(tmp_path / "other.safetensors", model, record)
    distilled = out / "recover" / "distilled.safetensors"
    run = {"device": torch.device("cpu"), "seed": 0}
    direct = relabel(RelabelConfig(epochs=2), other, distilled, tmp_path / "direct", **run)
    chosen = relabel(RelabelConfig(epochs=2, teacher=str(other)), aligned, distilled, tmp_path / "chosen", **run)
    default = relabel(RelabelConfig(epochs=2), aligned, distilled, tmp_path / "default", **run)
    labels = {
        name: load_file(str(result.artifacts["soft_labels"]))
        for name, result in (("direct", direct), ("chosen", chosen), ("default", default))
    }
    assert all(torch.equal(labels["direct"][key], labels["chosen"][key]) for key in labels["direct"])
    assert not all(torch.equal(labels["default"][key], labels["chosen"][key]) for key in labels["default"])


def test_a_bench_refuses_its_own_relabelling_teacher(tmp_path):
    (tmp_path / "teacher.safetensors").write_bytes(b"")
    result = _invoke("bench", "--suite", "fair", "--plan", "--set", f"relabel.teacher={tmp_path / 'teacher.safetensors'}")
    assert result.exit_code != 0 and "relabel.teacher has no place in a bench" in result.output


def test_schedule_epochs_stops_the_cosine_early():
    """The official CIFAR-100 factor 0.5·(1 + cos(π·e/600)) ends at 0.75 after 200 epochs."""
    config = PosttrainConfig(epochs=200, schedule_epochs=600, lr=0.1, optimizer="sgd")
    parameter = torch.nn.Parameter(torch.zeros(1))
    loop = TrainLoop("t", config, [parameter], 3, torch.device("cpu"), schedule_steps=config.schedule_epochs * 3)
    for _ in range(200 * 3):
        loop.optimizer.step()
        loop.schedule.step()
    assert math.isclose(loop.optimizer.param_groups[0]["lr"], 0.1 * 0.75, rel_tol=1e-9)
    plain = TrainLoop("t", config, [torch.nn.Parameter(torch.zeros(1))], 3, torch.device("cpu"))
    for _ in range(200 * 3):
        plain.optimizer.step()
        plain.schedule.step()
    assert plain.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError, match="schedule_epochs"):
        PosttrainConfig(epochs=200, schedule_epochs=100)
