"""What every dataset provides: its description (``DatasetInfo``) and a train and a held-out split."""

from __future__ import annotations

from collections.abc import Iterator, Sized
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset

from scdd.errors import ConfigError, DataError


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's shape and normalisation. Images everywhere in scdd are float pixels in [0, 1];
    models normalise with ``mean``/``std`` themselves."""

    name: str
    num_classes: int
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    hflip: bool = True  # whether a horizontal flip keeps an image's label (not so for digits)

    def __post_init__(self) -> None:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise DataError(f"dataset {self.name!r}: mean/std need {self.channels} values each")
        if len(self.class_names) != self.num_classes:
            raise DataError(f"dataset {self.name!r}: {len(self.class_names)} class names for {self.num_classes} classes")


class ImageTensorDataset(Dataset):
    """An in-memory image dataset: uint8 or float images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} do not pair up")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return to_float_pixels(self.images[index]), int(self.labels[index])

    def batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_float_pixels(self.images[indices]), self.labels[indices]


@dataclass
class DatasetSplits:
    """A dataset as the pipeline sees it: description, training split, real held-out split."""

    info: DatasetInfo
    train: Dataset
    val: Dataset
    skipped: tuple[str, ...] = ()  # one line per image file left out because it could not be decoded

    def __post_init__(self) -> None:
        for split_name, split in (("train", self.train), ("held-out", self.val)):
            if dataset_length(split) == 0:
                raise DataError(f"dataset {self.info.name!r}: the {split_name} split is empty")


def dataset_length(dataset: Dataset) -> int:
    """The number of examples of a map-style dataset (every dataset scdd reads has a length)."""
    assert isinstance(dataset, Sized), f"{type(dataset).__name__} has no length"
    return len(dataset)


def to_float_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float in [0, 1]; float input is returned as float32."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


def labels_of(dataset: Dataset) -> torch.Tensor:
    """All labels of a dataset, without decoding its images where the dataset allows."""
    if isinstance(dataset, ImageTensorDataset):
        return dataset.labels
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets, dtype=torch.long)
    return torch.tensor([int(dataset[i][1]) for i in range(dataset_length(dataset))], dtype=torch.long)


def iterate_batches(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    num_workers: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Float-pixel batches ``(images, labels)`` on the CPU; in-memory datasets skip the DataLoader."""
    if isinstance(dataset, ImageTensorDataset):
        n = len(dataset)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last and n >= batch_size else n
        for start in range(0, stop, batch_size):
            yield dataset.batch(order[start : start + batch_size])
        return
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last and dataset_length(dataset) >= batch_size,
        num_workers=num_workers,
    )
    for images, labels in loader:
        yield to_float_pixels(images), labels.long()


def steps_per_epoch(dataset: Dataset, batch_size: int, drop_last: bool) -> int:
    n = dataset_length(dataset)
    if drop_last and n >= batch_size:
        return n // batch_size
    return -(-n // batch_size)


def class_members(data: DatasetSplits, ipc: int) -> list[torch.Tensor]:
    """Each class's training-image indices; a class with fewer than ``ipc`` images is a ``DataError``."""
    if ipc < 1:
        raise ConfigError(f"ipc must be at least 1, got {ipc}")
    labels = labels_of(data.train)
    members = []
    for label in range(data.info.num_classes):
        indices = torch.nonzero(labels == label).flatten()
        if len(indices) < ipc:
            raise DataError(f"class {data.info.class_names[label]!r} has {len(indices)} training images, fewer than ipc {ipc}")
        members.append(indices)
    return members
