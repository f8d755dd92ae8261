"""Aligners (linear probe, fine-tune) and `scdd recover` over every aligner x matcher pair."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from scdd.artifacts import load_tensors, save_tensors
from scdd.cli import cli
from scdd.config import make_run_config
from scdd.data.base import iterate_batches
from scdd.errors import ConfigError
from scdd.models.build import build_backbone
from scdd.models.classifier import batchnorm_layers, batchnorm_state
from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.registry import get_component, get_registry
from scdd.stages.align import AlignConfig, align
from scdd.stages.squeeze import SqueezeConfig, squeeze

CPU = torch.device("cpu")
TINY_ALIGN = {"epochs": 4, "batch_size": 32, "lr": 0.05}


@pytest.fixture(scope="module")
def backbone_file(mnist, tmp_path_factory):
    """A backbone artifact: random ResNet-10 with BN statistics of real digits (no squeeze needed)."""
    torch.manual_seed(0)
    backbone = build_backbone("resnet10-slim", mnist.info)
    with torch.no_grad():
        backbone.train()(mnist.train.batch(torch.arange(0, len(mnist.train), 10))[0])
    folder = tmp_path_factory.mktemp("backbone")
    head = torch.nn.Linear(backbone.num_features, mnist.info.num_classes)  # as a supervised squeeze leaves one
    save_tensors(folder / "head.safetensors", head.state_dict(), {"kind": "head"})
    record = ModelRecord(
        kind="backbone",
        architecture="resnet10-slim",
        architecture_options={},
        dataset=mnist.info,
        extra={"pretrainer": "none", "head_file": "head.safetensors"},
    )
    return save_model(folder / "backbone.safetensors", backbone.eval(), record)


@pytest.fixture(scope="module")
def classifier_files(mnist_subset, backbone_file, tmp_path_factory):
    """One aligned classifier per registered aligner, tiny budgets."""
    data = mnist_subset(384, 100, seed=1)
    files = {}
    for name in get_registry().names("aligner"):
        out = tmp_path_factory.mktemp(name)
        options = TINY_ALIGN if get_component("aligner", name).defaults() else {}
        result = align(AlignConfig(aligner=name, aligner_options=options), backbone_file, data, out, device=CPU, seed=0)
        files[name] = (result.artifacts["classifier"], result.metrics["teacher_heldout_top1"])
    return files


def test_finetune_trains_the_backbone_and_moves_bn_statistics(backbone_file, classifier_files):
    backbone, _ = load_model(backbone_file, "backbone")
    tuned, record = load_model(classifier_files["finetune"][0], "classifier")
    probed, _ = load_model(classifier_files["linear-probe"][0], "classifier")
    assert record.extra["aligner"] == "finetune"
    before, after = batchnorm_state(backbone), batchnorm_state(tuned.backbone)
    assert any(not torch.equal(before[key], after[key]) for key in before if key.endswith("running_mean"))
    assert not torch.equal(backbone.conv1.weight, tuned.backbone.conv1.weight)
    probed_state = batchnorm_state(probed.backbone)
    assert all(torch.equal(before[key], probed_state[key]) for key in before)
    assert classifier_files["finetune"][1] > 30.0  # chance is 10%


def test_linear_probe_can_reestimate_the_frozen_bn_statistics_on_the_labelled_images(mnist_subset, backbone_file, tmp_path):
    data = mnist_subset(384, 100, seed=1)
    options = {**TINY_ALIGN, "bn_statistics": "labelled"}
    result = align(AlignConfig(aligner="linear-probe", aligner_options=options), backbone_file, data, tmp_path, device=CPU, seed=0)
    probed, _ = load_model(result.artifacts["classifier"], "classifier")
    backbone, _ = load_model(backbone_file, "backbone")
    assert all(torch.equal(a, b) for a, b in zip(backbone.parameters(), probed.backbone.parameters(), strict=True))
    # the first BN's statistics are now those of its input over the whole training split (one pass)
    (_, first), (_, squeezed) = batchnorm_layers(probed.backbone)[0], batchnorm_layers(backbone)[0]
    seen = []
    first.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        probed.eval().features(next(iterate_batches(data.train, len(data.train)))[0])
    torch.testing.assert_close(first.running_mean, seen[0].mean((0, 2, 3)), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(first.running_var, seen[0].var((0, 2, 3)), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(squeezed.running_mean, first.running_mean, atol=1e-3)
    with pytest.raises(ConfigError, match="bn_statistics must be one of squeeze, labelled"):
        get_component("aligner", "linear-probe").build({"bn_statistics": "batch"})


def test_finetune_defaults_are_table_16():
    defaults = get_component("aligner", "finetune").defaults()
    assert {k: defaults[k] for k in ("optimizer", "lr", "weight_decay", "momentum", "batch_size", "epochs")} == {
        "optimizer": "sgd",
        "lr": 0.03,
        "weight_decay": 1e-4,
        "momentum": 0.9,
        "batch_size": 256,
        "epochs": 200,
    }


@pytest.mark.parametrize("matcher", ["bn", "imbalanced-bn"])
@pytest.mark.parametrize("aligner", ["linear-probe", "finetune"])
def test_recover_cli_accepts_every_aligner_and_matcher(aligner, matcher, classifier_files, tmp_path):
    assert {"bn", "imbalanced-bn"} <= set(get_registry().names("matcher"))
    assert {"linear-probe", "finetune"} <= set(get_registry().names("aligner"))
    classifier = classifier_files[aligner][0]
    args = [
        "recover",
        str(classifier),
        "--matcher",
        matcher,
        "--ipc",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--set",
        "recover.iterations=3",
        "--device",
        "cpu",
        "--quiet",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    tensors, metadata = load_tensors(tmp_path / "r" / "distilled.safetensors", "distilled")
    assert tensors["images"].shape == (10, 1, 28, 28)
    assert (metadata["matcher"], metadata["aligner"]) == (matcher, aligner)
    expected_first = 1.0 if matcher == "bn" else 10.0
    assert metadata["matcher_options"]["first_bn_multiplier"] == expected_first
    trajectory, _ = load_tensors(tmp_path / "r" / "trajectory.safetensors", "trajectory")
    assert trajectory["loss_bn"].shape == trajectory["loss_ce"].shape == (1, 3)


def test_sre2l_recipe_is_supervised_squeeze_with_uniform_bn_matching():
    """`scdd run --matcher bn --pretrainer supervised`: SRe²L's recipe (labels in the squeeze, every
    BN layer weighed 1, backbone and its statistics frozen after the squeeze)."""
    config = make_run_config({"squeeze": {"pretrainer": "supervised"}, "recover": {"matcher": "bn"}})
    assert get_component("pretrainer", config.squeeze.pretrainer).name == "supervised"
    assert get_component("aligner", config.align.aligner).name == "linear-probe"
    matcher = get_component("matcher", config.recover.matcher).build(config.recover.matcher_options)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Conv2d(2, 2, 3), torch.nn.BatchNorm2d(2))
    matcher.attach(model.eval())
    try:
        assert torch.equal(matcher.weights(), torch.ones(2, 2))
    finally:
        matcher.detach()


def test_pretrained_head_is_the_squeezes_own_head_untouched(backbone_file, classifier_files, mnist_subset, tmp_path):
    """SRe²L's teacher: the supervised model as trained; nothing in it moves."""
    classifier, _ = load_model(classifier_files["pretrained-head"][0], "classifier")
    backbone, _ = load_model(backbone_file, "backbone")
    head = load_tensors(backbone_file.parent / "head.safetensors", "head")[0]
    assert torch.equal(classifier.head.weight, head["weight"]) and torch.equal(classifier.head.bias, head["bias"])
    assert all(torch.equal(value, backbone.state_dict()[key]) for key, value in classifier.backbone.state_dict().items())
    # a backbone squeezed without a head (every self-supervised pretrainer) is refused in one line
    bare, record = load_model(backbone_file, "backbone")
    record.extra.pop("head_file")
    path = save_model(tmp_path / "bare" / "backbone.safetensors", bare, record)
    with pytest.raises(ConfigError, match="needs a backbone squeezed with a classification head"):
        align(AlignConfig(aligner="pretrained-head"), path, mnist_subset(64, 20, seed=1), tmp_path / "out", device=CPU, seed=0)
    assert not (tmp_path / "out" / "classifier.safetensors").exists()


def test_supervised_squeeze_saves_its_head_for_the_pretrained_head_aligner(mnist_subset, tmp_path):
    data = mnist_subset(256, 100, seed=2)
    options = {"epochs": 6, "batch_size": 32, "lr": 0.1, "crop_min_scale": 0.8}
    config = SqueezeConfig(pretrainer="supervised", pretrainer_options=options, architecture="convnet", architecture_options={"width": 16})
    squeezed = squeeze(config, data, tmp_path / "squeeze", device=CPU, seed=0)
    assert squeezed.artifacts["head"].name == "head.safetensors"
    aligned = align(AlignConfig(aligner="pretrained-head"), squeezed.artifacts["backbone"], data, tmp_path / "align", device=CPU, seed=0)
    # the teacher is the squeeze's network as trained: backbone + its own head, no probe fitted
    backbone, _ = load_model(squeezed.artifacts["backbone"], "backbone")
    head = load_tensors(squeezed.artifacts["head"], "head")[0]
    with torch.no_grad():
        logits = torch.nn.functional.linear(
            backbone.eval()(torch.cat([data.val.batch(torch.arange(100))[0]]).sub(0.1307).div(0.3081)), head["weight"], head["bias"]
        )
    own = 100.0 * (logits.argmax(1) == data.val.labels).float().mean().item()
    assert aligned.metrics["teacher_heldout_top1"] == pytest.approx(own)
    assert own > 50.0
