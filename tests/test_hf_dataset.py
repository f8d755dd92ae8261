"""The ``hf`` dataset reads a save_to_disk folder and parquet shards offline; without the extra it is one line."""

import json
import socket
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from scdd.artifacts import export_image_folder
from scdd.data.hf import HfConfig, load_hf
from scdd.errors import ConfigError, DataError


def test_missing_extra_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now raises ImportError
    with pytest.raises(ConfigError, match=r"^the hf dataset needs the optional 'datasets' package: pip install 'scdd\[hf\]'$"):
        load_hf(HfConfig(), data_root=str(tmp_path))


def test_exported_image_folder_has_metadata_naming_each_files_class(tmp_path):
    labels = torch.tensor([2, 0, 1, 2, 0, 2])
    folder = export_image_folder(torch.rand(6, 1, 8, 8), labels, ("cat", "dog", "a/b"), tmp_path / "images")
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert sorted(row["label"] for row in rows) == sorted(labels.tolist()) and len({row["file_name"] for row in rows}) == 6
    for row in rows:
        assert (folder / row["file_name"]).is_file() and row["class_name"] == ("cat", "dog", "a/b")[row["label"]]
        assert row["file_name"].split("/")[0] == {"cat": "cat", "dog": "dog", "a/b": "a_b"}[row["class_name"]]


datasets = pytest.importorskip("datasets", reason="the optional hf extra (pip install 'scdd[hf]') is not installed")


@pytest.fixture
def offline(monkeypatch):
    """Any network connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the hf dataset tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")  # nothing may be cached either


def _splits(rng, size=(12, 10), mode="RGB", train=6, test=3):
    channels = 3 if mode == "RGB" else 1
    features = datasets.Features(
        {"img": datasets.Image(), "fine": datasets.ClassLabel(names=["cat", "dog", "eel"]), "id": datasets.Value("int32")}
    )
    arrays, parts = {}, {}
    for split, count in (("train", train), ("test", test)):
        pixels = rng.integers(0, 256, size=(count, size[1], size[0], channels), dtype=np.uint8)
        labels = [i % 3 for i in range(count)]
        images = [Image.fromarray(p if channels == 3 else p[:, :, 0], mode=mode) for p in pixels]
        parts[split] = datasets.Dataset.from_dict({"img": images, "fine": labels, "id": list(range(count))}, features=features)
        arrays[split] = (pixels, labels)
    return datasets.DatasetDict(parts), arrays


def test_save_to_disk_folder(tmp_path, offline):
    saved, arrays = _splits(np.random.default_rng(0), size=(10, 10))
    saved.save_to_disk(str(tmp_path / "saved"))
    data = load_hf(HfConfig(), data_root=str(tmp_path / "saved"))  # columns found by feature type
    assert data.info.class_names == ("cat", "dog", "eel") and data.info.channels == 3 and data.info.image_size == 10
    assert data.train.images.shape == (6, 3, 10, 10) and data.val.labels.tolist() == arrays["test"][1]
    assert torch.equal(data.train.images[4], torch.from_numpy(arrays["train"][0][4]).permute(2, 0, 1))
    assert data.info.mean[1] == pytest.approx(arrays["train"][0][..., 1].mean() / 255, abs=1e-3)


def test_parquet_shards_with_named_columns_and_fitted_size(tmp_path, offline):
    saved, arrays = _splits(np.random.default_rng(1), size=(16, 12), mode="L", train=8)
    shards = tmp_path / "pq" / "data"
    saved["train"].select(range(4)).to_parquet(str(shards / "train-00000-of-00002.parquet"))
    saved["train"].select(range(4, 8)).to_parquet(str(shards / "train-00001-of-00002.parquet"))
    saved["test"].rename_column("fine", "label").to_parquet(str(shards / "validation-00000-of-00001.parquet"))
    with pytest.raises(DataError, match="the validation split lacks column 'fine'"):
        load_hf(HfConfig(label_column="fine"), data_root=str(tmp_path / "pq"))
    saved["test"].to_parquet(str(shards / "validation-00000-of-00001.parquet"))
    data = load_hf(HfConfig(image_column="img", label_column="fine"), data_root=str(tmp_path / "pq"))
    assert data.info.channels == 1 and data.info.image_size == 12  # the shorter side; centre-cropped square
    assert data.train.labels.tolist() == arrays["train"][1] and len(data.val) == 3
    assert torch.equal(data.train.images[5, 0], torch.from_numpy(arrays["train"][0][5, :, 2:14, 0]))
    resized = load_hf(HfConfig(image_size=8, channels=3), data_root=str(tmp_path / "pq"))
    assert resized.train.images.shape == (8, 3, 8, 8)


def test_bad_folders_and_options_are_one_line(tmp_path, offline):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither a save_to_disk folder"):
        load_hf(HfConfig(), data_root=str(tmp_path / "empty"))
    saved, _ = _splits(np.random.default_rng(2))
    saved["train"].save_to_disk(str(tmp_path / "single"))
    with pytest.raises(DataError, match="a single saved Dataset has no held-out split"):
        load_hf(HfConfig(), data_root=str(tmp_path / "single"))
    saved.save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"no split 'holdout' \(splits: train, test"):
        load_hf(HfConfig(val_split="holdout"), data_root=str(tmp_path / "saved"))
    with pytest.raises(DataError, match="column 'id' holds Value, not encoded images"):
        load_hf(HfConfig(image_column="id"), data_root=str(tmp_path / "saved"))
    broken = datasets.DatasetDict(
        train=saved["train"]
        .cast_column("img", datasets.Image(decode=False))
        .map(lambda row, i: {"img": {"bytes": b"not an image", "path": None}} if i == 2 else row, with_indices=True),
        test=saved["test"],
    )
    broken.save_to_disk(str(tmp_path / "broken"))
    with pytest.raises(DataError, match="train row 2: cannot decode image"):
        load_hf(HfConfig(strict=True), data_root=str(tmp_path / "broken"))
    skipping = load_hf(HfConfig(), data_root=str(tmp_path / "broken"))
    assert len(skipping.train) == 5 and len(skipping.skipped) == 1 and "train row 2" in skipping.skipped[0]


def test_exported_image_folder_loads_with_labels_in_datasets(tmp_path, offline):
    images = torch.rand(6, 3, 8, 8)
    labels = torch.tensor([2, 0, 1, 2, 0, 2])
    folder = export_image_folder(images, labels, ("cat", "dog", "a/b"), tmp_path / "images")
    loaded = datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(tmp_path / "cache"))["train"]
    assert sorted(zip(loaded["label"], loaded["class_name"], strict=False)) == sorted(
        (int(label), ("cat", "dog", "a/b")[label]) for label in labels.tolist()
    )
    for row in loaded:  # each file's label is its own: compare pixels with the image of that class and index
        own = [i for i, label in enumerate(labels.tolist()) if label == row["label"]]
        pixels = torch.from_numpy(np.array(row["image"])).permute(2, 0, 1)
        expected = [(images[i] * 255).round().to(torch.uint8) for i in own]
        assert any(torch.equal(pixels, e) for e in expected)
