"""Datasets of image files: ``imagefolder`` (any ``train/<class>/*`` + ``val/<class>/*``), ImageNet-1K
(the same layout) and Tiny-ImageNet (``train/<wnid>/images/*`` and ``val/images`` with ``val_annotations.txt``).

Files are found with torchvision's ``ImageFolder`` rules and decoded with PIL: the shorter side is
resized to the image size and the centre cropped square (images already that size are untouched).
With ``cache`` every image is decoded once into a uint8 tensor; otherwise each is decoded on use.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_ONE_CHANNEL_MODES = {"1", "L", "LA", "I", "I;16", "F", "P"}


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale image (PIL mode ``I;16*``, or ``I`` as some 16-bit PNGs open) scaled to 8 bits
    (value / 257); PIL's own ``convert("L")`` clips every value above 255 to white."""
    if not image.mode.startswith("I;16") and image.mode != "I":
        return image
    return Image.fromarray((np.asarray(image, dtype=np.float64) / 257).round().clip(0, 255).astype(np.uint8))


def _is_colour(image: Image.Image) -> bool:
    """Whether an image has colour: its mode's bands, or for a palette image (``P``) its palette."""
    if image.mode not in _ONE_CHANNEL_MODES:
        return True
    palette = image.getpalette() if image.mode == "P" else None
    return palette is not None and any(len(set(palette[i : i + 3])) > 1 for i in range(0, len(palette), 3))


def decode_image(path: str | Path | IO[bytes], image_size: int, channels: int, resize_size: int | None = None) -> torch.Tensor:
    """One image file as uint8 ``[channels, image_size, image_size]``; undecodable files raise a one-line ``DataError``.
    Alpha is dropped, palettes are applied, and 16-bit grayscale is scaled to 8 bits."""
    try:
        with Image.open(path) as image:
            image = _eight_bit(image).convert("L" if channels == 1 else "RGB")
            resize = resize_size or image_size
            if image.size != (image_size, image_size):
                scale = resize / min(image.size)
                new_size = (max(resize, round(image.size[0] * scale)), max(resize, round(image.size[1] * scale)))
                image = image.resize(new_size, Image.Resampling.BILINEAR)
                left, top = (image.size[0] - image_size) // 2, (image.size[1] - image_size) // 2
                image = image.crop((left, top, left + image_size, top + image_size))
            array = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise DataError(f"{path}: cannot decode image ({type(error).__name__}: {error})") from None
    return array.view(image_size, image_size, channels).permute(2, 0, 1).contiguous()


class ImageFileDataset(Dataset):
    """Image files with labels, decoded on access (uint8 ``[C, S, S]``); ``targets`` lists the labels."""

    def __init__(self, paths: list[str], targets: list[int], image_size: int, channels: int, resize_size: int | None = None):
        self.paths, self.targets = paths, list(targets)
        self.image_size, self.channels, self.resize_size = image_size, channels, resize_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return decode_image(self.paths[index], self.image_size, self.channels, self.resize_size), self.targets[index]

    def cached(self, strict: bool = True, skipped: list[str] | None = None) -> ImageTensorDataset:
        """Every image decoded once into memory. Without ``strict`` an undecodable file is left out and
        its one-line reason appended to ``skipped``; with it, the first one is a ``DataError``."""
        images, targets = [], []
        for index in range(len(self)):
            try:
                images.append(self[index][0])
            except DataError as error:
                if strict or skipped is None:
                    raise
                skipped.append(str(error))
                continue
            targets.append(self.targets[index])
        if not images:
            return ImageTensorDataset(torch.zeros(0, self.channels, self.image_size, self.image_size, dtype=torch.uint8), torch.zeros(0))
        return ImageTensorDataset(torch.stack(images), torch.tensor(targets, dtype=torch.long))


def _scan(folder: Path, classes: list[str] | None = None) -> tuple[list[str], list[str], list[int]]:
    """(class names, file paths, labels) of a ``<class>/*`` folder, by torchvision's ImageFolder rules."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder missing")
    scanning_training = classes is None
    if classes is None:
        classes = sorted(entry.name for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith("."))
        if not classes:
            raise DataError(f"{folder}: no class folders")
    else:
        unknown = sorted(
            entry.name for entry in folder.iterdir() if entry.is_dir() and entry.name not in classes and not entry.name.startswith(".")
        )
        if unknown:
            raise DataError(f"{folder}: class folder {unknown[0]!r} is not among the training classes")
    try:
        samples = make_dataset(str(folder), {name: i for i, name in enumerate(classes)}, IMG_EXTENSIONS, allow_empty=True)
    except (FileNotFoundError, OSError) as error:
        raise DataError(f"{folder}: {error}") from None
    if not samples:
        raise DataError(f"{folder}: no image files ({', '.join(IMG_EXTENSIONS[:4])}, ...)")
    if scanning_training:
        empty = sorted(set(classes) - {classes[label] for _, label in samples})
        if empty:
            raise DataError(f"{folder / empty[0]}: class folder holds no image files; every class needs training images")
    return classes, [path for path, _ in samples], [label for _, label in samples]


def _split_dataset(paths, targets, image_size, channels, cache, resize_size=None, *, strict=True, skipped=None):
    """The split in memory (``cache``; undecodable files skipped into ``skipped`` unless ``strict``), or
    decoded on use (an undecodable file is then an error when it is read)."""
    files = ImageFileDataset(paths, targets, image_size, channels, resize_size)
    return files.cached(strict, skipped) if cache else files


def _pixel_statistics(dataset: ImageTensorDataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    pixels = dataset.images.float().div(255).transpose(0, 1).reshape(dataset.images.shape[1], -1)
    return tuple(round(v, 4) for v in pixels.mean(1).tolist()), tuple(round(max(v, 1e-3), 4) for v in pixels.std(1).tolist())


def readable_names(names: list[str]) -> tuple[str, ...]:
    """Folder names as text every file format takes: bytes that are not UTF-8 (which Python keeps as
    lone surrogates, and JSON readers, HTML and fonts refuse) are written as ``\\xNN``."""
    return tuple(os.fsencode(name).decode("utf-8", "backslashreplace") for name in names)


def _root(data_root, name: str) -> Path:
    if data_root is None:
        raise DataError(f"{name} needs --data-root")
    return Path(data_root)


# ----------------------------------------------------------------------------- imagefolder


@dataclass
class ImageFolderConfig:
    image_size: int = 0  # 0: the first training image's shorter side
    channels: int = 0  # 0: 1 for a grayscale first image (a palette of grays included), else 3
    mean: tuple[float, ...] = ()  # empty: computed from the training pixels (needs cache)
    std: tuple[float, ...] = ()
    hflip: bool = True
    cache: bool = True
    strict: bool = False  # an undecodable image is an error (else it is skipped and counted); `--strict`


def load_imagefolder(config: ImageFolderConfig, *, data_root=None) -> DatasetSplits:
    """Any folder holding ``train/<class>/*`` and ``val/<class>/*`` images."""
    root = _root(data_root, "imagefolder")
    classes, train_paths, train_targets = _scan(root / "train")
    _, val_paths, val_targets = _scan(root / "val", classes)
    image_size, channels = config.image_size, config.channels
    skipped: list[str] = []
    if not image_size or not channels:
        for candidate in train_paths:  # the first decodable image sets size and channels
            try:
                with Image.open(candidate) as first:
                    image_size = image_size or min(first.size)
                    channels = channels or (3 if _is_colour(first) else 1)
                break
            except OSError as error:
                if config.strict:
                    raise DataError(f"{candidate}: cannot decode image ({type(error).__name__}: {error})") from None
        else:
            raise DataError(f"{root / 'train'}: no decodable image files")
    train = _split_dataset(train_paths, train_targets, image_size, channels, config.cache, strict=config.strict, skipped=skipped)
    val = _split_dataset(val_paths, val_targets, image_size, channels, config.cache, strict=config.strict, skipped=skipped)
    mean, std = config.mean, config.std
    if not mean or not std:
        if not isinstance(train, ImageTensorDataset):
            raise DataError("imagefolder: give mean and std (--set dataset_options.mean=[...]) when cache is off")
        mean, std = _pixel_statistics(train)
    info = DatasetInfo("imagefolder", len(classes), channels, image_size, tuple(mean), tuple(std), readable_names(classes), config.hflip)
    return DatasetSplits(info, train, val, skipped=tuple(skipped))


# ----------------------------------------------------------------------------- ImageNet-1K


@dataclass
class ImageNetConfig:
    image_size: int = 224
    resize_size: int = 256  # validation protocol: shorter side to 256, centre crop 224
    cache: bool = False
    strict: bool = False  # with cache: an undecodable image is an error (else skipped); lazily decoded, always an error


def load_imagenet(config: ImageNetConfig, *, data_root=None) -> DatasetSplits:
    """ImageNet-1K as ImageFolder ``train/<wnid>/*`` and ``val/<wnid>/*``; classes are the sorted wnids."""
    root = _root(data_root, "imagenet")
    classes, train_paths, train_targets = _scan(root / "train")
    _, val_paths, val_targets = _scan(root / "val", classes)
    size, resize = config.image_size, config.resize_size
    info = DatasetInfo("imagenet", len(classes), 3, size, IMAGENET_MEAN, IMAGENET_STD, tuple(classes), hflip=True)
    skipped: list[str] = []
    return DatasetSplits(
        info,
        _split_dataset(train_paths, train_targets, size, 3, config.cache, resize, strict=config.strict, skipped=skipped),
        _split_dataset(val_paths, val_targets, size, 3, config.cache, resize, strict=config.strict, skipped=skipped),
        skipped=tuple(skipped),
    )


# ----------------------------------------------------------------------------- Tiny-ImageNet


@dataclass
class TinyImageNetConfig:
    cache: bool = True  # 110,000 images of 64x64x3: about 1.3 GB as uint8
    strict: bool = False  # an undecodable image is an error (else it is skipped and counted); `--strict`


def _tiny_root(data_root) -> Path:
    root = _root(data_root, "tiny-imagenet")
    for candidate in (root, root / "tiny-imagenet-200"):
        if (candidate / "wnids.txt").is_file():
            return candidate
    raise DataError(f"no Tiny-ImageNet under {root} (expected wnids.txt, train/ and val/ with val_annotations.txt)")


def _tiny_names(root: Path, wnids: list[str]) -> tuple[str, ...]:
    words = {}
    if (root / "words.txt").is_file():
        for line in (root / "words.txt").read_text().splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid.strip()] = text.split(",")[0].strip()
    return tuple(words.get(wnid) or wnid for wnid in wnids)


def load_tiny_imagenet(config: TinyImageNetConfig, *, data_root=None) -> DatasetSplits:
    """Tiny-ImageNet-200: ``train/<wnid>/images/*.JPEG``; ``val/images`` labelled by ``val/val_annotations.txt``."""
    root = _tiny_root(data_root)
    wnids = sorted({line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip()})
    index = {wnid: i for i, wnid in enumerate(wnids)}
    train_paths, train_targets = [], []
    for wnid in wnids:
        folder = root / "train" / wnid / "images"
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpeg", ".jpg", ".png"}) if folder.is_dir() else []
        if not files:
            raise DataError(f"{folder}: no training images for class {wnid}")
        train_paths += [str(p) for p in files]
        train_targets += [index[wnid]] * len(files)
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DataError(f"{annotations}: missing (Tiny-ImageNet's validation labels)")
    val_paths, val_targets = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise DataError(f"{annotations}:{number}: expected 'file<TAB>wnid…' with a known wnid, got {line[:60]!r}")
        val_paths.append(str(root / "val" / "images" / parts[0]))
        val_targets.append(index[parts[1]])
    info = DatasetInfo("tiny-imagenet", len(wnids), 3, 64, IMAGENET_MEAN, IMAGENET_STD, _tiny_names(root, wnids), hflip=True)
    skipped: list[str] = []
    return DatasetSplits(
        info,
        _split_dataset(train_paths, train_targets, 64, 3, config.cache, strict=config.strict, skipped=skipped),
        _split_dataset(val_paths, val_targets, 64, 3, config.cache, strict=config.strict, skipped=skipped),
        skipped=tuple(skipped),
    )
