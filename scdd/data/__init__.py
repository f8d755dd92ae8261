"""Datasets: descriptions, splits and batch iteration."""

from scdd.data.base import (
    DatasetInfo,
    DatasetSplits,
    ImageTensorDataset,
    iterate_batches,
    labels_of,
    steps_per_epoch,
    to_float_pixels,
)

__all__ = [
    "DatasetInfo",
    "DatasetSplits",
    "ImageTensorDataset",
    "iterate_batches",
    "labels_of",
    "steps_per_epoch",
    "to_float_pixels",
]
