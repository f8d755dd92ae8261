"""The layout models run in (``scdd.runtime.memory_format``): contiguous by default, channels-last by name,
and a layout changes only the order of floating-point sums, never the function trained."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scdd.align.linear_probe import LinearProbeConfig
from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.errors import ConfigError
from scdd.models.build import build_backbone
from scdd.recovery.config import RecoverConfig
from scdd.registry import get_component
from scdd.runtime import memory_format, place
from scdd.ssl.moco_v3 import MoCoV3Config
from scdd.stages.posttrain import PosttrainConfig
from scdd.stages.relabel import RelabelConfig

CPU = torch.device("cpu")
U = 2.0**-24  # float32 unit roundoff
SUMMED = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)


def test_auto_is_contiguous_and_channels_last_is_chosen_by_name():
    assert memory_format(CPU) == torch.contiguous_format
    assert memory_format(torch.device("cuda")) == torch.contiguous_format
    assert memory_format(CPU, "channels-last") == torch.channels_last
    assert memory_format(CPU, "contiguous") == torch.contiguous_format
    assert memory_format(torch.device("cuda"), "channels-last") == torch.channels_last
    with pytest.raises(ConfigError, match="memory_format must be one of"):
        memory_format(CPU, "nhwc")


@pytest.mark.parametrize("config", [RecoverConfig, PosttrainConfig, RelabelConfig, MoCoV3Config, LinearProbeConfig])
def test_an_unknown_layout_is_refused_when_configured(config):
    """Refused with the settings, before any stage runs (not when the stage places its model)."""
    with pytest.raises(ConfigError, match="memory_format must be one of"):
        config(memory_format="nhwc")


def test_place_converts_only_four_dimensional_weights():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 2))
    place(model, CPU, "channels-last")
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last) and not model[0].weight.is_contiguous()
    assert model[1].weight.is_contiguous()
    place(model, CPU, "contiguous")
    assert model[0].weight.is_contiguous()


def _sum_length(module: nn.Module, inputs: torch.Tensor) -> int:
    """K, the length of the longest sum one output of ``module`` takes on ``inputs``."""
    if isinstance(module, nn.Conv2d):
        return module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
    if isinstance(module, nn.Linear):
        return module.in_features
    return inputs.numel() // inputs.shape[1]  # BatchNorm with batch statistics: N (·H·W)


def first_squeeze_loss(data: DatasetSplits, layout: str, device: torch.device = CPU) -> tuple[float, float, list[torch.Tensor]]:
    """MoCo v3's loss at step 0 of a one-step squeeze (the epoch's mean is its only step, taken
    before any update), the relative error bound ε of its forward, and every convolution's input."""
    torch.manual_seed(0)
    backbone = build_backbone("resnet10-slim", data.info)
    lengths: dict[int, int] = {}
    conv_inputs: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple, _output: torch.Tensor) -> None:
        if isinstance(module, SUMMED):
            lengths[id(module)] = max(lengths.get(id(module), 0), _sum_length(module, args[0]))
        if isinstance(module, nn.Conv2d):
            conv_inputs.append(args[0])

    handle = nn.modules.module.register_module_forward_hook(record)
    try:
        options = {"epochs": 1, "batch_size": 8, "hidden_dim": 64, "output_dim": 32, "temperature": 0.2}
        pretrainer = get_component("pretrainer", "moco-v3").build({**options, "memory_format": layout})
        result = pretrainer.pretrain(backbone, data, device=device, seed=0)
    finally:
        handle.remove()
    # Higham §3.1: a sum of K products in any order is within γ_K = K·u/(1 - K·u) of exact, relative
    # to Σ|terms|; the layers' local errors add to first order (every layer of both encoders counted)
    epsilon = sum(k * U / (1 - k * U) + U for k in lengths.values())
    return result.loss_per_epoch[0], epsilon, conv_inputs


def small_images() -> DatasetSplits:
    """8 random 8-px images: short sums (BatchNorm over N·H·W ≤ 512), so the rounding bound is tight."""
    info = DatasetInfo("noise8", 2, 1, 8, (0.5,), (0.25,), ("a", "b"), hflip=True)
    images = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 2
    return DatasetSplits(info, ImageTensorDataset(images, labels), ImageTensorDataset(images, labels))


@pytest.mark.numerics
def test_squeeze_in_channels_last_changes_only_the_rounding():
    """Both layouts train the same function: at step 0 (same weights, same views) their losses differ
    by rounding only. Per path, rows of q and k carry a relative error ≤ ε; l2-normalised, ≤ 2ε each;
    a cosine q·k then errs by ≤ 4ε, a logit by ≤ 4ε/τ, cross-entropy by ≤ 2·max|Δlogit| = 8ε/τ,
    and the loss (CE·2τ, two symmetric terms) by ≤ 32ε; two paths differ by ≤ 64ε."""
    data = small_images()
    contiguous, bound, conv_inputs = first_squeeze_loss(data, "contiguous")
    assert conv_inputs and all(x.is_contiguous() for x in conv_inputs)
    channels_last, bound_cl, conv_inputs = first_squeeze_loss(data, "channels-last")
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in conv_inputs)
    assert sum(not x.is_contiguous() for x in conv_inputs) > len(conv_inputs) // 2  # NHWC, not NCHW
    assert bound_cl == bound and 64 * bound < 0.05 * abs(contiguous)  # the bound is far below the loss's scale
    assert abs(channels_last - contiguous) <= 64 * bound
