"""Every on-disk dataset format loads from a tiny fake copy; bad copies give one-line DataErrors."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Subset

from scdd.config import make_run_config
from scdd.data.base import DatasetSplits, iterate_batches, labels_of
from scdd.data.carve import carve_validation, select_split
from scdd.data.loading import load_dataset
from scdd.errors import ConfigError, DataError
from scdd.registry import get_component


def _load(name, root, **options):
    return get_component("dataset", name).build(options, data_root=str(root))


def _cifar_batch(path, n, labels_key, rng, classes):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(x) for x in rng.integers(0, classes, size=n)]
    with open(path, "wb") as handle:
        pickle.dump({"data": data, labels_key: labels, "filenames": [f"{i}.png" for i in range(n)]}, handle, protocol=2)
    return data, labels


def test_cifar10_reads_torchvision_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = [_cifar_batch(folder / f"data_batch_{i}", 3, "labels", rng, 10) for i in range(1, 6)]
    test_data, test_labels = _cifar_batch(folder / "test_batch", 4, "labels", rng, 10)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": names, "num_cases_per_batch": 3}, handle)
    data = _load("cifar10", tmp_path)
    assert data.info.class_names == tuple(names) and data.info.image_size == 32 and data.info.channels == 3
    assert len(data.train) == 15 and len(data.val) == 4
    assert torch.equal(data.train.images[3], torch.from_numpy(train[1][0][0].reshape(3, 32, 32)))
    assert data.val.labels.tolist() == test_labels
    assert data.info.mean == (0.4914, 0.4822, 0.4465)


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    _, train_labels = _cifar_batch(folder / "train", 5, "fine_labels", rng, 100)
    _cifar_batch(folder / "test", 2, "fine_labels", rng, 100)
    with open(folder / "meta", "wb") as handle:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": ["x"] * 20}, handle)
    data = _load("cifar100", folder)  # the batches folder itself also works as --data-root
    assert data.info.num_classes == 100 and data.train.labels.tolist() == train_labels


def test_cifar_refuses_arbitrary_pickles_and_names_missing_files(tmp_path):
    with pytest.raises(DataError, match="pass --download"):
        _load("cifar10", tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [str(i) for i in range(10)], "evil": print}, handle)
    with pytest.raises(DataError, match="refusing to load builtins.print"):
        _load("cifar10", tmp_path)


def _jpeg(path, size, rng, mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(array if channels == 3 else array[:, :, 0], mode=mode).save(path)
    return array


def test_tiny_imagenet_layout_with_val_annotations(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    rng = np.random.default_rng(2)
    wnids = ["n02", "n01", "n03"]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (root / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\ttabby, tabby cat\nn03\tbarn\n")
    for wnid in wnids:
        for i in range(2):
            _jpeg(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", (64, 64), rng)
    _jpeg(root / "val" / "images" / "val_0.JPEG", (64, 64), rng, mode="L")  # Tiny-ImageNet has grayscale JPEGs
    _jpeg(root / "val" / "images" / "val_1.JPEG", (64, 64), rng)
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn03\t0\t0\t10\t10\nval_1.JPEG\tn01\t1\t2\t30\t40\n")
    data = _load("tiny-imagenet", tmp_path)
    assert data.info.class_names == ("goldfish", "tabby", "barn") and data.info.image_size == 64
    assert data.train.images.shape == (6, 3, 64, 64) and data.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert data.val.labels.tolist() == [2, 0]
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99\n")
    with pytest.raises(DataError, match="val_annotations.txt:1"):
        _load("tiny-imagenet", tmp_path)


def test_imagenet_imagefolder_decodes_lazily_at_224(tmp_path):
    rng = np.random.default_rng(3)
    for split, count in (("train", 2), ("val", 1)):
        for wnid in ("n01440764", "n01443537"):
            for i in range(count):
                _jpeg(tmp_path / split / wnid / f"{i}.JPEG", (300, 256), rng)
    data = _load("imagenet", tmp_path)
    assert data.info.num_classes == 2 and data.info.mean == (0.485, 0.456, 0.406)
    assert not hasattr(data.train, "images")  # decoded on use
    images, labels = next(iterate_batches(data.val, 8))
    assert images.shape == (2, 3, 224, 224) and labels.tolist() == [0, 1]


def _png_folder(root, classes=3, train=6, val=2, size=12, seed=4):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", train), ("val", val)):
        for c in range(classes):
            for i in range(count):
                arrays[(split, c, i)] = _jpeg(root / split / f"class{c}" / f"{i:02d}.png", (size, size), rng, mode="L")
    return arrays


def test_imagefolder_pngs_round_trip_and_statistics(tmp_path):
    arrays = _png_folder(tmp_path)
    data = _load("imagefolder", tmp_path)
    assert (data.info.channels, data.info.image_size, data.info.class_names) == (1, 12, ("class0", "class1", "class2"))
    assert torch.equal(data.train.images[7, 0], torch.from_numpy(arrays[("train", 1, 1)][:, :, 0]))
    expected_mean = np.mean([a.mean() for (split, _, _), a in arrays.items() if split == "train"]) / 255
    assert data.info.mean[0] == pytest.approx(expected_mean, abs=1e-3)


def test_imagefolder_errors_are_one_line_and_named(tmp_path):
    _png_folder(tmp_path)
    (tmp_path / "val" / "class9").mkdir()
    with pytest.raises(DataError, match="'class9' is not among the training classes"):
        _load("imagefolder", tmp_path)
    (tmp_path / "val" / "class9").rmdir()
    (tmp_path / "train" / "class0" / "00.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"00.png: cannot decode image"):
        _load("imagefolder", tmp_path, image_size=12, channels=1, strict=True)
    whole = _load("imagefolder", tmp_path)  # without strict the file is skipped and counted
    assert len(whole.skipped) == 1 and "00.png: cannot decode image" in whole.skipped[0]


def test_digits_split_is_fixed_and_the_colour_variant_keeps_it():
    gray, again = _load("digits", "."), _load("digits", ".")
    assert (gray.info.channels, gray.info.image_size, len(gray.train), len(gray.val)) == (1, 8, 1297, 500)
    assert torch.equal(gray.train.images, again.train.images) and torch.bincount(gray.val.labels).tolist() == [50] * 10
    colour = _load("digits-colour", ".", image_size=16)
    assert (colour.info.channels, colour.info.image_size) == (3, 16) and colour.info.name == "digits-colour"
    assert torch.equal(colour.train.labels, gray.train.labels)  # same images and split, coloured
    pixels = colour.train.images.float() / 255
    spread = (pixels.amax(dim=(2, 3)) - pixels.amin(dim=(2, 3))).mean(dim=1)
    assert spread.min() > 0.2  # every image's digit stands out from its background
    assert len(torch.unique(pixels[:, :, 0, 0], dim=0)) > 1000  # backgrounds differ image to image
    assert [round(value, 2) for value in colour.info.mean] != [round(gray.info.mean[0], 2)] * 3


def test_validation_carve_is_stratified_fixed_and_disjoint_for_any_dataset(mnist):
    carved = carve_validation(mnist, 0.2)
    assert torch.bincount(carved.val.labels).tolist() == [80] * 10 and len(carved.train) == 3200
    kept = {image.numpy().tobytes() for image in carved.train.images}
    assert not any(image.numpy().tobytes() in kept for image in carved.val.images)
    assert len(kept | {image.numpy().tobytes() for image in carved.val.images}) == len(mnist.train)
    assert torch.equal(carve_validation(mnist, 0.2).val.images, carved.val.images)  # no run seed changes it
    assert select_split(mnist, "held-out", 0.2) is mnist
    # a dataset that is not in memory is carved by index, its labels read without decoding any image
    lazy = DatasetSplits(mnist.info, Subset(mnist.train, list(range(len(mnist.train)))), mnist.val)
    lazy.train.targets = mnist.train.labels
    lazy_carve = carve_validation(lazy, 0.2)
    assert torch.equal(labels_of(lazy_carve.val), carved.val.labels)
    assert torch.equal(lazy_carve.val[0][0], carved.val[0][0])
    with pytest.raises(ConfigError, match="validation_fraction must be between 0 and 1"):
        carve_validation(mnist, 1.5)


def test_eval_split_is_a_run_setting_recorded_in_the_config():
    config = make_run_config({"eval_split": "validation", "validation_fraction": 0.1})
    data = load_dataset(config)
    assert (len(data.train), len(data.val)) == (3600, 400)
    with pytest.raises(ConfigError, match="eval_split must be one of held-out, validation"):
        make_run_config({"eval_split": "test"})
