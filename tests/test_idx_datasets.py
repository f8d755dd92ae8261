"""The MNIST family reads fake IDX files the test writes: plain or gzipped, flat or in torchvision's layout."""

import csv
import gzip
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from scdd.cli import cli
from scdd.data.idx import EmnistConfig, MnistConfig, load_emnist, load_fashion_mnist, load_kmnist, load_mnist, read_idx
from scdd.errors import ConfigError, DataError


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(folder, name, array, gz):
    folder.mkdir(parents=True, exist_ok=True)
    data = _idx_bytes(array)
    path = folder / (name + ".gz" if gz else name)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _family_files(folder, *, prefix=("train", "t10k"), train=12, test=5, size=28, classes=10, gz=False, seed=0, label_offset=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, count in zip(prefix, (train, test), strict=False):
        images = rng.integers(0, 256, size=(count, size, size), dtype=np.uint8)
        labels = rng.integers(0, classes, size=count) + label_offset
        _write(folder, f"{part}-images-idx3-ubyte", images, gz)
        _write(folder, f"{part}-labels-idx1-ubyte", labels, gz)
        arrays[part] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_flat_folder_plain_or_gzipped(tmp_path, gz):
    arrays = _family_files(tmp_path, gz=gz)
    data = load_fashion_mnist(MnistConfig(), data_root=str(tmp_path))
    assert data.info.name == "fashion-mnist" and data.info.num_classes == 10 and data.info.channels == 1
    assert data.info.image_size == 28 and data.info.class_names[0] == "T-shirt/top" and data.info.hflip
    assert len(data.train) == 12 and len(data.val) == 5
    assert torch.equal(data.train.images[3, 0], torch.from_numpy(arrays["train"][0][3]))
    assert data.val.labels.tolist() == arrays["t10k"][1].tolist()
    assert data.info.mean[0] == pytest.approx(arrays["train"][0].mean() / 255, abs=1e-4)
    assert data.info.std[0] == pytest.approx(arrays["train"][0].std() / 255, abs=1e-4)


def test_torchvision_layout_and_its_raw_folder(tmp_path):
    arrays = _family_files(tmp_path / "KMNIST" / "raw", gz=True, seed=1)
    for root in (tmp_path, tmp_path / "KMNIST"):  # the parent of KMNIST/raw, or KMNIST itself
        data = load_kmnist(MnistConfig(), data_root=str(root))
        assert data.info.class_names == ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
        assert data.train.labels.tolist() == arrays["train"][1].tolist()
        assert not data.info.hflip
    _family_files(tmp_path / "MNIST" / "raw", seed=2)  # each family finds its own folder under one root
    assert load_mnist(MnistConfig(), data_root=str(tmp_path)).info.name == "mnist"


def test_emnist_split_transposes_and_shifts_letters(tmp_path):
    arrays = _family_files(tmp_path / "EMNIST" / "raw", prefix=("emnist-letters-train", "emnist-letters-test"), classes=26, label_offset=1)
    data = load_emnist(EmnistConfig(split="letters"), data_root=str(tmp_path))
    assert data.info.num_classes == 26 and data.info.class_names[:3] == ("a", "b", "c")
    assert data.train.labels.tolist() == (arrays["emnist-letters-train"][1] - 1).tolist()
    assert torch.equal(data.train.images[0, 0], torch.from_numpy(arrays["emnist-letters-train"][0][0].T.copy()))
    with pytest.raises(DataError, match="emnist-balanced-train-images-idx3-ubyte"):  # another split's files are not there
        load_emnist(EmnistConfig(split="balanced"), data_root=str(tmp_path))
    with pytest.raises(ConfigError, match="emnist split must be one of"):
        load_emnist(EmnistConfig(split="letter"), data_root=str(tmp_path))


def test_bad_idx_files_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="needs --data-root"):
        load_mnist(MnistConfig(), data_root=None)
    with pytest.raises(DataError, match=r"no mnist files under .* train-images-idx3-ubyte\[\.gz\]"):
        load_mnist(MnistConfig(), data_root=str(tmp_path))
    _family_files(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: .* truncated or corrupt"):
        load_mnist(MnistConfig(), data_root=str(tmp_path))
    images.write_bytes(b"PK\x03\x04 not idx at all")
    with pytest.raises(DataError, match="not an IDX file"):
        load_mnist(MnistConfig(), data_root=str(tmp_path))
    _write(tmp_path, "train-images-idx3-ubyte", np.zeros((12, 28, 28)), gz=False)
    _write(tmp_path, "t10k-labels-idx1-ubyte", np.full(5, 10), gz=False)  # label 10 of 10 classes
    with pytest.raises(DataError, match="labels outside 0-9"):
        load_mnist(MnistConfig(), data_root=str(tmp_path))
    _write(tmp_path, "t10k-labels-idx1-ubyte", np.zeros(4), gz=False)
    with pytest.raises(DataError, match="5 images but t10k-labels-idx1-ubyte has 4 labels"):
        load_mnist(MnistConfig(), data_root=str(tmp_path))
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="bad.gz: cannot read"):
        read_idx(tmp_path / "bad.gz", 1)


def test_scdd_run_on_fashion_mnist_idx_files_from_a_recipe_over_sized_settings(tmp_path):
    _family_files(tmp_path / "data" / "FashionMNIST" / "raw", train=20, test=10, gz=True, seed=3)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        'dataset = "fashion-mnist"\ndevice = "cpu"\n[squeeze.pretrainer_options]\nepochs = 1\nbatch_size = 8\n'
        "[align.aligner_options]\nepochs = 1\n[recover]\nipc = 2\niterations = 2\n[posttrain]\nepochs = 1\nbatch_size = 5\n"
    )
    args = f"run --config {recipe} --data-root {tmp_path / 'data'} --out {tmp_path / 'run'} --ipc 1 --set recover.iterations=3"
    result = CliRunner().invoke(cli, args.split())
    assert result.exit_code == 0, result.output
    assert "fashion-mnist has no preset: settings sized to 20 training images of 28 px, 10 classes, on cpu" in result.output
    assert "  squeeze.architecture = resnet10-slim  (images of 28 px <= 64)" in result.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    config = manifest["config"]
    assert config["dataset"] == "fashion-mnist" and "top1" in manifest["metrics"]["students"]["resnet10-slim"]
    assert (config["recover"]["ipc"], config["recover"]["iterations"], config["posttrain"]["epochs"]) == (1, 3, 1)  # options win
    sized = {setting: value for setting, value, _ in manifest["sizing"]["settings"]}  # beneath the recipe: no preset
    assert sized["posttrain.temperature"] == config["posttrain"]["temperature"] == 2.0
    assert sized["recover.alpha_bn"] == config["recover"]["alpha_bn"] == 0.3 and sized["align.aligner_options.lr"] == 0.1
    assert "recover.iterations" not in sized and "align.aligner_options.epochs" not in sized  # the command line's, the recipe's
    assert config["align"]["aligner_options"]["epochs"] == 1
    curves = list(csv.DictReader((tmp_path / "run" / "squeeze" / "curves.csv").open()))  # written by every run
    assert curves and "loss/epoch" in {row["metric"] for row in curves} and curves[0]["loop"].startswith("squeeze")
    assert (tmp_path / "run" / "posttrain" / "curves.csv").is_file() and not (tmp_path / "run" / "tensorboard").exists()
