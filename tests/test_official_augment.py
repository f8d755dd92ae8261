"""The official code's augmentations: roll-only and per-batch recovery views, RandomCrop with
padding, MixUp / CutMix drawn once per batch from Beta(α, α), the KD loss without T², and MoCo's
CIFAR demo head and views, and RandAugment replayed per image."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from test_soft_labels import _make_set
from torchvision.transforms import v2

from scdd.augment import CropSpec
from scdd.augment.randaugment import RandAugmentSpec, apply_randaugment, op_names, sample_codes
from scdd.augment.recovery import RecoveryViewSpec, SyntheticViews
from scdd.augment.views import ViewSpec, random_view, rotate_hue
from scdd.config import make_run_config
from scdd.data.base import DatasetInfo
from scdd.distilled import load_distilled
from scdd.errors import ConfigError
from scdd.labels import PlanSpec, SoftTargets, StoredSoftLabels, plan_epoch, render_crops, replay_batches, soft_label_loss
from scdd.recovery.config import RecoverConfig
from scdd.recovery.engine import view_spec
from scdd.ssl import moco_v2
from scdd.ssl.moco_v2 import MoCoV2Config
from scdd.stages.relabel import RelabelConfig, relabel
from scdd.training.distilled import distilled_batches
from scdd.training.optim import decay_groups

CPU = torch.device("cpu")
INFO32 = DatasetInfo("fake", 10, 3, 32, (0.5,) * 3, (0.25,) * 3, tuple(map(str, range(10))), hflip=True)


PARTIAL_CROP = CropSpec(scale=(0.3, 1.0))


def _views(per_batch: bool, crop: CropSpec | None = PARTIAL_CROP, flip_p=0.5, max_shift=4, n=6, size=12):
    spec = RecoveryViewSpec(crop=crop, flip_p=flip_p, max_shift=max_shift, per_batch=per_batch)
    return SyntheticViews(n, size, spec, torch.Generator().manual_seed(0), CPU)


def test_per_batch_views_give_every_image_the_same_view():
    image = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(1)).expand(6, 1, 12, 12)
    for _ in range(5):
        boxes, flips, shifts = _views(True).sample()
        assert all(torch.equal(t, t[:1].expand_as(t)) for t in (boxes, flips, shifts))
    same = _views(True)(image)
    assert torch.equal(same, same[:1].expand_as(same))
    differ = _views(False)(image)  # per image: the same picture gets different views
    assert not torch.allclose(differ, differ[:1].expand_as(differ))


@pytest.mark.parametrize("symmetric", [False, True])
def test_roll_only_views_are_whole_images_rolled_by_0_to_4_pixels(symmetric):
    config = RecoverConfig(crop=False, flip=False, view_scope="batch", jitter=0.125, jitter_symmetric=symmetric)
    spec = view_spec(INFO32, config)
    assert spec.crop is None and spec.flip_p == 0 and spec.max_shift == 4 and spec.per_batch
    shifts = range(-4, 5) if symmetric else range(5)  # SRe²L Tiny: randint(-4, 4); SC-DD CIFAR: randint(0, 4)
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    views = SyntheticViews(3, 32, spec, torch.Generator().manual_seed(0), CPU)
    seen = set()
    for _ in range(60):
        out = views(images)
        rolls = [(a, b) for a in range(-4, 5) for b in range(-4, 5) if torch.allclose(out, torch.roll(images, (a, b), (2, 3)), atol=1e-5)]
        assert len(rolls) == 1 and set(rolls[0]) <= set(shifts)
        seen.add(rolls[0])
    assert {a for a, _ in seen} == {b for _, b in seen} == set(shifts)


def test_padded_crop_shifts_within_padding_and_fills_black():
    spec = PlanSpec(hflip=False, crop="padded", crop_padding=4, image_size=32)
    images = torch.rand(300, 3, 32, 32, generator=torch.Generator().manual_seed(3)) + 0.5
    plan = plan_epoch(300, 0, spec, seed=0)
    crops = render_crops(images, plan, torch.arange(300), 32, CPU)
    shifts = ((plan.boxes[:, :2] - 0.5) * 32).round().long()
    assert torch.allclose((plan.boxes[:, :2] - 0.5) * 32, shifts.float(), atol=1e-5)  # whole pixels
    assert set(shifts.flatten().tolist()) == set(range(-4, 5))
    padded = F.pad(images, (4, 4, 4, 4))
    for image, crop, (dx, dy) in zip(padded, crops, shifts.tolist(), strict=False):
        assert torch.allclose(crop, image[:, 4 + dy : 36 + dy, 4 + dx : 36 + dx], atol=1e-5)
    with pytest.raises(ConfigError, match="padded crops"):
        PlanSpec(crop="padded")  # no image size


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_batch_scope_mixing_draws_one_beta_lambda_per_batch_and_partners_within_it(mix):
    spec = PlanSpec(mix=mix, mix_alpha=0.8, mix_scope="batch", mix_batch=16)
    lambdas = []
    for epoch in range(60):
        plan = plan_epoch(640, epoch, spec, seed=0)
        assert sorted(plan.order.tolist()) == list(range(640))
        for group in plan.order.split(16):
            assert set(plan.partners[group].tolist()) == set(group.tolist())  # a permutation of the batch
            mixed = plan.lambdas if mix == "mixup" else plan.regions
            assert torch.equal(mixed[group], mixed[group[:1]].expand(len(group), *mixed.shape[1:]))
            if mix == "mixup":
                lambdas.append(float(plan.lambdas[group[0]]))
    if mix == "mixup":
        assert stats.kstest(lambdas, stats.beta(0.8, 0.8).cdf).pvalue > 0.01
        assert stats.kstest(lambdas, stats.beta(2.0, 2.0).cdf).pvalue < 0.01


def test_stored_batch_mixed_labels_replay_their_batches(tmp_path):
    teacher, distilled = _make_set(tmp_path, images=40)
    config = RelabelConfig(epochs=2, mix="cutmix", mix_scope="batch", mix_batch=8)
    labels = StoredSoftLabels(relabel(config, teacher, distilled, tmp_path / "labels", device=CPU, seed=0).artifacts["soft_labels"])
    plan, _ = labels.epoch(1)
    images = torch.rand(40, 1, 16, 16)
    batches = [index for index, _, _ in replay_batches(labels, images, 1, torch.randperm(40), 8, image_size=16, device=CPU)]
    assert [b.tolist() for b in batches] == [g.tolist() for g in plan.order.split(8)]
    with pytest.raises(ConfigError, match="mixed per batch of 8"):
        distilled_batches(
            load_distilled(distilled), labels, torch.nn.Identity(), batch_size=16, order=torch.Generator(), seed=0, device=CPU
        )


def test_kd_loss_without_temperature_squared():
    student, teacher = torch.randn(5, 7), torch.randn(5, 7)
    plain = soft_label_loss(student, SoftTargets(logits=teacher), 30.0, squared=False)
    expected = F.kl_div(F.log_softmax(student / 30, 1), F.softmax(teacher / 30, 1), reduction="batchmean")
    assert torch.allclose(plain, expected, atol=1e-7)
    assert torch.allclose(soft_label_loss(student, teacher, 30.0), plain * 900, rtol=1e-5)


def test_run_config_ties_crop_and_mix_batch_to_posttraining():
    config = make_run_config({"relabel": {"crop": "padded", "crop_padding": 2}, "posttrain": {"batch_size": 32}})
    assert (config.posttrain.crop, config.posttrain.crop_padding, config.relabel.mix_batch) == ("padded", 2, 32)


def test_moco_v2_cifar_demo_head_is_one_linear_layer_and_views_have_no_blur():
    config = MoCoV2Config(queue_size=4096, encoder_momentum=0.99, temperature=0.1, head="linear", crop_min_scale=0.08, blur_p=0.0)
    head = moco_v2.projection_head(config, 512)
    assert isinstance(head, torch.nn.Linear) and (head.in_features, head.out_features) == (512, 128) and head.bias is not None
    assert moco_v2.view_spec(config, 0.5).blur_p == 0 and moco_v2.view_spec(config, 0.5).crop.scale == (0.08, 1.0)
    mlp = moco_v2.projection_head(MoCoV2Config(), 512)
    assert sum(isinstance(m, torch.nn.Linear) for m in mlp.modules()) == 2
    with pytest.raises(ConfigError, match="head"):
        MoCoV2Config(head="conv")


def test_randaugment_codes_are_torchvisions_ops_applied_per_image():
    spec = RandAugmentSpec(num_ops=1)
    names = op_names(spec)
    assert len(names) == 14 and names[0] == "Identity"
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(5))

    def code(name, negative=False):
        return names.index(name) * 2 + int(negative)

    codes = torch.tensor([[code("Identity")], [code("Rotate", True)], [code("Brightness")], [code("Posterize")]])
    out = apply_randaugment(images, codes, spec)
    assert torch.equal(out[0], images[0])
    nearest = v2.InterpolationMode.NEAREST
    assert torch.allclose(out[1], v2.functional.rotate(images[1], -9.0, interpolation=nearest), atol=1e-6)  # bin 9 of 0..30°
    assert torch.allclose(out[2], v2.functional.adjust_brightness(images[2], 1.27), atol=1e-6)  # bin 9 of 0..0.9
    assert torch.allclose(out[3], v2.functional.posterize(images[3], 7), atol=1e-6)  # bin 9 of 8..4 bits
    single = torch.stack([apply_randaugment(images[i : i + 1], codes[i : i + 1], spec)[0] for i in range(4)])
    assert torch.equal(out, single)  # grouping by code changes nothing
    drawn = sample_codes(20000, RandAugmentSpec(), generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (20000, 2) and set(drawn.flatten().tolist()) == set(range(28))
    assert abs((drawn % 2).float().mean().item() - 0.5) < 0.02


def test_randaugment_plans_are_stored_and_replayed(tmp_path):
    teacher, distilled = _make_set(tmp_path, images=12)
    config = RelabelConfig(epochs=1, randaugment_ops=2)
    labels = StoredSoftLabels(relabel(config, teacher, distilled, tmp_path / "labels", device=CPU, seed=3).artifacts["soft_labels"])
    stored, _ = labels.epoch(0)
    fresh = plan_epoch(12, 0, config.plan_spec(load_distilled(distilled).info), 3)
    assert torch.equal(stored.augment, fresh.augment) and stored.randaugment == RandAugmentSpec(2, 9)
    images = load_distilled(distilled).images
    crops = render_crops(images, stored, torch.arange(12), 16, CPU)
    plain = render_crops(images, dataclasses.replace(stored, augment=None), torch.arange(12), 16, CPU)
    assert torch.allclose(crops, apply_randaugment(plain, stored.augment, stored.randaugment))
    assert not torch.allclose(crops, plain)


def test_decay_groups_exempt_biases_and_batchnorm_from_weight_decay():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(), torch.nn.Linear(2, 3))
    optimizer = torch.optim.AdamW(decay_groups(model), lr=0.1, weight_decay=0.5)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only the decoupled decay moves a parameter
    optimizer.step()
    for name, p in model.named_parameters():
        expected = before[name] * (1 - 0.1 * 0.5) if p.ndim > 1 else before[name]
        assert torch.allclose(p, expected), name


def test_hue_jitter_turns_colour_views_and_leaves_grayscale_streams_alone():
    """Colour views get torchvision-style hue jitter (MoCo v2/v3, DINO: up to 0.1 of a turn); a half turn maps red
    to cyan at the same luma; shifts are spread over [-hue, hue]; a grayscale batch's views are bit-identical with
    or without it (no random draw is spent on them)."""
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    cyan = rotate_hue(red, torch.tensor([0.5]))[0, :, 0, 0]
    assert cyan[0] < 0.01 and abs(cyan[1] - cyan[2]) < 1e-5 and cyan[1] > 0.5
    assert torch.allclose(rotate_hue(red, torch.tensor([1.0])), red, atol=1e-5)  # a whole turn is the identity

    def views(images, hue):
        spec = ViewSpec(
            crop=CropSpec(scale=(1.0, 1.0)),
            flip_p=0.0,
            jitter_p=1.0,
            brightness=0,
            contrast=0,
            saturation=0,
            hue=hue,
            grayscale_p=0.0,
            blur_p=0.0,
        )
        return random_view(images, spec, generator=torch.Generator().manual_seed(0), crop_generator=torch.Generator().manual_seed(1))

    grey = torch.rand(8, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(views(grey, 0.0), views(grey, 0.1))
    colour = torch.rand(256, 3, 1, 1, generator=torch.Generator().manual_seed(3)) * 0.5 + 0.25  # in gamut after turning
    turned = views(colour, 0.1)
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    before, after = (torch.einsum("ij,njhw->nihw", to_yiq, x)[:, :, 0, 0] for x in (colour, turned))
    assert torch.allclose(before[:, 0], after[:, 0], atol=1e-5)  # luma kept
    angle = (torch.atan2(after[:, 2], after[:, 1]) - torch.atan2(before[:, 2], before[:, 1])) / (2 * math.pi)
    angle = (angle + 0.5) % 1.0 - 0.5
    assert angle.abs().max() <= 0.1 + 1e-4 and angle.abs().max() > 0.09 and abs(float(angle.mean())) < 0.02
