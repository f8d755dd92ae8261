"""Starting images of recovery: the ``initializer`` component kind.

The paper recovers every image from Gaussian noise (Sec. 2.4, as SRe²L). Later decoupled methods
start from real data instead: EDC and SRe²L++ from real images, RDED from the teacher's most
confident real crops stitched several to an image. Each is a registered initializer:

* ``noise`` (the paper's, the default): standard-normal pixels in the model's normalised space,
  seeded by each image's (class, ipc-index). Data-free.
* ``real``: one real training image of the class per synthetic image, drawn at random (the same
  draw as the random-real coreset of the same seed) or the ones the teacher is most confident about.
* ``patches`` (RDED, Sun et al. 2024): for each class, random-resized crops of random training
  images of the class are scored by the teacher (log-probability of the class on the crop), the
  most confident ``factor²·ipc`` are kept, and ``factor × factor`` of them are tiled into each image.
  A crop-level soft label then sees up to ``factor²`` distinct real objects per stored image.

``real`` and ``patches`` read the training images, so a distilled set made with them contains, or
starts from, real training data: the recover stage records ``reads_training_data`` in the artifact
and the manifest.

Contract (``scdd.recovery.initializers.Initializer``): the factory returns an object with a
``reads_data`` attribute, ``prepare(context)`` called once per recovery with an ``InitContext``,
and ``start(members)`` returning the starting images ``[n, C, H, W]`` of the given (class,
ipc-index) pairs in the model's normalised space (what recovery optimises; ``context.normalise``
maps pixels in [0, 1] there), deterministic given the context's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F

from scdd.augment import CropSpec, apply_crops, sample_boxes
from scdd.data.base import DatasetInfo, DatasetSplits, class_members, to_float_pixels
from scdd.errors import ConfigError
from scdd.runtime import generator

Member = tuple[int, int]  # (class, ipc-index)
SELECTIONS = ("random", "confident")


@dataclass
class InitContext:
    """What an initializer may use: the dataset description, the IPC, the run's seed and device, the
    recovery classifier (eval mode, normalises pixels itself), and the dataset when it reads data."""

    info: DatasetInfo
    ipc: int
    seed: int
    device: torch.device
    classifier: torch.nn.Module | None = None
    data: DatasetSplits | None = None

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] to the model's normalised input space."""
        mean = torch.tensor(self.info.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.info.std).view(1, -1, 1, 1)
        return (pixels - mean) / std


@runtime_checkable
class Initializer(Protocol):
    reads_data: bool

    def prepare(self, context: InitContext) -> None: ...

    def start(self, members: Sequence[Member]) -> torch.Tensor: ...


def _needs_data(context: InitContext, name: str) -> DatasetSplits:
    if context.data is None:
        raise ConfigError(f"initializer {name!r} reads the training images, but recovery was given no dataset")
    return context.data


def class_pixels(data: DatasetSplits, label: int, ipc: int) -> torch.Tensor:
    """Every training image of class ``label`` as float pixels ``[n, C, H, W]``, in the order of
    ``class_members`` (so a seeded draw matches the random-real coreset's); fewer than ``ipc`` is a ``DataError``."""
    members = class_members(data, ipc)[label]
    return torch.stack([to_float_pixels(torch.as_tensor(data.train[int(i)][0])) for i in members])


@torch.no_grad()
def class_log_probs(
    classifier: torch.nn.Module, pixels: torch.Tensor, label: int, device: torch.device, batch_size: int = 256
) -> torch.Tensor:
    """``log p(label | image)`` under ``classifier`` for each image, on the CPU."""
    scores = []
    for start in range(0, len(pixels), batch_size):
        logits = classifier(pixels[start : start + batch_size].to(device)).float()
        scores.append(F.log_softmax(logits, dim=1)[:, label].cpu())
    return torch.cat(scores) if scores else torch.zeros(0)


# ----------------------------------------------------------------------------- noise


def initial_noise(info: DatasetInfo, members: Sequence[Member], seed: int) -> torch.Tensor:
    """Standard-normal starting point (in normalised space) of each (class, ipc-index) image."""
    shape = (info.channels, info.image_size, info.image_size)
    return torch.stack([torch.randn(shape, generator=generator(seed, "recover-init", c, i)) for c, i in members])


@dataclass
class NoiseConfig:
    """``noise`` has no options: N(0, 1) in normalised space, as SRe²L and SC-DD start."""


class NoiseInitializer:
    reads_data = False

    def __init__(self, config: NoiseConfig | None = None) -> None:
        self.context: InitContext | None = None

    def prepare(self, context: InitContext) -> None:
        self.context = context

    def start(self, members: Sequence[Member]) -> torch.Tensor:
        assert self.context is not None, "prepare() runs first"
        return initial_noise(self.context.info, members, self.context.seed)


# ----------------------------------------------------------------------------- real images


@dataclass
class RealConfig:
    """``real`` options: ``selection`` "random" (the random-real coreset's draw for the same seed) or
    "confident" (the ``ipc`` images of the class the teacher gives the highest class probability)."""

    selection: str = "random"

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ConfigError(f"real initializer selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")


class RealInitializer:
    reads_data = True

    def __init__(self, config: RealConfig) -> None:
        self.config = config
        self.images: dict[int, torch.Tensor] = {}

    def prepare(self, context: InitContext) -> None:
        data = _needs_data(context, "real")
        self.images = {}
        for label in range(context.info.num_classes):
            pixels = class_pixels(data, label, context.ipc)
            if self.config.selection == "random":
                order = torch.randperm(len(pixels), generator=generator(context.seed, "coreset-random", label))
            else:
                if context.classifier is None:
                    raise ConfigError("the confident selection needs the recovery classifier")
                scores = class_log_probs(context.classifier, pixels, label, context.device)
                order = torch.argsort(scores, descending=True, stable=True)
            self.images[label] = context.normalise(pixels[order[: context.ipc]])

    def start(self, members: Sequence[Member]) -> torch.Tensor:
        return torch.stack([self.images[c][i] for c, i in members])


# ----------------------------------------------------------------------------- stitched patches (RDED)


@dataclass
class PatchesConfig:
    """``patches`` options (RDED). ``factor``: patches per side of each image (``factor²`` per image);
    0 chooses by image size (``auto_factor``). ``candidates``: random crops scored per kept patch.
    ``crop_min_scale`` / ``crop_max_scale``: area range of the candidate crops."""

    factor: int = 0
    candidates: int = 5
    crop_min_scale: float = 0.5
    crop_max_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.factor < 0:
            raise ConfigError(f"patches factor must be >= 0 (0: by image size), got {self.factor}")
        if self.candidates < 1:
            raise ConfigError(f"patches candidates must be >= 1, got {self.candidates}")
        if not 0 < self.crop_min_scale <= self.crop_max_scale <= 1:
            raise ConfigError(
                f"patches crop scales need 0 < crop_min_scale <= crop_max_scale <= 1, got {self.crop_min_scale}, {self.crop_max_scale}"
            )


AUTO_FACTOR_MIN_SIDE = 16  # set from the validation split; see auto_factor


def auto_factor(image_size: int) -> int:
    """Patches per side when ``factor`` is 0: 2 for images of at least ``AUTO_FACTOR_MIN_SIDE`` px, else 1."""
    return 2 if image_size >= AUTO_FACTOR_MIN_SIDE else 1


def tile_sides(size: int, factor: int) -> list[int]:
    """The sides of ``factor`` tiles covering ``size`` pixels (the last ones one pixel larger when it does not divide)."""
    base, extra = divmod(size, factor)
    return [base + (1 if index >= factor - extra else 0) for index in range(factor)]


def stitch(patches: torch.Tensor, factor: int, size: int) -> torch.Tensor:
    """Tile ``factor²`` full-size patches ``[factor², C, size, size]`` (row major) into one image, each resized
    (antialiased) to its tile."""
    sides = tile_sides(size, factor)
    rows = []
    for row in range(factor):
        tiles = [
            F.interpolate(
                patches[row * factor + col : row * factor + col + 1],
                size=(sides[row], sides[col]),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
            for col in range(factor)
        ]
        rows.append(torch.cat(tiles, dim=3))
    return torch.cat(rows, dim=2)[0].clamp_(0, 1)


class PatchesInitializer:
    reads_data = True

    def __init__(self, config: PatchesConfig) -> None:
        self.config = config
        self.images: dict[int, torch.Tensor] = {}
        self.factor = config.factor

    def prepare(self, context: InitContext) -> None:
        data = _needs_data(context, "patches")
        if context.classifier is None:
            raise ConfigError("the patches initializer scores crops with the recovery classifier")
        config, info = self.config, context.info
        self.factor = config.factor or auto_factor(info.image_size)
        per_image = self.factor**2
        keep = context.ipc * per_image
        spec = CropSpec(scale=(config.crop_min_scale, config.crop_max_scale))
        self.images = {}
        for label in range(info.num_classes):
            pixels = class_pixels(data, label, 1)
            count = keep * config.candidates
            gen = generator(context.seed, "init-patches", label)
            # every class image in turn (a fresh random order each pass), one random crop each
            passes = -(-count // len(pixels))
            sources = torch.cat([torch.randperm(len(pixels), generator=gen) for _ in range(passes)])[:count]
            boxes = sample_boxes(count, spec, generator=gen)
            crops = apply_crops(pixels[sources], boxes, None, info.image_size).clamp_(0, 1)
            scores = class_log_probs(context.classifier, crops, label, context.device)
            best = torch.argsort(scores, descending=True, stable=True)[:keep]
            # patch rank r goes to image r mod ipc, so every image holds a spread of confidences
            chosen = crops[best].view(per_image, context.ipc, *crops.shape[1:]).transpose(0, 1)
            stitched = torch.stack([stitch(chosen[index], self.factor, info.image_size) for index in range(context.ipc)])
            self.images[label] = context.normalise(stitched)

    def start(self, members: Sequence[Member]) -> torch.Tensor:
        return torch.stack([self.images[c][i] for c, i in members])


def build_noise(config: NoiseConfig) -> NoiseInitializer:
    """``noise``: the paper's start (Sec. 2.4, SRe²L's recovery from Gaussian noise)."""
    return NoiseInitializer(config)


def build_real(config: RealConfig) -> RealInitializer:
    """``real``: real training images (EDC, SRe²L++)."""
    return RealInitializer(config)


def build_patches(config: PatchesConfig) -> PatchesInitializer:
    """``patches``: the teacher's most confident real crops, ``factor²`` stitched per image (RDED)."""
    return PatchesInitializer(config)
