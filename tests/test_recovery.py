"""Recovery engine: views, determinism, reporting, priors, options, and the direction of its results."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from scdd.align.linear_probe import LinearProbe, LinearProbeConfig
from scdd.augment import CropSpec, apply_crops, sample_boxes, sample_flips
from scdd.augment.recovery import shifted_crop_grid
from scdd.errors import ConfigError
from scdd.models.build import build_backbone, build_classifier
from scdd.models.classifier import Classifier, batchnorm_state
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import recovery_batches, synthesize
from scdd.recovery.priors import l2_prior, total_variation
from scdd.ssl.supervised import SupervisedConfig, SupervisedPretrainer
from scdd.stages.recover import teacher_agreement

CPU = torch.device("cpu")
QUICK = RecoverConfig(ipc=1, iterations=4, batch_size=10, lr=0.25, alpha_bn=0.3, crop_min_scale=0.5)


@pytest.fixture(scope="module")
def teacher(mnist_subset):
    """A quick linear-probed model for the mechanics: random ResNet-10 features whose BN statistics
    are those of real digits, and a linear head trained on them (about half the digits right)."""
    torch.manual_seed(0)
    data = mnist_subset(1500, 200, seed=0)
    classifier = build_classifier("resnet10-slim", data.info)
    for module in classifier.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batches
    classifier.train()
    with torch.no_grad():
        for start in range(0, 1500, 250):
            classifier(data.train.batch(torch.arange(start, start + 250))[0])
    probe = LinearProbe(LinearProbeConfig(epochs=30, augment=False, lr=0.1))
    return probe.align(classifier, data, device=CPU, seed=0), data


@pytest.mark.numerics
def test_crop_grid_with_shifts_is_a_roll_of_the_crop():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 12, 12, generator=gen)
    boxes = sample_boxes(6, CropSpec(scale=(0.3, 1.0)), generator=gen)
    flips = sample_flips(6, 0.5, generator=gen)
    shifts = torch.randint(0, 5, (6, 2), generator=gen)
    grid = shifted_crop_grid(boxes, flips, shifts, 12)
    got = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    crops = apply_crops(images, boxes, flips, 12)
    expected = torch.stack([torch.roll(crop, tuple(shift.tolist()), dims=(1, 2)) for crop, shift in zip(crops, shifts, strict=False)])
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, crops, atol=1e-2)  # the shifts did move the pixels


def test_recovery_reaches_targets_and_matches_statistics(mnist_subset):
    """The direction of the done-criterion (≥ 95% of the recovered images in their class and L_BN
    down ≥ 10× on the MoCo v3 teacher, see benchmarks/recover_quality.py) at a test-sized budget:
    a teacher squeezed with labels for two short epochs (~90% held-out) and linear-probed."""
    data = mnist_subset(2000, 100, seed=0)
    torch.manual_seed(0)
    squeeze = SupervisedPretrainer(SupervisedConfig(epochs=2, batch_size=64, lr=0.1, weight_decay=0.0, crop_min_scale=0.5))
    backbone = squeeze.pretrain(build_backbone("resnet10-slim", data.info), data, device=CPU, seed=0).backbone
    classifier = Classifier(backbone, 10, data.info.mean, data.info.std)
    classifier = LinearProbe(LinearProbeConfig(epochs=30, augment=False, lr=0.1)).align(classifier, data, device=CPU, seed=0)
    before = batchnorm_state(classifier)
    start = synthesize(classifier, data.info, dataclasses.replace(QUICK, iterations=1), device=CPU, seed=0)
    result = synthesize(classifier, data.info, dataclasses.replace(QUICK, iterations=100), device=CPU, seed=0)
    assert result.loss_bn.shape == result.loss_ce.shape == (1, 100)
    assert result.loss_bn[0, -5:].mean() < result.loss_bn[0, 0] / 5
    assert result.loss_ce[0, -5:].mean() < result.loss_ce[0, 0] / 5
    assert teacher_agreement(classifier, start.images, start.labels, CPU) <= 30.0
    assert teacher_agreement(classifier, result.images, result.labels, CPU) >= 50.0
    assert 0 <= result.images.min() and result.images.max() <= 1
    after = batchnorm_state(classifier)
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_any_subset_recomputes_bit_identically(teacher):
    classifier, data = teacher
    config = dataclasses.replace(QUICK, ipc=2, batch_size=15)
    assert [len(batch) for batch in recovery_batches(10, 2, 15)] == [15, 5]
    full = synthesize(classifier, data.info, config, device=CPU, seed=3)
    wanted = [(7, 1), (2, 0), (9, 1)]
    part = synthesize(classifier, data.info, config, device=CPU, seed=3, members=wanted)
    for row, (label, index) in enumerate(wanted):
        match = (full.labels == label) & (full.ipc_index == index)
        assert torch.equal(part.images[row], full.images[match][0])
    other_seed = synthesize(classifier, data.info, config, device=CPU, seed=4, members=wanted[:1])
    assert not torch.equal(other_seed.images[0], part.images[0])


def test_progress_reads_losses_only_every_25_steps_and_at_the_end(teacher):
    classifier, data = teacher
    reports = []

    class Recorder:
        def task(self, description, total):
            return self

        def advance(self, steps=1, **metrics):
            reports.append(metrics)

        def close(self):
            pass

        def log(self, message):
            pass

    config = dataclasses.replace(QUICK, iterations=30)
    result = synthesize(classifier, data.info, config, device=CPU, seed=0, progress=Recorder())
    assert len(reports) == 30
    assert [step for step, metrics in enumerate(reports, start=1) if metrics] == [25, 30]
    assert reports[-1]["bn"] == pytest.approx(float(result.loss_bn[0, -1]), rel=1e-6)


def test_learnable_matcher_weights_are_optimised_with_the_images(teacher):
    classifier, data = teacher
    fixed = synthesize(classifier, data.info, QUICK, device=CPU, seed=0)
    config = dataclasses.replace(QUICK, matcher_options={"learnable": True, "learnable_lr": 0.5})
    learned = synthesize(classifier, data.info, config, device=CPU, seed=0)
    assert torch.equal(learned.loss_bn[0, 0], fixed.loss_bn[0, 0])  # same start: log-scales begin at 0
    assert not torch.equal(learned.images, fixed.images)


def _conv_inputs(classifier: Classifier, record: list[torch.Tensor]) -> list[torch.utils.hooks.RemovableHandle]:
    convs = [m for m in classifier.modules() if isinstance(m, torch.nn.Conv2d)]
    return [conv.register_forward_hook(lambda _m, args, out: record.append((args[0], out))) for conv in convs]


@pytest.mark.numerics
def test_channels_last_and_bf16_autocast_options(teacher):
    """The options promise the same objective computed another way; what they promise is checked where
    rounding bounds it. At step 0 (the same noise) both paths evaluate one function: a sum of K
    products in any order is within γ_K·Σ|terms| (γ_K = K·u/(1 - K·u), u = 2^-24), and summed over
    ResNet-10-slim's layers at this batch that is 2.6e-3 relative for the forward, twice that between
    two paths; bf16 autocast rounds every convolution's operands and result to 8 bits (3·2^-8 per
    layer). Later steps are not bounded: Adam's first update is ±lr wherever a gradient is non-zero,
    so a gradient at rounding level moves a pixel by lr in either direction, and the images part."""
    check_layouts_and_autocast(*teacher, CPU, plain="auto", other="channels-last")  # auto: contiguous


def check_layouts_and_autocast(classifier: Classifier, data, device: torch.device, *, plain: str, other: str) -> None:
    """Recovery with ``memory_format=plain`` (NCHW convolutions), ``other`` (channels-last ones) and bf16
    autocast on ``device``: the step-0 objectives within the bounds derived above."""
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = _conv_inputs(classifier, record)
    try:
        reference = synthesize(classifier, data.info, dataclasses.replace(QUICK, memory_format=plain), device=device, seed=0)
        assert record and not any(x.is_contiguous(memory_format=torch.channels_last) for x, _ in record if x.shape[1] > 1)
        record.clear()
        channels_last = synthesize(classifier, data.info, dataclasses.replace(QUICK, memory_format=other), device=device, seed=0)
        assert record and all(x.is_contiguous(memory_format=torch.channels_last) and x.dim() == 4 for x, _ in record)
        record.clear()
        bf16 = synthesize(classifier, data.info, dataclasses.replace(QUICK, autocast=True), device=device, seed=0)
        assert record and all(out.dtype == torch.bfloat16 for _, out in record)
    finally:
        for hook in hooks:
            hook.remove()
    for got in (channels_last, bf16):
        assert torch.isfinite(got.images).all() and torch.isfinite(got.loss_bn).all()
    assert torch.allclose(channels_last.loss_bn[:, 0], reference.loss_bn[:, 0], rtol=2 * 2.6e-3, atol=0)
    assert torch.allclose(channels_last.loss_ce[:, 0], reference.loss_ce[:, 0], rtol=2 * 2.6e-3, atol=1e-6)
    assert torch.allclose(bf16.loss_bn[:, 0], reference.loss_bn[:, 0], rtol=0.05)


def test_priors_match_their_definitions():
    image = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # right: (0-1, 2-4), down: (0-2, 1-4), diagonal (1,0)-(0,1): 2-1, anti-diagonal (0,0)-(1,1): 0-4
    expected = torch.tensor([1.0, 2.0]).norm() + torch.tensor([2.0, 3.0]).norm() + 1.0 + 4.0
    assert torch.allclose(total_variation(image), expected)
    assert torch.allclose(l2_prior(torch.ones(2, 1, 2, 2)), torch.tensor(2.0))


def test_priors_change_the_objective(teacher):
    classifier, data = teacher
    plain = synthesize(classifier, data.info, QUICK, device=CPU, seed=0)
    smooth = synthesize(classifier, data.info, dataclasses.replace(QUICK, tv_weight=0.05), device=CPU, seed=0)
    assert total_variation(smooth.images) < total_variation(plain.images)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"crop_min_scale": 0.0}, "0 < crop_min_scale"),
        ({"jitter": 1.5}, "recover.jitter"),
        ({"optimizer": "sgd"}, "recover.optimizer must be one of adam, adamw"),
        ({"alpha_bn": -1.0}, "recover.alpha_bn must not be negative"),
        ({"crop": False, "crop_schedule": "curriculum"}, "recover.crop_schedule needs recover.crop=true"),
    ],
)
def test_bad_recovery_settings_name_the_problem(change, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        RecoverConfig(**change)


def test_members_outside_the_set_are_an_error(teacher):
    classifier, data = teacher
    with pytest.raises(ConfigError, match="class 10, ipc-index 0"):
        synthesize(classifier, data.info, QUICK, device=CPU, seed=0, members=[(10, 0)])


def test_default_recovery_moves_the_pixels_at_batch_100(teacher):
    """With ten images per class in a batch, L_CE and L_BN give each pixel a gradient 1/100 of a
    single image's. The default (no weight decay, the official code's) must still spread the images
    away from their start; the tables' coupled decay of 1e-4 held them there at α_BN 0.03 (pixel std
    1.04× the start's after 40 steps, against 1.29× without it)."""
    classifier, data = teacher
    config = RecoverConfig(ipc=10, iterations=40, batch_size=100, alpha_bn=0.03, crop_min_scale=0.5)
    start = synthesize(classifier, data.info, dataclasses.replace(config, iterations=1), device=CPU, seed=0)
    result = synthesize(classifier, data.info, config, device=CPU, seed=0)
    assert result.images.std() > 1.15 * start.images.std()
