"""`scdd inspect bn-stats`: BN statistics of checkpoints against a direct computation from the files."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.numpy import load_file

from scdd.analysis.bn_stats import gaussian_entropy, inspect_checkpoint
from scdd.cli import cli
from scdd.config import make_run_config
from scdd.data.base import DatasetSplits, ImageTensorDataset
from scdd.stages.squeeze import squeeze


@pytest.fixture(scope="module")
def checkpoints(tiny_run, mnist, tmp_path_factory):
    """A MoCo v3 backbone (the shared tiny run's squeeze) and a supervised one: 1 epoch on 1,024 images."""
    out, _ = tiny_run
    subset = DatasetSplits(mnist.info, ImageTensorDataset(mnist.train.images[:1024], mnist.train.labels[:1024]), mnist.val)
    config = make_run_config({"squeeze": {"pretrainer": "supervised", "pretrainer_options": {"epochs": 1, "batch_size": 128}}})
    supervised = squeeze(config.squeeze, subset, tmp_path_factory.mktemp("sup"), device=torch.device("cpu"), seed=0)
    return {"moco-v3": out / "squeeze" / "backbone.safetensors", "supervised": supervised.artifacts["backbone"]}


def _direct(path, prefix=""):
    """Every BN layer's statistics straight from the file's tensors, with numpy (no model rebuilt)."""
    tensors = load_file(str(path))
    stats = {}
    for key in tensors:
        if key.startswith(prefix) and key.endswith(".running_mean"):
            name = key[len(prefix) : -len(".running_mean")]
            mean = tensors[key].astype(np.float64)
            var = tensors[f"{prefix}{name}.running_var"].astype(np.float64)
            stats[name] = (np.var(mean), np.var(var), np.mean(0.5 * np.log(2 * np.pi * np.e * var)))
    return stats


def test_gaussian_entropy_is_eq7():
    variance = torch.tensor([1.0, 0.25, 4.0], dtype=torch.float64)
    expected = [0.5 * math.log(2 * math.pi * math.e * v) for v in variance.tolist()]
    assert torch.allclose(gaussian_entropy(variance), torch.tensor(expected, dtype=torch.float64))
    assert abs(gaussian_entropy(torch.tensor(1.0)).item() - 1.4189385) < 1e-6


@pytest.mark.parametrize("which", ["moco-v3", "supervised"])
def test_inspector_matches_direct_computation(checkpoints, which):
    result = inspect_checkpoint(checkpoints[which])
    direct = _direct(checkpoints[which])
    assert result.pretrainer == which and result.kind == "backbone"
    assert [layer.name for layer in result.layers][0] == "bn1"  # forward order: the stem's BN is k = 0
    assert {layer.name for layer in result.layers} == set(direct)
    for layer in result.layers:
        mean_variance, var_variance, entropy = direct[layer.name]
        assert layer.mean_variance == pytest.approx(mean_variance, rel=1e-9, abs=1e-15)
        assert layer.var_variance == pytest.approx(var_variance, rel=1e-9, abs=1e-15)
        assert layer.entropy == pytest.approx(entropy, rel=1e-9)


def test_classifier_checkpoint_reports_its_backbone(tiny_run, checkpoints):
    out, _ = tiny_run
    from_classifier = inspect_checkpoint(out / "align" / "classifier.safetensors")
    from_backbone = inspect_checkpoint(checkpoints["moco-v3"])
    assert from_classifier.kind == "classifier"
    assert [vars(layer) for layer in from_classifier.layers] == [vars(layer) for layer in from_backbone.layers]


def test_cli_compares_ssl_and_supervised_side_by_side(checkpoints, tmp_path):
    plot, data = tmp_path / "bn.png", tmp_path / "bn.json"
    args = [
        "inspect",
        "bn-stats",
        str(checkpoints["moco-v3"]),
        str(checkpoints["supervised"]),
        "--label",
        "MoCo v3",
        "--label",
        "supervised",
        "--plot",
        str(plot),
        "--json",
        str(data),
    ]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "MoCo v3" in result.output and "supervised" in result.output
    assert "Largest first-BN running-mean variance" in result.output
    assert "layer1.0.bn1" in result.output
    width, height = Image.open(plot).size
    assert width > 600 and height > 400
    assert len(np.unique(np.asarray(Image.open(plot).convert("L")))) > 10  # not blank
    written = json.loads(data.read_text())
    direct = _direct(checkpoints["supervised"])
    assert [entry["label"] for entry in written] == ["MoCo v3", "supervised"]
    first = written[1]["layers"][0]
    assert first["mean_variance"] == pytest.approx(direct[first["name"]][0], rel=1e-9, abs=1e-15)
    assert written[1]["summary"]["first_bn_mean_variance"] == first["mean_variance"]


def test_wrong_artifact_kind_is_a_one_line_error(tiny_run):
    out, _ = tiny_run
    result = CliRunner().invoke(cli, ["inspect", "bn-stats", str(out / "recover" / "distilled.safetensors")])
    assert result.exit_code != 0
    assert "expected a backbone or classifier artifact, found distilled" in result.output
    assert "Traceback" not in result.output
