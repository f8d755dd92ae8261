"""End-to-end: one tiny real run (shared), then checks on what every stage wrote."""

import json

import torch
from PIL import Image

from scdd.artifacts import load_tensors, save_tensors
from scdd.config import make_run_config
from scdd.distilled import load_distilled
from scdd.models.classifier import batchnorm_state
from scdd.models.saved import load_model
from scdd.stages.coreset import coreset_random
from scdd.stages.evaluate import evaluate
from scdd.stages.posttrain import posttrain
from scdd.stages.recover import initial_noise, recovery_order


def test_manifest_records_config_versions_stages_and_metrics(tiny_run):
    out, record = tiny_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["squeeze"]["pretrainer"] == "moco-v3"
    assert manifest["versions"]["torch"]
    assert [s for s in manifest["stages"]] == ["squeeze", "align", "recover", "relabel", "posttrain", "evaluate"]
    assert all(stage["status"] == "done" and stage["seconds"] >= 0 for stage in manifest["stages"].values())
    student = manifest["metrics"]["students"]["resnet10-slim"]
    assert 0 <= student["top1"] <= student["top5"] <= 100
    assert len(manifest["stages"]["squeeze"]["metrics"]["loss_per_epoch"]) == 1


def test_linear_probe_leaves_bn_statistics_bit_identical(tiny_run):
    out, _ = tiny_run
    backbone, _ = load_model(out / "squeeze" / "backbone.safetensors", "backbone")
    teacher, _ = load_model(out / "align" / "classifier.safetensors", "classifier")
    before, after = batchnorm_state(backbone), batchnorm_state(teacher.backbone)
    assert before.keys() == after.keys() and len(before) > 0
    assert all(torch.equal(before[key], after[key]) for key in before)
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, teacher.backbone.state_dict()[name])


def test_recovery_lowers_bn_loss_and_changes_images(tiny_run):
    out, _ = tiny_run
    trajectory, _ = load_tensors(out / "recover" / "trajectory.safetensors", "trajectory")
    assert trajectory["loss_bn"][:, -5:].mean() < 0.5 * trajectory["loss_bn"][:, :5].mean()
    distilled = load_distilled(out / "recover" / "distilled.safetensors")
    info = distilled.info
    start = initial_noise(info, recovery_order(info.num_classes, 1), seed=0)
    start = (start * torch.tensor(info.std).view(1, -1, 1, 1) + torch.tensor(info.mean).view(1, -1, 1, 1)).clamp(0, 1)
    assert distilled.images.shape == (10, 1, 28, 28)
    assert (distilled.images - start).abs().mean() > 0.05
    assert distilled.images.min() >= 0 and distilled.images.max() <= 1


def test_png_export_matches_stored_images(tiny_run):
    out, _ = tiny_run
    distilled = load_distilled(out / "recover" / "distilled.safetensors")
    folders = sorted(p.name for p in (out / "recover" / "images").iterdir() if p.is_dir())
    assert folders == [str(d) for d in range(10)] and (out / "recover" / "images" / "metadata.jsonl").is_file()
    png = torch.tensor(list(Image.open(out / "recover" / "images" / "3" / "00000.png").tobytes()), dtype=torch.float32)
    expected = (distilled.images[distilled.labels == 3][0, 0].flatten() * 255).round()
    assert torch.equal(png, expected)


def test_soft_labels_cover_every_epoch_and_image(tiny_run):
    out, _ = tiny_run
    tensors, metadata = load_tensors(out / "relabel" / "soft_labels.safetensors", "soft_labels")
    assert tensors["logits"].shape == (5, 10, 10)
    assert tensors["boxes"].shape == (5, 10, 4)
    assert metadata["epochs"] == 5


def test_safetensors_round_trip_is_bit_exact(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_tensors(tmp_path / "x.safetensors", tensors, {"kind": "test", "note": [1, 2]})
    loaded, metadata = load_tensors(tmp_path / "x.safetensors", "test")
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert metadata["note"] == [1, 2]
    assert not list(tmp_path.glob(".*tmp"))


def test_hard_label_student_on_real_images_beats_chance(mnist, tmp_path):
    config = make_run_config({"posttrain": {"epochs": 60, "labels": "hard"}})
    subset = coreset_random(mnist, 10, tmp_path, seed=0)
    trained = posttrain(config.posttrain, subset.artifacts["distilled"], None, tmp_path, device=torch.device("cpu"), seed=0)
    top1 = evaluate(trained.artifacts, mnist, device=torch.device("cpu")).metrics["resnet10-slim"]["top1"]
    assert top1 > 50.0  # chance is 10%
