"""End to end on a folder of PNGs: `scdd run --dataset imagefolder` (recovery, top-K labels, two students)
and the coreset path (herding, online labels, repeated runs); herding against a reference; `scdd archs`."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from scdd.cli import cli
from scdd.distilled import load_distilled
from scdd.models.saved import load_model
from scdd.stages.coreset import herding_order

TINY_RUN = [
    "--preset",
    "mnist5k",
    "--ipc",
    "2",
    "--device",
    "cpu",
    "--quiet",
    "--set",
    "squeeze.pretrainer_options.epochs=1",
    "--set",
    "squeeze.pretrainer_options.batch_size=16",
    "--set",
    "align.aligner_options.epochs=3",
    "--set",
    "recover.iterations=5",
    "--set",
    "posttrain.epochs=2",
    "--set",
    "posttrain.batch_size=4",
]


@pytest.fixture(scope="module")
def png_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 3)):
        for c, name in enumerate(("circle", "square", "stripe")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 60, size=(16, 16), dtype=np.uint8) + np.uint8(60 * c)
                Image.fromarray(pixels, mode="L").save(root / split / name / f"{i}.png")
    return root


def _run(png_folder, out, *extra):
    result = CliRunner().invoke(
        cli, ["run", "--dataset", "imagefolder", "--data-root", str(png_folder), "--out", str(out), *TINY_RUN, *extra]
    )
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "manifest.json").read_text())


def test_run_on_imagefolder_with_topk_labels_and_two_students(png_folder, tmp_path):
    output, manifest = _run(png_folder, tmp_path / "run", "--label-topk", "2", "--students", "resnet10-slim,squeezenet1.0")
    assert list(manifest["stages"]) == ["squeeze", "align", "recover", "relabel", "posttrain", "evaluate"]
    relabel = manifest["stages"]["relabel"]["metrics"]
    assert relabel["encoding"] == "top2-fp16" and relabel["label_bytes_per_image_per_epoch"] == 2 * 3
    students = manifest["metrics"]["students"]
    assert set(students) == {"resnet10-slim", "squeezenet1.0"}
    assert students["squeezenet1.0"]["params"] > students["resnet10-slim"]["params"] > 0
    lines = [line for line in output.splitlines() if "top1=" in line]
    assert len(lines) == 3 and lines[2].startswith("squeezenet1.0") and "params=" in lines[2]
    assert "soft labels: top2-fp16, 6 B per image per epoch" in output


def test_coreset_herding_run_with_online_labels_and_repeated_students(png_folder, tmp_path):
    _, manifest = _run(png_folder, tmp_path / "run", "--method", "coreset-herding", "--label-mode", "online", "--runs", "2")
    assert list(manifest["stages"]) == ["squeeze", "align", "coreset", "relabel", "posttrain", "evaluate"]
    assert manifest["stages"]["relabel"]["metrics"]["mode"] == "online"
    assert sorted((tmp_path / "run" / "posttrain").glob("student-*")) == [
        tmp_path / "run" / "posttrain" / f"student-resnet10-slim-run{r}.safetensors" for r in (0, 1)
    ]
    student = manifest["metrics"]["students"]["resnet10-slim"]
    assert len(student["top1_runs"]) == 2 and student["top1_std"] >= 0
    assert student["top1"] == pytest.approx(sum(student["top1_runs"]) / 2)
    subset = load_distilled(tmp_path / "run" / "coreset" / "distilled.safetensors")
    assert subset.source == "coreset-herding" and subset.labels.bincount().tolist() == [2, 2, 2]
    real = {tuple(np.asarray(Image.open(p)).flatten().tolist()) for p in png_folder.glob("train/*/*.png")}
    assert all(tuple((image[0] * 255).round().to(torch.uint8).flatten().tolist()) in real for image in subset.images)


def test_herding_matches_a_brute_force_reference():
    features = torch.randn(12, 5, generator=torch.Generator().manual_seed(0))
    mean, chosen = features.mean(0), []
    for _ in range(4):
        best = min(
            (i for i in range(12) if i not in chosen),
            key=lambda i: float(((mean - features[chosen + [i]].mean(0)) ** 2).sum()),
        )
        chosen.append(best)
    assert herding_order(features, 4) == chosen
    herded = ((features[chosen].mean(0) - mean) ** 2).sum()
    random_subsets = [((features[torch.randperm(12)[:4]].mean(0) - mean) ** 2).sum() for _ in range(50)]
    assert herded < 0.25 * sorted(random_subsets)[25]  # far closer to the mean than a typical random subset


def test_coreset_command_needs_classifier_for_herding(png_folder, tmp_path):
    args = ["coreset", "--dataset", "imagefolder", "--data-root", str(png_folder), "--out", str(tmp_path / "c"), "--ipc", "2"]
    result = CliRunner().invoke(cli, [*args, "--method", "herding", "--quiet"])
    assert result.exit_code != 0 and "needs --classifier" in result.output
    result = CliRunner().invoke(cli, [*args, "--method", "random", "--quiet"])
    assert result.exit_code == 0, result.output
    assert load_distilled(tmp_path / "c" / "distilled.safetensors").labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_archs_lists_every_architecture_with_parameters():
    result = CliRunner().invoke(cli, ["archs", "--channels", "1", "--image-size", "28", "--classes", "10"])
    assert result.exit_code == 0, result.output
    for name in ("resnet18", "regnet-x-8gf", "mobilenet-v3-large", "shufflenet-v2-x0.5", "squeezenet1.0", "vit-tiny", "vgg11-bn"):
        assert name in result.output
    assert "11.17M" in result.output  # ResNet-18, 1-channel CIFAR stem, 10 classes


def test_student_options_shape_the_student_and_its_record(png_folder, tmp_path):
    """posttrain.student_options: architecture options by student name (a width-8 ConvNet-BN here), kept in the
    student's artifact so evaluate and relabel rebuild the same network."""
    _, manifest = _run(
        png_folder,
        tmp_path / "run",
        "--students",
        "convnet,resnet10-slim",
        "--set",
        "posttrain.student_options.convnet.width=8",
        "--set",
        "posttrain.student_options.convnet.depth=2",
    )
    model, record = load_model(tmp_path / "run" / "posttrain" / "student-convnet.safetensors", "classifier")
    assert record.architecture_options == {"width": 8, "depth": 2}
    assert model.backbone.num_features == 8 * 4 * 4  # 16 px halved twice, 8 channels
    assert set(manifest["metrics"]["students"]) == {"convnet", "resnet10-slim"}
