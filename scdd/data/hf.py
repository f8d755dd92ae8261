"""Hugging Face datasets on disk (``hf``): a ``DatasetDict.save_to_disk`` folder, or a folder of parquet shards.

Read offline with the ``datasets`` library (the optional extra ``pip install 'scdd[hf]'``): a
``save_to_disk`` folder is memory-mapped with ``datasets.load_from_disk``; parquet shards are read
with ``pyarrow`` and their split found from file and folder names by the same rules
``datasets.load_dataset`` applies to a local folder (``train-00000-of-00002.parquet``,
``data/test/0000.parquet``, ...). Nothing is fetched and no cache is written.

The training split is ``train_split``; the real held-out split is ``val_split``, by default the first
of ``test``, ``validation``, ``valid``, ``val`` present. The image column (``image_column``, default:
the only column of the ``Image`` feature) holds encoded images (bytes or a file path); the label
column (``label_column``, default: the only ``ClassLabel`` column, else ``label``) holds class
labels (``ClassLabel`` names are kept; plain integers or strings become classes in sorted order).
Images are decoded once into memory and fitted as ``imagefolder`` fits files: the shorter side
resized to the image size (the first image's unless given) and the centre cropped square.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.data.folders import _ONE_CHANNEL_MODES, _pixel_statistics, decode_image
from scdd.errors import ConfigError, DataError

HELD_OUT_SPLITS = ("test", "validation", "valid", "val")
EXTRA_HINT = "the hf dataset needs the optional 'datasets' package: pip install 'scdd[hf]'"


@dataclass
class HfConfig:
    image_column: str = ""  # "": the only column holding Image features
    label_column: str = ""  # "": the only ClassLabel column, else "label"
    train_split: str = "train"
    val_split: str = ""  # the held-out split; "": the first of test, validation, valid, val present
    image_size: int = 0  # 0: the first training image's shorter side
    channels: int = 0  # 0: 1 for a grayscale first image, else 3
    mean: tuple[float, ...] = ()  # empty: computed from the training pixels
    std: tuple[float, ...] = ()
    hflip: bool = True
    strict: bool = False  # an undecodable image is an error (else it is skipped and counted); `--strict`


def _datasets_module():
    try:
        import datasets
    except ImportError:
        raise ConfigError(EXTRA_HINT) from None
    return datasets


def _read_splits(root: Path) -> dict[str, Any]:
    """Every split of the folder as a ``datasets.Dataset``: a saved DatasetDict, or parquet shards."""
    datasets = _datasets_module()
    if (root / "dataset_dict.json").is_file():
        try:
            return dict(datasets.load_from_disk(str(root)))
        except (OSError, ValueError, KeyError) as error:
            raise DataError(f"{root}: cannot read the saved DatasetDict ({type(error).__name__}: {error})") from None
    if (root / "state.json").is_file():
        raise DataError(f"{root}: a single saved Dataset has no held-out split; save a DatasetDict with train and test splits")
    import pyarrow
    import pyarrow.parquet
    from datasets.data_files import DataFilesDict, get_data_patterns

    try:
        files = DataFilesDict.from_patterns(get_data_patterns(str(root)), base_path=str(root))
    except FileNotFoundError:  # datasets' EmptyDatasetError: no data files at all
        files = {}
    splits = {}
    for split, paths in files.items():
        shards = sorted(str(path) for path in paths if str(path).endswith(".parquet"))
        if not shards:
            continue
        try:
            splits[str(split)] = datasets.Dataset(pyarrow.parquet.read_table(shards))
        except (OSError, pyarrow.ArrowException) as error:
            raise DataError(f"{root}: cannot read the {split} parquet shards ({type(error).__name__}: {error})") from None
    if not splits:
        raise DataError(
            f"{root}: neither a save_to_disk folder (dataset_dict.json) nor parquet shards named by split (train-*.parquet, ...)"
        )
    return splits


def _pick_splits(splits: dict[str, Any], config: HfConfig, root: Path) -> tuple[str, str]:
    names = ", ".join(splits) or "none"
    if config.train_split not in splits:
        raise DataError(f"{root}: no split {config.train_split!r} (splits: {names}; set dataset_options.train_split=...)")
    if config.val_split:
        if config.val_split not in splits:
            raise DataError(f"{root}: no split {config.val_split!r} (splits: {names}; set dataset_options.val_split=...)")
        return config.train_split, config.val_split
    held_out = next((name for name in HELD_OUT_SPLITS if name in splits and name != config.train_split), None)
    if held_out is None:
        raise DataError(f"{root}: no held-out split ({', '.join(HELD_OUT_SPLITS)}); splits: {names}; set dataset_options.val_split=...")
    return config.train_split, held_out


def _columns(dataset, config: HfConfig, root: Path) -> tuple[str, str]:
    datasets = _datasets_module()
    features = dataset.features
    listing = ", ".join(features) or "none"

    def only(kind, fallback: str) -> str:
        matches = [name for name, feature in features.items() if isinstance(feature, kind)]
        return matches[0] if len(matches) == 1 else fallback

    image = config.image_column or only(datasets.Image, "image")
    label = config.label_column or only(datasets.ClassLabel, "label")
    for option, name in (("image_column", image), ("label_column", label)):
        if name not in features:
            raise DataError(f"{root}: no column {name!r} (columns: {listing}; set dataset_options.{option}=...)")
    if not isinstance(features[image], datasets.Image):
        raise DataError(f"{root}: column {image!r} holds {type(features[image]).__name__}, not encoded images (datasets.Image)")
    return image, label


def _classes(train, label: str) -> tuple[tuple[str, ...], dict[Any, int]]:
    """Class names and the map from a stored label value to its class index."""
    datasets = _datasets_module()
    feature = train.features[label]
    if isinstance(feature, datasets.ClassLabel):
        return tuple(feature.names), {i: i for i in range(feature.num_classes)}
    values = sorted(set(train[label]))
    return tuple(str(value) for value in values), {value: i for i, value in enumerate(values)}


def _decode_split(
    dataset,
    image: str,
    label: str,
    index: dict[Any, int],
    split: str,
    size: int,
    channels: int,
    strict: bool,
    skipped: list[str],
    root: Path,
) -> ImageTensorDataset:
    datasets = _datasets_module()
    cells = dataset.cast_column(image, datasets.Image(decode=False))
    images, targets = [], []
    for row, (cell, value) in enumerate(zip(cells[image], cells[label], strict=False)):
        if value not in index:
            raise DataError(f"{root}: {split} row {row} has label {value!r}, not among the training classes")
        where = f"{root} {split} row {row}"
        source = None
        try:
            if cell is None or not (cell.get("bytes") or cell.get("path")):
                raise DataError(f"{where}: cannot decode image (the cell is empty)")
            source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"]
            images.append(decode_image(source, size, channels))
        except DataError as error:  # name the row, not the in-memory file object PIL saw
            reason = str(error).split(": ", 1)[-1].replace(repr(source), "from the cell's bytes")
            message = reason if reason.startswith(where) else f"{where}: {reason}"
            if strict:
                raise DataError(message) from None
            skipped.append(message)
            continue
        targets.append(index[value])
    if not images:
        raise DataError(f"{root}: the {split} split has no decodable images")
    return ImageTensorDataset(torch.stack(images), torch.tensor(targets, dtype=torch.long))


def _first_image_geometry(dataset, image: str, strict: bool, root: Path) -> tuple[int, int]:
    from PIL import Image

    datasets = _datasets_module()
    for cell in dataset.cast_column(image, datasets.Image(decode=False))[image]:
        if not cell or not (cell.get("bytes") or cell.get("path")):
            continue
        try:
            with Image.open(io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"]) as first:
                return min(first.size), 1 if first.mode in _ONE_CHANNEL_MODES else 3
        except OSError:
            if strict:
                raise DataError(f"{root}: the first training image cannot be decoded") from None
    raise DataError(f"{root}: no decodable training images")


def load_hf(config: HfConfig, *, data_root=None) -> DatasetSplits:
    """A Hugging Face dataset saved on disk: ``save_to_disk`` folder or parquet shards, read offline."""
    if data_root is None:
        raise DataError("hf needs --data-root (a datasets.save_to_disk folder or a folder of parquet shards)")
    root = Path(data_root)
    datasets = _datasets_module()
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        splits = _read_splits(root)
        train_name, val_name = _pick_splits(splits, config, root)
        train, val = splits[train_name], splits[val_name]
        image, label = _columns(train, config, root)
        if image not in val.features or label not in val.features:
            raise DataError(f"{root}: the {val_name} split lacks column {image if image not in val.features else label!r}")
        names, index = _classes(train, label)
        size, channels = config.image_size, config.channels
        if not size or not channels:
            first_size, first_channels = _first_image_geometry(train, image, config.strict, root)
            size, channels = size or first_size, channels or first_channels
        skipped: list[str] = []
        common: dict[str, Any] = {"size": size, "channels": channels, "strict": config.strict, "skipped": skipped, "root": root}
        train_set = _decode_split(train, image, label, index, train_name, **common)
        val_set = _decode_split(val, image, label, index, val_name, **common)
    finally:
        if bars:
            datasets.enable_progress_bars()
    mean, std = (config.mean, config.std) if config.mean and config.std else _pixel_statistics(train_set)
    info = DatasetInfo("hf", len(names), channels, size, tuple(mean), tuple(std), names, config.hflip)
    return DatasetSplits(info, train_set, val_set, skipped=tuple(skipped))
