"""Pretrainers: the backbone sees normalised pixels (as the aligned classifier feeds it later), and objectives learn."""

from __future__ import annotations

import pytest
import torch

from scdd.data.base import DatasetSplits
from scdd.models.build import build_backbone
from scdd.registry import get_component

FAST = {"epochs": 2, "batch_size": 64}


def _subset(data: DatasetSplits, count: int) -> DatasetSplits:
    indices = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:count].tolist()
    return DatasetSplits(info=data.info, train=torch.utils.data.Subset(data.train, indices), val=data.val)


@pytest.mark.parametrize("name", ["moco-v3", "supervised"])
def test_backbone_input_is_normalised(name, mnist):
    """BN running statistics must describe normalised input, the input recovery later matches against."""
    backbone = build_backbone("resnet10-slim", mnist.info)
    seen = []
    backbone.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    get_component("pretrainer", name).build({"epochs": 1, "batch_size": 64}).pretrain(
        backbone, _subset(mnist, 128), device=torch.device("cpu"), seed=0
    )
    pixels = torch.cat(seen)
    assert pixels.std() > 0.7  # raw MNIST pixels have std 0.31; normalised, about 1
    assert pixels.min() < -0.3  # the black background maps to -mean/std = -0.42


def test_supervised_loss_falls(mnist):
    backbone = build_backbone("resnet10-slim", mnist.info)
    result = get_component("pretrainer", "supervised").build({**FAST, "lr": 0.1, "crop_min_scale": 0.5}).pretrain(
        backbone, _subset(mnist, 1024), device=torch.device("cpu"), seed=0
    )
    first, last = result.loss_per_epoch
    assert last < first * 0.8
