"""scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), a second small built-in dataset.

It ships inside scikit-learn (no download) and differs from the embedded MNIST subset in size (8 px),
source and amount (about 180 images a class), so budgets chosen on one can be checked on the other.
``digits-colour`` gives every image a random foreground and background colour (3 channels), drawn
once by a fixed seed with a minimum contrast between the two, as a colour dataset of the same task.
``image_size`` resamples (bilinear) to another side, e.g. 16 or 32 px. The held-out split is fixed by
a seed that no run seed changes, as for ``mnist5k``; normalisation constants come from the training
pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.data.mnist5k import fixed_held_out
from scdd.errors import ConfigError

SPLIT_SEED = 20240607  # fixed: the held-out split never depends on a run's seed
COLOUR_SEED = 20240608
MIN_CONTRAST = 0.4  # smallest mean absolute difference between foreground and background colours


@dataclass
class DigitsConfig:
    held_out_per_class: int = 50
    colour: bool = False
    image_size: int = 8

    def __post_init__(self) -> None:
        if not 4 <= self.image_size <= 256:
            raise ConfigError(f"digits: image_size must be between 4 and 256, got {self.image_size}")


@dataclass
class ColourDigitsConfig(DigitsConfig):
    colour: bool = True


@functools.cache
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    # lazy: scikit-learn is slow to import and only these datasets need it (the report's clustering likewise)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def _colours(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB colours ``[count, 3]`` each, redrawn until they contrast."""
    rng = np.random.default_rng(COLOUR_SEED)
    foreground, background = rng.random((count, 3)), rng.random((count, 3))
    low = np.abs(foreground - background).mean(axis=1) < MIN_CONTRAST
    while low.any():
        foreground[low], background[low] = rng.random((low.sum(), 3)), rng.random((low.sum(), 3))
        low = np.abs(foreground - background).mean(axis=1) < MIN_CONTRAST
    return foreground.astype(np.float32), background.astype(np.float32)


def load_digits_dataset(config: DigitsConfig, *, data_root: object = None) -> DatasetSplits:
    """The deterministic train / held-out split of scikit-learn's digits, grayscale or coloured."""
    intensity, labels = _arrays()
    train_index, val_index = fixed_held_out("digits", labels, config.held_out_per_class, SPLIT_SEED)
    pixels = torch.from_numpy(intensity)[:, None]  # [N, 1, 8, 8] in [0, 1]
    if config.colour:
        foreground, background = (torch.from_numpy(c)[:, :, None, None] for c in _colours(len(labels)))
        pixels = background + (foreground - background) * pixels
    if config.image_size != pixels.shape[-1]:
        pixels = F.interpolate(pixels, size=config.image_size, mode="bilinear", align_corners=False).clamp(0, 1)
    images = (pixels * 255).round().to(torch.uint8)
    train_pixels = images[train_index].float() / 255
    channels = images.shape[1]
    info = DatasetInfo(
        name="digits-colour" if config.colour else "digits",
        num_classes=10,
        channels=channels,
        image_size=config.image_size,
        mean=tuple(train_pixels.mean(dim=(0, 2, 3)).tolist()),
        std=tuple(train_pixels.std(dim=(0, 2, 3)).tolist()),
        class_names=tuple(str(digit) for digit in range(10)),
        hflip=False,
    )
    targets = torch.from_numpy(labels)

    def split(index: np.ndarray) -> ImageTensorDataset:
        rows = torch.from_numpy(index)
        return ImageTensorDataset(images[rows], targets[rows])

    return DatasetSplits(info, split(train_index), split(val_index))
