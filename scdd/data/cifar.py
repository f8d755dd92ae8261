"""CIFAR-10 and CIFAR-100 in torchvision's on-disk format (the "python version" batches).

``--data-root`` is the folder holding ``cifar-10-batches-py`` / ``cifar-100-python`` (or that folder
itself). Nothing is downloaded unless the ``download`` option (``--download``) is given; then
torchvision fetches and checks the archive. The batches are pickles: they are read with an
unpickler that accepts only the NumPy array types the format uses, never arbitrary objects.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.errors import DataError


@dataclass
class CifarConfig:
    download: bool = False


@dataclass(frozen=True)
class _Layout:
    name: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    meta: str
    names_key: str
    labels_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


CIFAR10 = _Layout(
    "cifar10",
    "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)),
    ("test_batch",),
    "batches.meta",
    "label_names",
    "labels",
    10,
    (0.4914, 0.4822, 0.4465),
    (0.2470, 0.2435, 0.2616),
)
CIFAR100 = _Layout(
    "cifar100",
    "cifar-100-python",
    ("train",),
    ("test",),
    "meta",
    "fine_label_names",
    "fine_labels",
    100,
    (0.5071, 0.4867, 0.4408),
    (0.2675, 0.2565, 0.2761),  # SRe²L's CIFAR-100 values
)

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_batch(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"CIFAR file missing: {path}")
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DataError(f"{path}: not a CIFAR batch ({error})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: not a CIFAR batch (expected a dict)")
    return batch


def _folder(layout: _Layout, data_root: str | Path | None, download: bool) -> Path:
    if data_root is None:
        raise DataError(f"{layout.name} needs --data-root (the folder holding {layout.folder}/)")
    root = Path(data_root)
    if download:
        dataset_class = torchvision.datasets.CIFAR10 if layout is CIFAR10 else torchvision.datasets.CIFAR100
        try:
            dataset_class(str(root), train=True, download=True)
        except Exception as error:  # network or checksum failure: one line, named
            raise DataError(f"{layout.name}: download into {root} failed ({error})") from None
    for candidate in (root / layout.folder, root):
        if (candidate / layout.meta).is_file():
            return candidate
    raise DataError(f"no {layout.name} files under {root} (expected {layout.folder}/{layout.meta}); pass --download to fetch them")


def _split(folder: Path, layout: _Layout, files: tuple[str, ...]) -> ImageTensorDataset:
    images, labels = [], []
    for name in files:
        batch = _read_batch(folder / name)
        try:
            data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            batch_labels = np.asarray(batch[layout.labels_key], dtype=np.int64)
        except (KeyError, ValueError) as error:
            raise DataError(f"{folder / name}: malformed CIFAR batch ({error})") from None
        if len(data) != len(batch_labels):
            raise DataError(f"{folder / name}: {len(data)} images but {len(batch_labels)} labels")
        images.append(data)
        labels.append(batch_labels)
    labels_all = torch.from_numpy(np.concatenate(labels))
    if len(labels_all) and (labels_all.min() < 0 or labels_all.max() >= layout.num_classes):
        raise DataError(f"{folder}: labels outside 0-{layout.num_classes - 1}")
    return ImageTensorDataset(torch.from_numpy(np.concatenate(images)), labels_all)


def _load(layout: _Layout, config: CifarConfig, data_root) -> DatasetSplits:
    folder = _folder(layout, data_root, config.download)
    names = tuple(str(n) for n in _read_batch(folder / layout.meta).get(layout.names_key, ()))
    if len(names) != layout.num_classes:
        raise DataError(f"{folder / layout.meta}: {len(names)} class names, expected {layout.num_classes}")
    info = DatasetInfo(layout.name, layout.num_classes, 3, 32, layout.mean, layout.std, names, hflip=True)
    return DatasetSplits(info, _split(folder, layout, layout.train), _split(folder, layout, layout.test))


def load_cifar10(config: CifarConfig, *, data_root=None) -> DatasetSplits:
    """CIFAR-10: 50,000 training and 10,000 test images, 32x32 RGB, 10 classes."""
    return _load(CIFAR10, config, data_root)


def load_cifar100(config: CifarConfig, *, data_root=None) -> DatasetSplits:
    """CIFAR-100: 50,000 training and 10,000 test images, 32x32 RGB, 100 fine classes."""
    return _load(CIFAR100, config, data_root)
