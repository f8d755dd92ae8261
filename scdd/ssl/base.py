"""What every pretrainer shares: the optimiser settings (paper Table 14, "Pretrain" column), the
result type, and ``Pretrainer``, the base that runs the squeeze.

A method subclasses ``Pretrainer`` and supplies only its heads (``build``), its views and its loss
step (``loss``), plus ``after_step`` when it keeps a momentum encoder. The base runs the epochs
through ``scdd.training.TrainLoop``: Table 14's optimiser and cosine schedule, per-epoch progress
kept for resuming (every module ``build`` returns, and the method's random generators), DDP under
torchrun, and the backbone handed back in eval mode (with ``kept_head``, a head trained with it). A
budget may be given in optimiser steps too: ``min_steps`` raises the epochs on a small training set.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

import torch
from torch import nn
from torch.utils.data import Dataset

from scdd import distributed
from scdd.augment import MultiCropSpec, ViewSpec, multi_crop, random_view
from scdd.data.base import DatasetInfo, DatasetSplits, steps_per_epoch
from scdd.errors import ConfigError
from scdd.models.classifier import Normalize, feature_width
from scdd.progress import SILENT, Progress
from scdd.runtime import generator, place
from scdd.training import TrainingConfig, TrainLoop

ConfigT = TypeVar("ConfigT", bound="PretrainConfig")


@dataclass
class PretrainConfig(TrainingConfig):
    """Optimisation budget of a squeeze. Defaults: Table 14 (SGD, lr 0.06, wd 5e-4, momentum 0.9,
    batch 512, cosine, 200 epochs)."""

    warmup_epochs: int = 0
    hue: float = 0.1  # largest hue shift of a colour view, in turns (MoCo v2/v3, DINO: ColorJitter hue 0.1)
    # at least this many optimiser steps: the squeeze raises ``epochs`` to reach it on a small training set,
    # so one budget gives datasets of any size the same number of updates (0: epochs as given)
    min_steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 1 or self.batch_size < 2 or self.min_steps < 0:
            raise ConfigError("pretraining needs epochs >= 1, batch_size >= 2 and min_steps >= 0")

    def for_data(self: ConfigT, train: Dataset) -> ConfigT:
        """This budget with ``epochs`` raised so that ``min_steps`` optimiser steps run on ``train``."""
        per_epoch = steps_per_epoch(train, self.batch_size, drop_last=True)
        return dataclasses.replace(self, epochs=max(self.epochs, -(-self.min_steps // per_epoch)))


@dataclass
class PretrainResult:
    """A squeezed backbone (BN running statistics included) and its objective's loss per epoch."""

    backbone: nn.Module
    loss_per_epoch: list[float] = field(default_factory=list)
    head: nn.Module | None = None  # a classification head trained with the backbone (supervised squeezes keep theirs)


class PixelEncoder(nn.Sequential):
    """``backbone(normalize(pixels))`` with the backbone's ``num_features``."""

    def __init__(self, normalize: Normalize, backbone: nn.Module) -> None:
        super().__init__(normalize, backbone)
        self.num_features = feature_width(backbone)


def pixel_encoder(backbone: nn.Module, info: DatasetInfo) -> PixelEncoder:
    """``backbone(normalize(pixels))``: the input the aligned classifier gives the backbone later,
    so the BatchNorm running statistics a squeeze leaves are those that recovery matches.
    The normalisation constants live on the backbone's device."""
    device = next(backbone.parameters()).device
    return PixelEncoder(Normalize(info.mean, info.std).to(device), backbone)


def trained_parameters(modules: Mapping[str, nn.Module]) -> list[nn.Parameter]:
    """Every parameter of ``modules`` that requires a gradient, once each, in order."""
    seen: set[int] = set()
    found = []
    for module in modules.values():
        for parameter in module.parameters():
            if parameter.requires_grad and id(parameter) not in seen:
                seen.add(id(parameter))
                found.append(parameter)
    return found


class Pretrainer(Generic[ConfigT]):
    """Base of the squeeze objectives: a method sets ``name`` and implements ``build`` and ``loss``
    (``Pretrainer[ItsConfig]``: ``self.config`` is the method's own config class)."""

    name: ClassVar[str] = "pretrainer"
    sync_batchnorm: ClassVar[bool] = True  # SyncBatchNorm in the backbone on CUDA under torchrun

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    # ------------------------------------------------------------------ what a method supplies

    def build(self, encoder: PixelEncoder, data: DatasetSplits) -> dict[str, nn.Module]:
        """Make the heads around ``encoder`` (normalisation + backbone); return every network of the
        method by name. Their parameters that require a gradient are trained; their state is kept."""
        raise NotImplementedError

    def loss(self, images: torch.Tensor, labels: torch.Tensor, step: int, total: int) -> torch.Tensor:
        """The objective on one batch of [0, 1] pixel images at optimiser step ``step`` of ``total``."""
        raise NotImplementedError

    def after_step(self, step: int, total: int) -> None:
        """Runs after each optimiser step (momentum encoder updates)."""

    def keeps_progress(self) -> bool:
        """Whether an interrupted squeeze can continue from its last epoch (all state is in ``build``'s modules)."""
        return True

    def kept_backbone(self, backbone: nn.Module) -> nn.Module:
        """The backbone the squeeze returns (DINO: the teacher's)."""
        return backbone

    def kept_head(self) -> nn.Module | None:
        """A classification head trained with the backbone, saved beside it (supervised: its own head)."""
        return None

    # ------------------------------------------------------------------ helpers for methods

    @property
    def flip_p(self) -> float:
        """Horizontal flip probability of views: 0.5 where the dataset allows flips."""
        return 0.5 if self.data.info.hflip else 0.0

    def generator(self, purpose: str, device: torch.device | None = None) -> torch.Generator:
        """A random stream of this squeeze (per rank under torchrun) on ``device`` (default: the squeeze's),
        kept with its progress."""
        made = generator(self.seed, self.name, purpose, *distributed.rank_parts(), device=device or self.device)
        self.generators[purpose] = made
        return made

    def view(self, images: torch.Tensor, spec: ViewSpec) -> torch.Tensor:
        """One augmented view of the batch (crop boxes as torchvision draws them)."""
        return random_view(images, spec, generator=self.views, crop_generator=self.boxes)

    def multi_crop(self, images: torch.Tensor, spec: MultiCropSpec) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The global and local views of the batch (SwAV, DINO)."""
        return multi_crop(images, spec, generator=self.views, crop_generator=self.boxes)

    # ------------------------------------------------------------------ the squeeze

    def pretrain(
        self, backbone: nn.Module, data: DatasetSplits, *, device: torch.device, seed: int, progress: Progress = SILENT
    ) -> PretrainResult:
        """Train ``backbone`` (in place) with this objective on ``data.train``."""
        config = self.config = self.config.for_data(data.train)  # a budget in optimiser steps becomes epochs
        self.generators: dict[str, torch.Generator] = {}
        self.data, self.device, self.seed = data, device, seed
        backbone.to(device).train()
        self.views, self.boxes = self.generator("views"), self.generator("boxes", torch.device("cpu"))
        modules = self.build(pixel_encoder(backbone, data.info), data)
        for module in modules.values():
            place(module, device, config.memory_format)
        per_epoch = steps_per_epoch(data.train, config.batch_size, drop_last=True)
        total = config.epochs * per_epoch
        parameters, warmup = trained_parameters(modules), config.warmup_epochs * per_epoch
        loop = TrainLoop(f"squeeze {self.name}", config, parameters, per_epoch, device, warmup_steps=warmup)
        order = generator(seed, self.name, "order")
        if self.keeps_progress():
            identity = {"epochs": config.epochs, "per_epoch": per_epoch}
            loop.keep(("squeeze", self.name), identity, modules=modules, generators={"order": order, **self.generators})
        step = loop.wrap_step(self.loss)  # under torchrun: gradients of the trained parameters averaged

        def batches(epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            shards = distributed.sharded_batches(data.train, config.batch_size, shuffle=True, generator=order, drop_last=True)
            for images, labels in shards:
                yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

        curve = loop.run(
            batches, lambda batch, at: step(*batch, at, total), after_step=lambda at: self.after_step(at, total), progress=progress
        )
        head = self.kept_head()
        return PretrainResult(self.kept_backbone(backbone).eval(), curve, head.eval() if head is not None else None)
