"""One recovery step, one relabel epoch and one post-training step under each paper preset, on a
tiny fake on-disk copy of the preset's dataset. Only the budgets shrink (iterations, IPC, epochs,
students, runs); every augmentation, mixing and loss setting is the preset's. (The official variants
change only numbers: learning rates, weight decay, iterations, batch size, epochs.)"""

import pickle

import numpy as np
import pytest
import torch
from test_datasets import _cifar_batch, _jpeg

from scdd.config import make_run_config
from scdd.data.loading import load_dataset
from scdd.models.build import build_classifier
from scdd.models.saved import ModelRecord, save_model
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import recover
from scdd.stages.relabel import relabel

CPU = torch.device("cpu")


def _fake_cifar100(root):
    folder = root / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    _cifar_batch(folder / "train", 4, "fine_labels", rng, 100)
    _cifar_batch(folder / "test", 2, "fine_labels", rng, 100)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": ["x"] * 20}, handle)


def _fake_tiny_imagenet(root):
    base, rng, wnids = root / "tiny-imagenet-200", np.random.default_rng(1), ["n01", "n02"]
    (base / "wnids.txt").parent.mkdir(parents=True)
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("n01\tgoldfish\nn02\ttabby\n")
    for wnid in wnids:
        _jpeg(base / "train" / wnid / "images" / f"{wnid}_0.JPEG", (64, 64), rng)
    _jpeg(base / "val" / "images" / "val_0.JPEG", (64, 64), rng)
    (base / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t10\t10\n")


def _fake_imagenet(root):
    rng = np.random.default_rng(2)
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            _jpeg(root / split / wnid / "0.JPEG", (256, 256), rng)


FAKES = {"cifar100": _fake_cifar100, "tiny-imagenet": _fake_tiny_imagenet, "imagenet-1k": _fake_imagenet}


@pytest.mark.parametrize("name", FAKES)
def test_one_step_of_each_stage_under_the_preset(name, tmp_path):
    FAKES[name](tmp_path)
    budget = {
        "data_root": str(tmp_path),
        "recover": {"iterations": 1, "ipc": 1},
        "posttrain": {"epochs": 1, "students": ("resnet18",), "runs": 1},
    }
    config = make_run_config(budget, preset=name)
    info = load_dataset(config).info
    torch.manual_seed(0)
    teacher = build_classifier(config.squeeze.architecture, info)
    teacher_path = save_model(
        tmp_path / "teacher.safetensors", teacher, ModelRecord("classifier", config.squeeze.architecture, {}, info, {})
    )
    recovered = recover(config.recover, teacher_path, tmp_path / "recover", device=CPU, seed=0)
    assert recovered.metrics["images"] == info.num_classes and np.isfinite(recovered.metrics["loss_bn_first"])
    labels = relabel(config.relabel, teacher_path, recovered.artifacts["distilled"], tmp_path / "relabel", device=CPU, seed=0)
    distilled, soft_labels = recovered.artifacts["distilled"], labels.artifacts["soft_labels"]
    trained = posttrain(config.posttrain, distilled, soft_labels, tmp_path / "posttrain", device=CPU, seed=0)
    assert np.isfinite(trained.metrics["resnet18"]["final_loss"]) and trained.artifacts["resnet18"].is_file()
