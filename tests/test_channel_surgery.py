"""Channel groups and surgery (``scdd.models.channel_groups``, ``scdd.models.surgery``): which channels
are prunable, exact channel surgery, and pruned artifacts that load again. The pruning stage's
tests are in test_prune.py; the toy architectures in toy_models.py."""

from __future__ import annotations

import pytest
import torch
import torchvision
from toy_models import TorchvisionStyleVGG, randomise_bn

from scdd.errors import ArtifactError
from scdd.models.build import build_classifier
from scdd.models.channel_groups import find_channel_groups
from scdd.models.saved import ModelRecord, load_model, save_model
from scdd.models.surgery import apply_channel_widths, channel_widths, prune_group
from scdd.prune.measure import count_parameters

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
@pytest.mark.numerics
def test_removing_silenced_channels_leaves_outputs_unchanged(kind, mnist):
    """Channels whose BN scale and shift are zero contribute nothing, so cutting them must not
    change the network's function: an exact reference for the surgery."""
    if kind == "torchvision-vgg":
        model, image = TorchvisionStyleVGG(), torch.rand(3, 3, 16, 16)
    else:
        model, image = build_classifier(kind, mnist.info), torch.rand(3, 1, 28, 28)
    randomise_bn(model)
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


# ----------------------------------------------------------------------------- artifacts


def test_pruned_artifact_loads_again(test_architectures, mnist, tmp_path):
    model = build_classifier("tiny-vgg-bn", mnist.info)
    randomise_bn(model)
    groups = find_channel_groups(model)
    assert [group.bn for group in groups] == ["backbone.0.1", "backbone.0.5", "backbone.0.9"]
    for group, keep in zip(groups, ([1, 3, 5], [0, 2, 4, 6, 8, 10], list(range(0, 32, 4))), strict=False):
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
