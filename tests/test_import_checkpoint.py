"""scdd import-checkpoint: each official layout (random weights, real key names and shapes) converts
into a backbone (and classifier) whose tensors equal the source's exactly; bad files fail in one line."""

from __future__ import annotations

import argparse

import pytest
import torch
import torchvision
from click.testing import CliRunner
from safetensors.torch import load_file

from scdd.cli import cli
from scdd.models.saved import load_model

TORCHVISION_BACKBONE_KEYS = 318  # 53 conv + 53 BN (weight, bias, running_mean, running_var, num_batches_tracked)


def _big(*shape: int) -> torch.Tensor:
    """A tensor of the real shape stored in a few bytes (dropped tensors only need their names and shapes)."""
    return torch.zeros(1).expand(*shape)


@pytest.fixture(scope="module")
def source():
    """A torchvision ResNet-50 state dict with random weights and non-trivial BN statistics."""
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var", "bias")) or key.startswith("fc."):
            state[key] = torch.rand_like(value) + 0.5
        elif key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(12345)
    return state


def _backbone(state):
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _prefixed(prefix, state):
    return {prefix + k: v for k, v in state.items()}


def _layouts(state):
    """Each format's official file layout, built around ``state``."""
    backbone = _backbone(state)
    moco_v2 = {
        **_prefixed("module.encoder_q.", backbone),
        "module.encoder_q.fc.0.weight": _big(2048, 2048),
        "module.encoder_q.fc.0.bias": _big(2048),
        "module.encoder_q.fc.2.weight": _big(128, 2048),
        "module.encoder_q.fc.2.bias": _big(128),
    }
    moco_v2.update({k.replace("encoder_q", "encoder_k", 1): v for k, v in list(moco_v2.items())})
    moco_v2.update({"module.queue": _big(128, 65536), "module.queue_ptr": torch.zeros(1, dtype=torch.long)})
    bn1d = lambda name, n, affine=True: {  # noqa: E731
        **({f"{name}.weight": _big(n), f"{name}.bias": _big(n)} if affine else {}),
        f"{name}.running_mean": _big(n),
        f"{name}.running_var": _big(n),
        f"{name}.num_batches_tracked": torch.tensor(0),
    }
    projector = {"fc.0.weight": _big(4096, 2048), **bn1d("fc.1", 4096), "fc.3.weight": _big(256, 4096), **bn1d("fc.4", 256, affine=False)}
    predictor = {"0.weight": _big(4096, 256), **bn1d("1", 4096), "3.weight": _big(256, 4096)}
    encoder = {**backbone, **projector}
    moco_v3 = {
        **_prefixed("module.base_encoder.", encoder),
        **_prefixed("module.momentum_encoder.", encoder),
        **_prefixed("module.predictor.", predictor),
    }
    swav = {
        **_prefixed("module.", backbone),
        "module.projection_head.0.weight": _big(2048, 2048),
        "module.projection_head.0.bias": _big(2048),
        **_prefixed("module.", bn1d("projection_head.1", 2048)),
        "module.projection_head.3.weight": _big(128, 2048),
        "module.projection_head.3.bias": _big(128),
        "module.prototypes.weight": _big(3000, 128),
    }
    dino_head = {
        "head.mlp.0.weight": _big(4096, 2048),
        "head.mlp.0.bias": _big(4096),
        **bn1d("head.mlp.1", 4096),
        "head.mlp.3.weight": _big(256, 4096),
        "head.mlp.3.bias": _big(256),
        "head.last_layer.weight_g": _big(60000, 1),
        "head.last_layer.weight_v": _big(60000, 256),
    }
    teacher = {**_prefixed("backbone.", backbone), **dino_head}
    linear = {"module.linear.weight": state["fc.weight"], "module.linear.bias": state["fc.bias"]}
    return {
        "moco_v2": {"epoch": 200, "arch": "resnet50", "state_dict": moco_v2},
        "moco_v3": {"epoch": 300, "arch": "resnet50", "state_dict": moco_v3},
        "moco_v3_linear": {"epoch": 90, "arch": "resnet50", "best_acc1": torch.tensor(72.8), "state_dict": _prefixed("module.", state)},
        "swav": swav,
        "swav_linear": {"epoch": 100, "state_dict": linear},
        "dino": backbone,
        "dino_full": {
            "teacher": teacher,
            "student": _prefixed("module.", teacher),
            "epoch": 100,
            "args": argparse.Namespace(arch="resnet50", out_dim=60000),
        },
        "torchvision": state,
    }


@pytest.fixture(scope="module")
def files(source, tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for name, obj in _layouts(source).items():
        paths[name] = folder / f"{name}.pth"
        torch.save(obj, paths[name])
    return paths


def _import(*args):
    return CliRunner().invoke(cli, ["import-checkpoint", *map(str, args)])


def _assert_exact(folder, source, classifier: bool):
    backbone = load_file(str(folder / "backbone.safetensors"))
    assert len(backbone) == TORCHVISION_BACKBONE_KEYS
    for key, tensor in backbone.items():
        assert torch.equal(tensor, source[key]), key
    assert (folder / "classifier.safetensors").exists() == classifier
    if classifier:
        model = load_file(str(folder / "classifier.safetensors"))
        assert torch.equal(model["head.weight"], source["fc.weight"]) and torch.equal(model["head.bias"], source["fc.bias"])
        assert all(torch.equal(model[f"backbone.{key}"], source[key]) for key in backbone)


@pytest.mark.parametrize(
    "fmt, layout, dropped, classifier",
    [
        ("moco_v2", "moco_v2", ["module.encoder_k.", "module.queue", "module.encoder_q.fc."], False),
        ("moco_v3", "moco_v3", ["module.momentum_encoder.", "module.predictor.", "module.base_encoder.fc."], False),
        ("moco_v3", "moco_v3_linear", [], True),
        ("swav", "swav", ["module.projection_head.", "module.prototypes."], False),
        ("dino", "dino", [], False),
        ("torchvision", "torchvision", [], True),
    ],
)
@pytest.mark.numerics
def test_official_layout_converts_exactly(fmt, layout, dropped, classifier, files, source, tmp_path):
    result = _import(files[layout], "--format", fmt, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    for prefix in dropped:
        assert prefix in result.output  # the report names what was dropped
    assert "kept" in result.output
    _assert_exact(tmp_path / "out", source, classifier)
    if layout == "torchvision":
        _assert_same_logits(tmp_path / "out", source)


def _assert_same_logits(folder, source, architecture="resnet50"):
    """The converted classifier is the source network: torchvision's logits on normalised pixels."""
    classifier, record = load_model(folder / "classifier.safetensors", "classifier")
    assert record.dataset.num_classes == 1000 and record.dataset.image_size == 224 and record.architecture == architecture
    reference = getattr(torchvision.models, architecture)()
    reference.load_state_dict(source)
    pixels = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(classifier.eval()(pixels), reference.eval()((pixels - mean) / std), rtol=1e-4, atol=1e-4)


def test_swav_backbone_with_linear_probe_file(files, source, tmp_path):
    result = _import(files["swav"], "--format", "swav", "--linear", files["swav_linear"], "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    _assert_exact(tmp_path / "out", source, classifier=True)


def test_dino_full_checkpoint_needs_explicit_trust(files, source, tmp_path):
    refused = _import(files["dino_full"], "--format", "dino", "--out", tmp_path / "refused")
    assert refused.exit_code != 0
    assert "argparse.Namespace" in refused.output and "--trust-pickle" in refused.output
    assert "Traceback" not in refused.output and not (tmp_path / "refused").exists()
    trusted = _import(files["dino_full"], "--format", "dino", "--trust-pickle", "--out", tmp_path / "out")
    assert trusted.exit_code == 0, trusted.output
    assert "head." in trusted.output
    _assert_exact(tmp_path / "out", source, classifier=False)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file_gives_one_line_error(damage, files, tmp_path):
    bad = tmp_path / "bad.pth"
    whole = files["torchvision"].read_bytes()
    bad.write_bytes({"truncated": whole[: len(whole) // 2], "garbage": b"\x80\x02not a checkpoint", "empty": b""}[damage])
    result = _import(bad, "--format", "torchvision", "--out", tmp_path / "out")
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "corrupt or truncated" in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_wrong_format_and_linear_only_files_are_named(files, tmp_path):
    wrong = _import(files["moco_v3"], "--format", "moco_v2", "--out", tmp_path / "a")
    assert wrong.exit_code != 0 and "right --format" in wrong.output
    alone = _import(files["swav_linear"], "--format", "swav", "--out", tmp_path / "b")
    assert alone.exit_code != 0 and "--linear" in alone.output
    mnist = _import(files["torchvision"], "--format", "torchvision", "--dataset", "mnist5k", "--out", tmp_path / "c")
    assert mnist.exit_code != 0 and "3-channel images" in mnist.output


def test_the_resnet_depth_is_read_from_the_file(tmp_path):
    """torchvision's ResNet-18 imports as resnet18 with its logits; a depth scdd does not build is named."""
    torch.manual_seed(0)
    state = torchvision.models.resnet18().state_dict()
    for key, value in state.items():
        if key.endswith(("running_mean", "running_var")):
            state[key] = torch.rand_like(value) + 0.5
    torch.save(state, tmp_path / "resnet18.pth")
    result = _import(tmp_path / "resnet18.pth", "--format", "torchvision", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    backbone = load_file(str(tmp_path / "out" / "backbone.safetensors"))
    assert backbone and all(torch.equal(tensor, state[key]) for key, tensor in backbone.items())
    _assert_same_logits(tmp_path / "out", state, "resnet18")

    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "resnet34.pth")
    refused = _import(tmp_path / "resnet34.pth", "--format", "torchvision", "--out", tmp_path / "refused")
    assert refused.exit_code != 0 and not (tmp_path / "refused").exists()
    assert "basic blocks [3, 4, 6, 3] per stage" in refused.output and "Traceback" not in refused.output
