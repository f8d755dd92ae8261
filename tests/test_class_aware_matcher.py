"""Soft class-aware BN matching (EDC): class statistics from real images, mixed with Eq. 8's global term."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from toy_models import two_bn_model

from scdd.data.base import DatasetInfo, DatasetSplits, ImageTensorDataset
from scdd.errors import ConfigError
from scdd.matchers.bn import BNMatchConfig, BNStatMatcher
from scdd.matchers.class_aware import ClassAwareBNConfig, ClassAwareBNMatcher, class_statistics

pytestmark = pytest.mark.numerics  # the class statistics and distances are compared with direct computations


def _data(count=30, classes=3):
    torch.manual_seed(1)
    info = DatasetInfo("toy", classes, 1, 10, (0.5,), (0.25,), tuple(str(c) for c in range(classes)), hflip=False)
    images = torch.rand(count, 1, 10, 10)
    labels = torch.arange(count) % classes
    return DatasetSplits(info, ImageTensorDataset(images, labels), ImageTensorDataset(images[:3], labels[:3]))


def _bn_inputs(model, x):
    inputs, h = [], x
    for layer in model:
        if isinstance(layer, nn.BatchNorm2d):
            inputs.append(h)
        h = layer(h)
    return inputs


def test_class_statistics_are_each_class_moments_of_each_bn_input():
    model, data = two_bn_model(), _data()
    means, variances = class_statistics(model, data, device=torch.device("cpu"), batch_size=7)
    images, labels = data.train.images, data.train.labels
    for label in range(3):
        inputs = _bn_inputs(model, images[labels == label])
        expected_mean = torch.cat([h.mean(dim=(0, 2, 3)) for h in inputs])
        expected_var = torch.cat([h.var(dim=(0, 2, 3), correction=0) for h in inputs])
        assert torch.allclose(means[label], expected_mean, atol=1e-5)
        assert torch.allclose(variances[label], expected_var, atol=1e-5)


def test_weight_zero_is_eq8_and_weight_one_is_zero_at_the_class_statistics():
    model, data = two_bn_model(), _data()
    x = torch.rand(6, 1, 10, 10)
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    plain = BNStatMatcher(BNMatchConfig(first_bn_multiplier=10.0)).attach(model)
    model(x)
    expected = plain.loss().detach()
    plain.detach()
    matcher = ClassAwareBNMatcher(ClassAwareBNConfig(class_weight=0.0))
    matcher.prepare(model, data, device=torch.device("cpu"))
    matcher.attach(model)
    matcher.set_targets(targets)
    model(x)
    assert torch.allclose(matcher.loss(), expected, rtol=1e-5)
    matcher.detach()
    # class statistics equal to the batch's own class moments: the class-conditional term vanishes
    exact = ClassAwareBNMatcher(ClassAwareBNConfig(class_weight=1.0))
    inputs = _bn_inputs(model, x)
    exact.class_means = torch.stack([torch.cat([h[targets == c].mean(dim=(0, 2, 3)) for h in inputs]) for c in range(3)])
    exact.class_vars = torch.stack([torch.cat([h[targets == c].var(dim=(0, 2, 3), correction=0) for h in inputs]) for c in range(3)])
    exact.attach(model)
    exact.set_targets(targets)
    model(x)
    assert exact.loss().item() < 1e-4
    exact.detach()


def test_class_term_moves_the_images_and_mixes_by_weight():
    model, data = two_bn_model(), _data()
    targets = torch.tensor([0, 1, 2, 0])
    losses = {}
    for weight in (0.0, 0.5, 1.0):
        matcher = ClassAwareBNMatcher(ClassAwareBNConfig(class_weight=weight, first_bn_multiplier=1.0))
        matcher.prepare(model, data, device=torch.device("cpu"))
        x = torch.rand(4, 1, 10, 10, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
        with matcher.attach(model):
            matcher.set_targets(targets)
            model(x)
            loss = matcher.loss()
            loss.backward()
        losses[weight] = loss.item()
        assert x.grad is not None and x.grad.abs().sum() > 0
    assert losses[0.5] == pytest.approx((losses[0.0] + losses[1.0]) / 2, rel=1e-5)
    # weight 1: per layer, the mean over the batch's classes of the mean and variance distances
    with torch.no_grad():
        inputs = _bn_inputs(model, x)
    offsets = [0, inputs[0].shape[1], inputs[0].shape[1] + inputs[1].shape[1]]
    expected = 0.0
    for layer, h in enumerate(inputs):
        span = slice(offsets[layer], offsets[layer + 1])
        for c in range(3):
            own = h[targets == c]
            expected += (own.mean(dim=(0, 2, 3)) - matcher.class_means[c, span]).norm().item() / 3
            expected += (own.var(dim=(0, 2, 3), correction=0) - matcher.class_vars[c, span]).norm().item() / 3
    assert losses[1.0] == pytest.approx(expected, rel=1e-4)


def test_class_aware_needs_its_statistics_and_targets():
    model = two_bn_model()
    with pytest.raises(ConfigError, match="prepare"):
        ClassAwareBNMatcher(ClassAwareBNConfig()).attach(model)
    with pytest.raises(ConfigError, match="class_weight"):
        ClassAwareBNConfig(class_weight=1.5)
    matcher = ClassAwareBNMatcher(ClassAwareBNConfig())
    matcher.prepare(model, _data(), device=torch.device("cpu"))
    with matcher.attach(model):
        model(torch.rand(2, 1, 10, 10))
        with pytest.raises(RuntimeError, match="set_targets"):
            matcher.loss()
    assert ClassAwareBNMatcher.reads_data
