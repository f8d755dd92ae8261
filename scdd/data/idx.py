"""The MNIST family in its raw IDX files: ``mnist``, ``fashion-mnist``, ``kmnist`` and ``emnist``.

``--data-root`` is either torchvision's layout (``<root>/MNIST/raw/``, ``FashionMNIST/raw/``,
``KMNIST/raw/``, ``EMNIST/raw/``, as ``torchvision.datasets.MNIST(root, download=True)`` leaves it)
or a flat folder holding the four files (training and test images and labels), each either plain
(``train-images-idx3-ubyte``) or gzipped (``train-images-idx3-ubyte.gz``), as published. The test
files are the real held-out split. Nothing is downloaded unless the ``download`` option
(``--download``) is given; then torchvision fetches and checks the files.

The IDX reader is scdd's own (a header of big-endian dimensions, then uint8 pixels), because
torchvision's reads only uncompressed files and checks the header with ``assert``: here a missing,
truncated or mislabelled file is a one-line ``DataError`` naming it. Class names are torchvision's.
EMNIST's files hold each image transposed; they are turned upright on reading, and the ``letters``
split's labels 1-26 become 0-25 (torchvision keeps an empty class 0, "N/A").
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.errors import ConfigError, DataError

_UBYTE = 0x08


@dataclass(frozen=True)
class _Family:
    name: str  # the registered dataset name
    folder: str  # torchvision's class name: <root>/<folder>/raw/
    torchvision_class: str
    hflip: bool


MNIST = _Family("mnist", "MNIST", "MNIST", hflip=False)
FASHION_MNIST = _Family("fashion-mnist", "FashionMNIST", "FashionMNIST", hflip=True)  # a mirrored shoe is a shoe
KMNIST = _Family("kmnist", "KMNIST", "KMNIST", hflip=False)
EMNIST = _Family("emnist", "EMNIST", "EMNIST", hflip=False)
EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


@dataclass
class MnistConfig:
    download: bool = False


@dataclass
class EmnistConfig:
    split: str = "balanced"  # one of EMNIST_SPLITS; "balanced" (47 classes) is the EMNIST paper's benchmark split
    download: bool = False


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped when its name ends in ``.gz``) as an array of ``ndim`` dimensions."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"{path}: cannot read ({type(error).__name__}: {error})") from None
    header = 4 + 4 * ndim
    if len(raw) < header or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (no IDX magic number)")
    if raw[2] != _UBYTE or raw[3] != ndim:
        raise DataError(f"{path}: expected IDX unsigned bytes with {ndim} dimension(s), found type 0x{raw[2]:02x} with {raw[3]}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: {len(raw) - header} bytes of data for shape {shape} ({expected} expected): truncated or corrupt")
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=header).reshape(shape)  # writable, for torch


def _file_names(family: _Family, split: str) -> dict[str, tuple[str, int]]:
    prefix = (
        {"train": "train", "test": "t10k"} if family is not EMNIST else {"train": f"emnist-{split}-train", "test": f"emnist-{split}-test"}
    )
    return {
        f"{part}_{kind}": (f"{prefix[part]}-{kind}-idx{ndim}-ubyte", ndim)
        for part in ("train", "test")
        for kind, ndim in (("images", 3), ("labels", 1))
    }


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):  # torchvision keeps both; the plain one reads faster
        if candidate.is_file():
            return candidate
    return None


def _locate(family: _Family, root: Path, names: dict[str, tuple[str, int]]) -> dict[str, Path]:
    """The four files, from torchvision's ``<root>/<Name>/raw/``, ``<root>/raw/`` or ``<root>`` itself."""
    for folder in (root / family.folder / "raw", root / "raw", root):
        found = {key: _find(folder, name) for key, (name, _) in names.items()}
        paths = {key: path for key, path in found.items() if path is not None}
        if len(paths) == len(found):
            return paths
    expected = ", ".join(name + "[.gz]" for name, _ in names.values())
    raise DataError(f"no {family.name} files under {root} (expected {expected} in it or in {family.folder}/raw/)")


def _download(family: _Family, root: Path, split: str) -> None:
    import torchvision

    dataset_class = getattr(torchvision.datasets, family.torchvision_class)
    extra = {"split": split} if family is EMNIST else {}
    try:
        for train in (True, False):
            dataset_class(str(root), train=train, download=True, **extra)
    except Exception as error:  # network or checksum failure: one line, named
        raise DataError(f"{family.name}: download into {root} failed ({error})") from None


def _class_names(family: _Family, split: str) -> tuple[str, ...]:
    import torchvision

    if family is EMNIST:
        names = torchvision.datasets.EMNIST.classes_split_dict[split]
        return tuple(names[1:] if split == "letters" else names)  # letters: no empty "N/A" class
    return tuple(getattr(torchvision.datasets, family.torchvision_class).classes)


def _pixel_statistics(images: np.ndarray) -> tuple[tuple[float], tuple[float]]:
    pixels = images.reshape(-1).astype(np.float64) / 255.0
    return (round(float(pixels.mean()), 4),), (round(max(float(pixels.std()), 1e-3), 4),)


def _load(family: _Family, data_root, *, download: bool, split: str = "") -> DatasetSplits:
    if data_root is None:
        raise DataError(f"{family.name} needs --data-root (a folder with its four IDX files, or torchvision's {family.folder}/raw/)")
    root = Path(data_root)
    if download:
        _download(family, root, split)
    files = _locate(family, root, _file_names(family, split))
    names = _class_names(family, split)
    arrays = {key: read_idx(path, 3 if key.endswith("images") else 1) for key, path in files.items()}
    splits = {}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"].astype(np.int64)
        if len(images) != len(labels):
            raise DataError(f"{files[f'{part}_images']}: {len(images)} images but {files[f'{part}_labels'].name} has {len(labels)} labels")
        if family is EMNIST:
            images = images.transpose(0, 2, 1)  # stored column-major: upright as in MNIST
            labels = labels - 1 if split == "letters" else labels
        if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
            raise DataError(f"{files[f'{part}_labels']}: labels outside 0-{len(names) - 1} ({len(names)} classes)")
        splits[part] = (np.ascontiguousarray(images[:, None]), labels)
    train_images = splits["train"][0]
    if train_images.shape[-1] != train_images.shape[-2]:
        raise DataError(f"{files['train_images']}: images of {train_images.shape[-2]}x{train_images.shape[-1]} are not square")
    if splits["test"][0].shape[-2:] != train_images.shape[-2:]:
        raise DataError(f"{files['test_images']}: image size differs from the training images'")
    mean, std = _pixel_statistics(train_images)
    info = DatasetInfo(family.name, len(names), 1, train_images.shape[-1], mean, std, names, hflip=family.hflip)

    def dataset(part: str) -> ImageTensorDataset:
        images, labels = splits[part]
        return ImageTensorDataset(torch.from_numpy(images), torch.from_numpy(labels))

    return DatasetSplits(info, dataset("train"), dataset("test"))


def load_mnist(config: MnistConfig, *, data_root=None) -> DatasetSplits:
    """MNIST: 60,000 training and 10,000 test digits, 28x28 grayscale."""
    return _load(MNIST, data_root, download=config.download)


def load_fashion_mnist(config: MnistConfig, *, data_root=None) -> DatasetSplits:
    """Fashion-MNIST: 60,000 training and 10,000 test clothing images, 28x28 grayscale, 10 classes."""
    return _load(FASHION_MNIST, data_root, download=config.download)


def load_kmnist(config: MnistConfig, *, data_root=None) -> DatasetSplits:
    """Kuzushiji-MNIST: 60,000 training and 10,000 test cursive hiragana, 28x28 grayscale, 10 classes."""
    return _load(KMNIST, data_root, download=config.download)


def load_emnist(config: EmnistConfig, *, data_root=None) -> DatasetSplits:
    """EMNIST (``split``: byclass, bymerge, balanced, letters, digits or mnist): handwritten characters, 28x28."""
    if config.split not in EMNIST_SPLITS:
        raise ConfigError(f"emnist split must be one of {', '.join(EMNIST_SPLITS)}, got {config.split!r}")
    return _load(EMNIST, data_root, download=config.download, split=config.split)
