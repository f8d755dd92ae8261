"""Data-free pruning: which channels are prunable, exact channel surgery, global selection,
FLOP counting, pruned artifacts that load again, and `scdd prune` end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torchvision
from click.testing import CliRunner
from torch import nn
from torchvision.models.vgg import make_layers

from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.cli import cli
from scdd.errors import ArtifactError, ConfigError
from scdd.models.build import build_classifier
from scdd.models.channel_groups import find_channel_groups
from scdd.prune.measure import count_flops, count_parameters
from scdd.prune.slimming import select_channels, sparsity_penalty
from scdd.models.surgery import apply_channel_widths, channel_widths, prune_group
from scdd.registry import hookimpl

VGG_CFG = [8, "M", 16, "M", 32]


class TorchvisionStyleVGG(nn.Module):
    """torchvision's VGG layout at toy size: ``make_layers`` features, adaptive average pool to 2x2,
    flatten, MLP classifier (so each last-layer channel owns 4 classifier inputs)."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.features = make_layers(VGG_CFG, batch_norm=True)
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(32 * 4, 24), nn.ReLU(True), nn.Dropout(), nn.Linear(24, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def tiny_vgg_bn(config, *, in_chans: int, image_size: int) -> nn.Module:
    """A VGG-BN backbone as scdd architectures are: conv/BN features, global pool, ``num_features``."""
    features = make_layers(VGG_CFG, batch_norm=True)
    features[0] = nn.Conv2d(in_chans, VGG_CFG[0], kernel_size=3, padding=1)
    backbone = nn.Sequential(features, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.num_features = VGG_CFG[-1]
    return backbone


def plain_cnn(config, *, in_chans: int, image_size: int) -> nn.Module:
    backbone = nn.Sequential(nn.Conv2d(in_chans, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    backbone.num_features = 8
    return backbone


class TestArchitectures:
    @hookimpl
    def register_architectures(self, register):
        register("tiny-vgg-bn", tiny_vgg_bn, description="test: torchvision-style VGG-BN features")
        register("plain-cnn", plain_cnn, description="test: no BatchNorm")


@pytest.fixture
def test_architectures(register_plugin):
    register_plugin(TestArchitectures(), "test-architectures")


def _randomise_bn(model: nn.Module) -> None:
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)


# ----------------------------------------------------------------------------- which channels


def test_resnet_groups_keep_residual_outputs(mnist):
    """Only channels no residual sum reads: each BasicBlock's conv1/bn1, and the stem, whose output
    reaches layer1 only through convolutions (conv1 and the projection shortcut)."""
    groups = find_channel_groups(build_classifier("resnet10-slim", mnist.info))
    assert [group.bn for group in groups] == [
        "backbone.bn1",
        "backbone.layer1.0.bn1",
        "backbone.layer2.0.bn1",
        "backbone.layer3.0.bn1",
        "backbone.layer4.0.bn1",
    ]
    assert [c.name for c in groups[0].consumers] == ["backbone.layer1.0.downsample.0", "backbone.layer1.0.conv1"]
    assert [c.name for c in groups[1].consumers] == ["backbone.layer1.0.conv2"]


def test_vgg_chain_is_prunable_to_the_classifier():
    """torchvision's real VGG-11-BN (built on the meta device: shapes only): all 8 conv/BN layers,
    the last one read by the first classifier layer through avg-pool + flatten."""
    with torch.device("meta"):
        model = torchvision.models.vgg11_bn(num_classes=10)
    groups = find_channel_groups(model)
    assert len(groups) == 8 and groups[0].conv == "features.0" and groups[-1].bn == "features.26"
    assert [(c.name, c.kind) for c in groups[-1].consumers] == [("classifier.0", "linear")]
    prune_group(model, groups[-1], torch.arange(0, 512, 2))
    assert model.classifier[0].in_features == 256 * 49 and model.features[25].out_channels == 256


# ----------------------------------------------------------------------------- surgery


@pytest.mark.parametrize("kind", ["resnet10-slim", "torchvision-vgg"])
def test_removing_silenced_channels_leaves_outputs_unchanged(kind, mnist):
    """Channels whose BN scale and shift are zero contribute nothing, so cutting them must not
    change the network's function: an exact reference for the surgery."""
    if kind == "torchvision-vgg":
        model, image = TorchvisionStyleVGG(), torch.rand(3, 3, 16, 16)
    else:
        model, image = build_classifier(kind, mnist.info), torch.rand(3, 1, 28, 28)
    _randomise_bn(model)
    model.eval()
    groups = find_channel_groups(model)
    keep = {}
    for group in groups:
        bn = model.get_submodule(group.bn)
        silenced = torch.arange(bn.num_features) % 3 == 0
        bn.weight.data[silenced] = 0
        bn.bias.data[silenced] = 0
        keep[group.bn] = torch.nonzero(~silenced).flatten()
    before, parameters = model(image), count_parameters(model)
    for group in groups:
        prune_group(model, group, keep[group.bn])
    assert torch.allclose(model(image), before, atol=1e-5)
    assert count_parameters(model) < parameters
    assert channel_widths(model, groups) == {name: len(index) for name, index in keep.items()}


def test_global_selection_ranks_all_layers_together():
    model = TorchvisionStyleVGG()
    groups = find_channel_groups(model)
    gammas = [torch.rand(8) + 1.0, torch.rand(16) + 1.0, torch.rand(32) + 1.0]
    gammas[1][:10] = torch.linspace(0.01, 0.1, 10)  # the ten smallest of all 56 scales
    gammas[1][10:] += 4.0  # the rest of layer 2 above every scale of layer 1
    gammas[2][:] = 0.001  # a layer whose scales all vanished keeps its largest (min_channels=1)
    gammas[2][7] = 0.002
    for group, gamma in zip(groups, gammas):
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


# ----------------------------------------------------------------------------- artifacts


def test_pruned_artifact_loads_again(test_architectures, mnist, tmp_path):
    model = build_classifier("tiny-vgg-bn", mnist.info)
    _randomise_bn(model)
    groups = find_channel_groups(model)
    assert [group.bn for group in groups] == ["backbone.0.1", "backbone.0.5", "backbone.0.9"]
    for group, keep in zip(groups, ([1, 3, 5], [0, 2, 4, 6, 8, 10], list(range(0, 32, 4)))):
        prune_group(model, group, torch.tensor(keep))
    assert model.backbone.num_features == 8 and model.head.in_features == 8
    widths = channel_widths(model, groups)
    record = ModelRecord("classifier", "tiny-vgg-bn", {}, mnist.info, {"channel_widths": widths})
    save_model(tmp_path / "pruned.safetensors", model, record)
    loaded, loaded_record = load_model(tmp_path / "pruned.safetensors", "classifier")
    assert loaded_record.extra["channel_widths"] == {"backbone.0.1": 3, "backbone.0.5": 6, "backbone.0.9": 8}
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    image = torch.rand(2, 1, 28, 28)
    assert torch.equal(loaded.eval()(image), model.eval()(image))


def test_widths_for_unknown_layers_are_rejected(test_architectures, mnist):
    with pytest.raises(ArtifactError, match="'backbone.0.2', which is not a prunable BN layer"):
        apply_channel_widths(build_classifier("tiny-vgg-bn", mnist.info), {"backbone.0.2": 4})
    with pytest.raises(ArtifactError, match="width 64 for 'backbone.0.1' is outside 1..8"):
        apply_channel_widths(build_classifier("tiny-vgg-bn", mnist.info), {"backbone.0.1": 64})


# ----------------------------------------------------------------------------- scdd prune


def _subset_val(data, count: int):
    """The same dataset with a smaller held-out split, for cheaper library-level checks."""
    from scdd.data.base import DatasetSplits

    return DatasetSplits(data.info, data.train, torch.utils.data.Subset(data.val, range(count)))


@pytest.fixture(scope="module")
def prune_inputs(mnist, tmp_path_factory):
    """A small real teacher (resnet10-slim with the strided ImageNet stem, which is cheap at 28 px,
    trained on 200 real images), a 2-per-class real subset and the teacher's soft labels for it."""
    import torch.nn.functional as F

    from scdd.data.base import iterate_batches
    from scdd.distilled import load_distilled
    from scdd.stages.coreset import coreset_random
    from scdd.stages.relabel import RelabelConfig, relabel

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
    command = [sys.executable, "-m", "scdd.cli", "prune", "--model", teacher, "--distilled", subset,
               "--soft-labels", soft_labels, "--ratio", "0.5", "--sparsity-epochs", "3", "--finetune-epochs", "3",
               "--set", "sparsity=0.01", "--out", out, "--device", "cpu", "--quiet"]
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
    from scdd.prune.config import PruneConfig
    from scdd.prune.stage import prune

    teacher, subset, soft_labels = prune_inputs
    totals = {}
    for strength in (0.0, 2.0):
        config = PruneConfig(ratio=0.0, sparsity_epochs=4, finetune_epochs=0, sparsity=strength)
        result = prune(
            config, teacher, subset, soft_labels, _subset_val(mnist, 100), tmp_path / str(strength),
            device=torch.device("cpu"), seed=0,
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
    from scdd.prune.config import PruneConfig
    from scdd.prune.stage import prune
    from scdd.stages.coreset import coreset_random

    teacher, subset, soft_labels = prune_inputs
    other = coreset_random(mnist, 1, tmp_path / "other", seed=0).artifacts["distilled"]
    cpu = torch.device("cpu")
    with pytest.raises(ArtifactError, match="soft labels are for 20 images, the distilled set has 10"):
        prune(PruneConfig(), teacher, other, soft_labels, mnist, tmp_path / "a", device=cpu, seed=0)
    plain = save_model(
        tmp_path / "plain.safetensors",
        build_classifier("plain-cnn", mnist.info),
        ModelRecord("classifier", "plain-cnn", {}, mnist.info, {}),
    )
    with pytest.raises(ConfigError, match="architecture 'plain-cnn' has no prunable conv → BN channels"):
        prune(PruneConfig(), plain, subset, soft_labels, mnist, tmp_path / "b", device=cpu, seed=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
