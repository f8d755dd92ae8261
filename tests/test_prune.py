"""Data-free pruning: which channels are prunable, exact channel surgery, global selection,
FLOP counting, pruned artifacts that load again, and `scdd prune` end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from toy_models import TorchvisionStyleVGG

from scdd.cli import cli
from scdd.data.base import DatasetSplits, iterate_batches
from scdd.distilled import load_distilled
from scdd.errors import ArtifactError, ConfigError
from scdd.models.build import build_classifier
from scdd.models.channel_groups import find_channel_groups
from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.prune.config import PruneConfig
from scdd.prune.measure import count_flops
from scdd.prune.slimming import select_channels, sparsity_penalty
from scdd.prune.stage import prune
from scdd.stages.coreset import coreset_random
from scdd.stages.relabel import RelabelConfig, relabel

# ----------------------------------------------------------------------------- selection and size


def test_global_selection_ranks_all_layers_together():
    model = TorchvisionStyleVGG()
    groups = find_channel_groups(model)
    gammas = [torch.rand(8) + 1.0, torch.rand(16) + 1.0, torch.rand(32) + 1.0]
    gammas[1][:10] = torch.linspace(0.01, 0.1, 10)  # the ten smallest of all 56 scales
    gammas[1][10:] += 4.0  # the rest of layer 2 above every scale of layer 1
    gammas[2][:] = 0.001  # a layer whose scales all vanished keeps its largest (min_channels=1)
    gammas[2][7] = 0.002
    for group, gamma in zip(groups, gammas, strict=False):
        model.get_submodule(group.bn).weight.data.copy_(gamma)
    keep = select_channels(model, groups, ratio=0.75, min_channels=1)  # remove round(0.75 * 56) = 42
    assert keep["features.9"].tolist() == [7]  # 31 of layer 3, its largest kept
    assert keep["features.5"].tolist() == list(range(10, 16))  # its 10 smallest go; 31 + 10 = 41
    assert len(keep["features.1"]) == 7  # the smallest of layer 1 is the 42nd
    assert torch.isclose(sparsity_penalty(model, groups), sum(g.abs().sum() for g in gammas))
    with pytest.raises(ConfigError, match="ratio must be in"):
        select_channels(model, groups, ratio=1.0)


def test_flops_match_a_hand_count():
    """Two FLOPs per multiply-add: Σ 2·Cout·Cin·k²·H·W over convolutions, 2·in·out over linears."""
    model = TorchvisionStyleVGG(num_classes=5)
    info = type("Info", (), {"channels": 3, "image_size": 16})()
    convolutions = 2 * (8 * 3 * 9 * 16 * 16 + 16 * 8 * 9 * 8 * 8 + 32 * 16 * 9 * 4 * 4)
    linears = 2 * (128 * 24 + 24 * 5)
    assert count_flops(model, info) == convolutions + linears


# ----------------------------------------------------------------------------- scdd prune


def _subset_val(data, count: int):
    """The same dataset with a smaller held-out split, for cheaper library-level checks."""
    return DatasetSplits(data.info, data.train, torch.utils.data.Subset(data.val, range(count)))


@pytest.fixture(scope="module")
def prune_inputs(mnist, tmp_path_factory):
    """A small real teacher (resnet10-slim with the strided ImageNet stem, which is cheap at 28 px,
    trained on 200 real images), a 2-per-class real subset and the teacher's soft labels for it."""
    root, cpu = tmp_path_factory.mktemp("prune-inputs"), torch.device("cpu")
    options = {"small_input_stem": "no"}
    torch.manual_seed(0)
    teacher = build_classifier("resnet10-slim", mnist.info, options)
    train = load_distilled(coreset_random(mnist, 20, root / "train", seed=1).artifacts["distilled"]).as_dataset()
    optimizer = torch.optim.AdamW(teacher.parameters(), lr=0.005)
    teacher.train()
    for epoch in range(5):
        for images, targets in iterate_batches(train, 50, shuffle=True, generator=torch.Generator().manual_seed(epoch)):
            loss = F.cross_entropy(teacher(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    record = ModelRecord("classifier", "resnet10-slim", options, mnist.info, {})
    teacher_path = save_model(root / "teacher.safetensors", teacher.eval(), record)
    subset = coreset_random(mnist, 2, root / "subset", seed=2).artifacts["distilled"]
    labels = relabel(RelabelConfig(epochs=4), teacher_path, subset, root / "labels", device=cpu, seed=0)
    return teacher_path, subset, labels.artifacts["soft_labels"]


def test_prune_command_end_to_end(prune_inputs, tmp_path):
    teacher, subset, soft_labels = prune_inputs
    out = tmp_path / "pruned"
    command = [
        sys.executable,
        "-m",
        "scdd.cli",
        "prune",
        "--model",
        teacher,
        "--distilled",
        subset,
        "--soft-labels",
        soft_labels,
        "--ratio",
        "0.5",
        "--sparsity-epochs",
        "3",
        "--finetune-epochs",
        "3",
        "--set",
        "sparsity=0.01",
        "--out",
        out,
        "--device",
        "cpu",
        "--quiet",
    ]
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines()[:-1]:
        name, *fields = line.split("\t")
        rows[name] = {key: float(value) for key, value in (field.split("=") for field in fields)}
    assert list(rows) == ["original", "sparsity-trained", "pruned", "pruned + fine-tuned"]
    assert rows["original"]["channels"] == 64 + 16 + 32 + 64 + 128  # stem and the four blocks' conv1
    assert rows["pruned"]["channels"] == rows["pruned + fine-tuned"]["channels"] == 152  # half of them
    assert rows["pruned"]["params"] < rows["original"]["params"]
    assert rows["pruned"]["flops"] < rows["original"]["flops"]
    assert rows["original"]["top1"] > 50.0  # the teacher is a real classifier (chance: 10%)

    report = json.loads((out / "prune.json").read_text())
    assert sum(report["channel_widths"].values()) == 152
    assert report["source"] == "coreset-random" and report["ipc"] == 2
    evaluated = CliRunner().invoke(cli, ["evaluate", str(out / "pruned-resnet10-slim.safetensors"), "--quiet"])
    assert evaluated.exit_code == 0, evaluated.output
    assert f"top1={rows['pruned + fine-tuned']['top1']:.2f}" in evaluated.output  # the saved model is the one measured


def test_sparsity_penalty_shrinks_scale_factors(prune_inputs, mnist, tmp_path):
    """The same sparsity training with and without the L1 term (ratio 0: nothing removed)."""
    teacher, subset, soft_labels = prune_inputs
    totals = {}
    for strength in (0.0, 2.0):
        config = PruneConfig(ratio=0.0, sparsity_epochs=4, finetune_epochs=0, sparsity=strength)
        result = prune(
            config,
            teacher,
            subset,
            soft_labels,
            _subset_val(mnist, 100),
            tmp_path / str(strength),
            device=torch.device("cpu"),
            seed=0,
        )
        assert len(result.metrics["sparsity_loss"]) == 4 and result.metrics["finetune_loss"] == []
        assert list(result.metrics["rows"]) == ["original", "sparsity-trained", "pruned"]
        assert result.metrics["channel_widths"] == result.metrics["original_widths"]
        model, _ = load_model(result.artifacts["pruned"], "classifier")
        totals[strength] = sparsity_penalty(model, find_channel_groups(model)).item()
    # Reference: the L1 term's gradient is λ·sign(γ) on each of the 304 scales; with SGD (momentum
    # 0.9) over 4 steps (20 images, batch 64) at lr 0.01 under the per-step cosine schedule, each |γ|
    # moves by λ · Σ_t lr_t · (1 + 0.9 + ... + 0.9^t).
    rates = [0.01 * 0.5 * (1 + math.cos(math.pi * step / 4)) for step in range(4)]
    per_unit = sum(rate * sum(0.9**k for k in range(step + 1)) for step, rate in enumerate(rates))
    expected = 2.0 * per_unit * 304
    assert totals[0.0] - totals[2.0] == pytest.approx(expected, rel=0.1)


def test_prune_rejects_mismatched_inputs(prune_inputs, mnist, test_architectures, tmp_path):
    teacher, subset, soft_labels = prune_inputs
    other = coreset_random(mnist, 1, tmp_path / "other", seed=0).artifacts["distilled"]
    cpu = torch.device("cpu")
    # labels record the SHA-256 of the set they were made for: another set is refused before its size is compared
    with pytest.raises(ArtifactError, match="made for another distilled set than .*other/distilled.safetensors"):
        prune(PruneConfig(), teacher, other, soft_labels, mnist, tmp_path / "a", device=cpu, seed=0)
    plain = save_model(
        tmp_path / "plain.safetensors",
        build_classifier("plain-cnn", mnist.info),
        ModelRecord("classifier", "plain-cnn", {}, mnist.info, {}),
    )
    with pytest.raises(ConfigError, match="architecture 'plain-cnn' has no prunable conv → BN channels"):
        prune(PruneConfig(), plain, subset, soft_labels, mnist, tmp_path / "b", device=cpu, seed=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
