"""Pretrainers: the backbone sees normalised pixels (as the aligned classifier feeds it later),
objectives learn, and each objective equals an independent reference computation."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from lightly.models.utils import batch_shuffle, batch_unshuffle

from scdd.augment import MultiCropSpec, ViewSpec, multi_crop
from scdd.config import make_run_config
from scdd.data.base import DatasetSplits
from scdd.models.batchnorm import merge_split_batchnorm, split_batchnorm
from scdd.models.build import build_backbone
from scdd.registry import get_component, get_registry
from scdd.ssl import dino, moco_v2, swav
from scdd.ssl.base import pixel_encoder
from scdd.ssl.dino import DINOConfig, teacher_temperature
from scdd.ssl.moco_v2 import MoCoV2Config
from scdd.ssl.swav import (
    ProjectionQueue,
    SwAVConfig,
    normalize_prototypes,
    prototype_scores,
)
from scdd.stages.squeeze import SqueezeConfig, squeeze

FAST = {"epochs": 2, "batch_size": 64}
# Small heads so that the tests spend their time in the backbone.
SMALL = {
    "moco-v2": {"queue_size": 128, "hidden_dim": 64, "output_dim": 32},
    "moco-v3": {"hidden_dim": 64, "output_dim": 32},
    "swav": {"prototypes": 20, "hidden_dim": 64, "output_dim": 32, "local_views": 2},
    "dino": {"hidden_dim": 64, "bottleneck_dim": 32, "output_dim": 128, "local_views": 2, "warmup_epochs": 0},
    "supervised": {},
}


def _subset(data: DatasetSplits, count: int) -> DatasetSplits:
    indices = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:count].tolist()
    return DatasetSplits(info=data.info, train=torch.utils.data.Subset(data.train, indices), val=data.val)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_backbone_input_is_normalised(name, mnist):
    """BN running statistics must describe normalised input, the input recovery later matches against."""
    backbone = build_backbone("resnet10-slim", mnist.info)
    seen = []
    backbone.conv1.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    get_component("pretrainer", name).build({"epochs": 1, "batch_size": 64, **SMALL[name]}).pretrain(
        backbone, _subset(mnist, 128), device=torch.device("cpu"), seed=0
    )
    pixels = torch.cat([batch.flatten() for batch in seen])
    assert pixels.std() > 0.7  # raw MNIST pixels have std 0.31; normalised, about 1
    assert pixels.min() < -0.3  # the black background maps to -mean/std = -0.42


def test_pixel_encoder_keeps_the_normalisation_on_the_backbone_device(mnist):
    """The squeeze runs ``pixel_encoder(backbone)`` on the backbone's device (a CUDA run once mixed devices)."""
    backbone = build_backbone("resnet10-slim", mnist.info).to("meta")
    encoder = pixel_encoder(backbone, mnist.info)
    assert {tensor.device.type for tensor in [*encoder.parameters(), *encoder.buffers()]} == {"meta"}


def test_every_registered_pretrainer_is_covered():
    assert set(get_registry().names("pretrainer")) == set(SMALL)


def test_supervised_loss_falls(mnist):
    torch.manual_seed(0)  # the backbone's initial weights, whatever ran before in this process
    backbone = build_backbone("resnet10-slim", mnist.info)
    result = (
        get_component("pretrainer", "supervised")
        .build({**FAST, "lr": 0.1, "crop_min_scale": 0.5})
        .pretrain(backbone, _subset(mnist, 1024), device=torch.device("cpu"), seed=0)
    )
    first, last = result.loss_per_epoch
    assert last < first * 0.9  # 0.76-0.78 at four initial seeds; a loop that does not learn stays near 1


def test_moco_v2_loss_falls_once_the_queue_holds_real_keys(mnist):
    """The first epoch reads negatives from the random initial queue (easy ones), so the curve is
    compared from the second epoch on; it must also end below chance, log(1 + queue size)."""
    torch.manual_seed(0)
    backbone = build_backbone("resnet10-slim", mnist.info)
    config = {
        **SMALL["moco-v2"],
        "epochs": 4,
        "batch_size": 64,
        "queue_size": 64,
        "shuffle_bn_groups": 2,
        "encoder_momentum": 0.99,
        "lr": 0.1,
        "crop_min_scale": 0.9,
    }
    losses = (
        get_component("pretrainer", "moco-v2")
        .build(config)
        .pretrain(backbone, _subset(mnist, 384), device=torch.device("cpu"), seed=0)
        .loss_per_epoch
    )
    assert losses[-1] < losses[1] and losses[-1] < math.log(1 + 64)


@pytest.mark.parametrize(
    "name, options",
    [
        ("swav", {"lr": 0.1, "crop_min_scale": 0.5, "local_crop_scale": (0.2, 0.5), "freeze_prototypes_epochs": 0.5}),
        ("dino", {"lr": 0.1, "crop_min_scale": 0.5, "local_crop_scale": (0.2, 0.5), "warmup_teacher_temperature_epochs": 0}),
    ],
)
def test_self_supervised_loss_falls(name, options, mnist):
    torch.manual_seed(0)
    backbone = build_backbone("resnet10-slim", mnist.info)
    config = {**SMALL[name], "epochs": 3, "batch_size": 64, **options}
    result = get_component("pretrainer", name).build(config).pretrain(backbone, _subset(mnist, 384), device=torch.device("cpu"), seed=0)
    assert len(result.loss_per_epoch) == 3
    assert result.loss_per_epoch[-1] < result.loss_per_epoch[0]


# ----------------------------------------------------------------------------- reference computations


@pytest.mark.numerics
def test_moco_v2_loss_matches_infonce_with_queue():
    """L = -log exp(q·k₊/τ) / (exp(q·k₊/τ) + Σ_queue exp(q·k/τ)), the queue read before the keys enter it."""
    config = MoCoV2Config(queue_size=16, output_dim=8, batch_size=4, shuffle_bn_groups=2, temperature=0.2)
    criterion = moco_v2.build_criterion(config)
    gen = torch.Generator().manual_seed(0)
    queue = F.normalize(torch.randn(16, 8, generator=gen), dim=1)
    criterion.memory_bank.bank.copy_(queue)
    query = torch.randn(4, 8, generator=gen, requires_grad=True)
    key = torch.randn(4, 8, generator=gen)
    loss = criterion(query, key)

    q, k = F.normalize(query.detach().double(), dim=1), F.normalize(key.double(), dim=1)
    expected = 0.0
    for i in range(4):
        positive = math.exp(float(q[i] @ k[i]) / 0.2)
        negatives = sum(math.exp(float(q[i] @ n) / 0.2) for n in queue.double())
        expected -= math.log(positive / (positive + negatives)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert torch.allclose(criterion.memory_bank.bank[:4], F.normalize(key, dim=1))  # keys enqueued after use
    assert torch.equal(criterion.memory_bank.bank[4:], queue[4:])


def _reference_sinkhorn(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """Equal-partition codes (SwAV Eq. 3): rows of Q sum to 1/K, columns to 1/B; returned with rows summing to 1."""
    q = torch.exp(scores / epsilon).T  # K x B
    q = q / q.sum()
    prototypes, batch = q.shape
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / prototypes
        q = q / q.sum(dim=0, keepdim=True) / batch
    return (q * batch).T


@pytest.mark.numerics
def test_swav_loss_matches_swapped_prediction_reference():
    config = SwAVConfig(prototypes=6, output_dim=5, temperature=0.1, sinkhorn_epsilon=0.05, sinkhorn_iterations=3)
    gen = torch.Generator().manual_seed(1)
    prototypes = torch.nn.Linear(5, 6, bias=False)
    prototypes.weight.data = torch.randn(6, 5, generator=gen)
    normalize_prototypes(prototypes)
    assert torch.allclose(prototypes.weight.norm(dim=1), torch.ones(6))
    large = [torch.randn(8, 5, generator=gen) for _ in range(2)]
    small = [torch.randn(8, 5, generator=gen) for _ in range(3)]
    scores_large = [prototype_scores(z, prototypes) for z in large]
    scores_small = [prototype_scores(z, prototypes) for z in small]
    loss = swav.build_criterion(config)(scores_large, scores_small).item()

    weights = F.normalize(prototypes.weight.detach().double(), dim=1)
    views = [F.normalize(z.double(), dim=1) @ weights.T for z in large + small]
    expected = 0.0
    for i in range(2):  # codes come from the large views only
        codes = _reference_sinkhorn(views[i], 0.05, 3)
        assert torch.allclose(codes.sum(dim=1), torch.ones(8, dtype=torch.float64))
        predictions = [F.log_softmax(views[v] / 0.1, dim=1) for v in range(5) if v != i]
        expected += sum(-(codes * p).sum(dim=1).mean() for p in predictions) / 4
    assert loss == pytest.approx(float(expected) / 2, rel=1e-4)


@pytest.mark.numerics
def test_dino_loss_matches_centred_sharpened_cross_entropy():
    config = DINOConfig(output_dim=7, warmup_teacher_temperature_epochs=3)
    assert [round(teacher_temperature(config, e), 3) for e in range(4)] == [0.04, 0.055, 0.07, 0.07]
    criterion = dino.build_criterion(config)
    gen = torch.Generator().manual_seed(2)
    center = torch.randn(1, 1, 7, generator=gen)
    criterion.center.copy_(center)
    teacher = [torch.randn(4, 7, generator=gen) for _ in range(2)]
    student = [torch.randn(4, 7, generator=gen) for _ in range(4)]  # 2 global + 2 local
    loss = criterion(teacher, student, teacher_temp=0.055).item()

    expected, terms = 0.0, 0
    for t, t_out in enumerate(teacher):
        target = F.softmax((t_out.double() - center[0].double()) / 0.055, dim=1)
        for s, s_out in enumerate(student):
            if s == t:
                continue  # the same view is never its own target
            expected += -(target * F.log_softmax(s_out.double() / 0.1, dim=1)).sum(dim=1).mean()
            terms += 1
    assert loss == pytest.approx(float(expected) / terms, rel=1e-5)
    batch_mean = torch.cat(teacher).mean(dim=0)
    assert torch.allclose(criterion.center.view(-1), 0.9 * center.view(-1) + 0.1 * batch_mean, atol=1e-6)


@pytest.mark.numerics
def test_split_batchnorm_equals_separate_forward_per_group(mnist):
    """MoCo's shuffling BN on one device (lightly's SplitBatchNorm): each group normalised with its own statistics."""
    torch.manual_seed(0)
    backbone = build_backbone("resnet10-slim", mnist.info).train()
    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(3))
    reference = copy.deepcopy(backbone)
    split = split_batchnorm(backbone, 2)
    grouped = split(images)
    separate = torch.empty_like(grouped)
    for group in range(2):
        separate[group::2] = reference(images[group::2])
    assert torch.allclose(grouped, separate, atol=1e-5)
    torch.manual_seed(4)
    shuffled, order = batch_shuffle(images)
    assert not torch.allclose(batch_unshuffle(split(shuffled), order), grouped, atol=1e-4)  # other groups, other statistics
    evaluated = batch_unshuffle(copy.deepcopy(split).eval()(shuffled), order)
    plain = merge_split_batchnorm(split)
    assert [type(m) for m in plain.modules()] == [type(m) for m in reference.modules()]  # the ordinary BatchNorm is back
    assert torch.allclose(evaluated, plain.eval()(images), atol=1e-5)


def test_multi_crop_gives_large_and_small_views():
    spec = MultiCropSpec(global_views=(ViewSpec(), ViewSpec(solarize_p=1.0)), local_view=ViewSpec(size=12), local_count=3)
    large, small = multi_crop(torch.rand(5, 3, 28, 28), spec, generator=torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in large] == [(5, 3, 28, 28)] * 2
    assert [tuple(v.shape) for v in small] == [(5, 3, 12, 12)] * 3


def test_preset_options_per_pretrainer():
    swav = make_run_config({"squeeze": {"pretrainer": "swav"}}).squeeze.pretrainer_options
    assert swav["temperature"] == 0.1 and swav["prototypes"] == 100 and swav["epochs"] == 8
    moco_v3 = make_run_config({"squeeze": {"pretrainer": "mocov3"}}).squeeze.pretrainer_options
    assert moco_v3["temperature"] == 0.2 and "prototypes" not in moco_v3
    told = {"squeeze": {"pretrainer": "moco_v2", "pretrainer_options": {"epochs": 3}}}
    assert make_run_config(told).squeeze.pretrainer_options["epochs"] == 3  # the user's setting wins


def test_swav_queue_is_used_once_full_newest_first():
    queue = ProjectionQueue(views=2, length=4, dim=3, device=torch.device("cpu"))
    prototypes = torch.nn.Linear(3, 5, bias=False)
    batches = [[torch.randn(2, 3) for _ in range(2)] for _ in range(3)]
    queue.push(batches[0])
    assert queue.scores(prototypes) is None  # half full: SwAV waits until the queue is full
    queue.push(batches[1])
    queue.push(batches[2])
    scores = queue.scores(prototypes)
    assert [tuple(s.shape) for s in scores] == [(4, 5), (4, 5)]
    assert torch.allclose(queue.items[0], F.normalize(torch.cat([batches[2][0], batches[1][0]]), dim=1))


def test_min_steps_raises_epochs_on_a_small_training_set(mnist_subset, tmp_path):
    """A budget in optimiser steps: 10 steps of batch 64 need 3 epochs of 256 images (4 steps each), 1 of 1024."""
    options = {"epochs": 1, "batch_size": 64, "min_steps": 10, "lr": 0.05}
    config = SqueezeConfig(pretrainer="supervised", pretrainer_options=options, architecture="convnet", architecture_options={"width": 8})
    small = squeeze(config, mnist_subset(256, 10, seed=0), tmp_path / "small", device=torch.device("cpu"), seed=0)
    assert len(small.metrics["loss_per_epoch"]) == 3
    large = squeeze(config, mnist_subset(1024, 10, seed=0), tmp_path / "large", device=torch.device("cpu"), seed=0)
    assert len(large.metrics["loss_per_epoch"]) == 1
