import copy

import pytest
import torch
from torch import nn
from toy_models import two_bn_model

from scdd.errors import ConfigError
from scdd.matchers.bn import BNMatchConfig, BNStatMatcher, UniformBNConfig, build_uniform
from scdd.matchers.moments import batch_moments
from scdd.models.classifier import batchnorm_state

pytestmark = pytest.mark.numerics  # every test here compares two computations of the same statistics


def _reference(model, x, mean_weights, var_weights):
    """Eq. 8 computed directly, layer by layer, without hooks (against the running statistics as
    they are after the forward pass, which a layer in training mode updates)."""
    h, moments = x, []
    for layer in model:
        if isinstance(layer, nn.BatchNorm2d):
            mean = h.mean(dim=(0, 2, 3))
            moments.append((layer, mean, ((h - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))))
        h = layer(h)
    total = 0.0
    for (layer, mean, var), mean_weight, var_weight in zip(moments, mean_weights, var_weights, strict=False):
        total = total + mean_weight * (mean - layer.running_mean).norm() + var_weight * (var - layer.running_var).norm()
    return total


def test_imbalanced_loss_matches_direct_computation():
    model, x = two_bn_model(), torch.randn(8, 1, 10, 10)
    with BNStatMatcher(BNMatchConfig(first_bn_multiplier=10.0)).attach(model) as matcher:
        model(x)
        loss = matcher.loss()
    assert torch.allclose(loss, _reference(model, x, [10.0, 1.0], [10.0, 1.0]), rtol=1e-5)


def test_explicit_per_layer_weights():
    model, x = two_bn_model(), torch.randn(8, 1, 10, 10)
    config = BNMatchConfig(mean_weights=(2.0, 0.5), var_weights=(0.0, 3.0))
    with BNStatMatcher(config).attach(model) as matcher:
        model(x)
        assert torch.allclose(matcher.loss(), _reference(model, x, [2.0, 0.5], [0.0, 3.0]), rtol=1e-5)


def test_first_multiplier_scales_only_first_layer():
    model, x = two_bn_model(), torch.randn(8, 1, 10, 10)
    terms = {}
    for multiplier in (1.0, 10.0):
        with BNStatMatcher(BNMatchConfig(first_bn_multiplier=multiplier)).attach(model) as matcher:
            model(x)
            terms[multiplier] = matcher.layer_losses()
    assert torch.allclose(terms[10.0][0], 10 * terms[1.0][0])
    assert torch.allclose(terms[10.0][1], terms[1.0][1])


def test_detach_leaves_no_layer_patched():
    """``attach`` replaces each BN layer's ``forward`` with an instance attribute; ``detach`` must remove
    every one (and add no hook), so the model runs its own forward again."""
    model = two_bn_model()
    layers = [layer for layer in model.modules() if isinstance(layer, nn.BatchNorm2d)]
    matcher = BNStatMatcher(BNMatchConfig()).attach(model)
    assert layers and all("forward" in layer.__dict__ for layer in layers)
    matcher.detach()
    assert not [layer for layer in layers if "forward" in layer.__dict__ or layer._forward_hooks or layer._forward_pre_hooks]
    assert all(layer.forward.__func__ is type(layer).forward for layer in layers)


# ----------------------------------------------------------------------------- fused statistics and gradients


def _double_model():
    model = two_bn_model().double()
    for bn in (model[1], model[4]):
        bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
    return model


def test_fused_gradient_matches_autograd_reference():
    """The fused backward (BN eval + moments in one node) gives autograd's gradient of Eq. 8 + a head loss."""
    model = _double_model()
    x = torch.randn(8, 1, 10, 10, dtype=torch.double, requires_grad=True)

    def reference():
        h, total, k = x, 0.0, 0
        for layer in model:
            if isinstance(layer, nn.BatchNorm2d):
                mean, var = h.mean(dim=(0, 2, 3)), h.var(dim=(0, 2, 3), unbiased=False)
                weight = (3.0, 1.0)[k]
                total = total + weight * ((mean - layer.running_mean).norm() + (var - layer.running_var).norm())
                k += 1
            h = layer(h)
        return total + h.square().mean()

    expected = torch.autograd.grad(reference(), x)[0]
    with BNStatMatcher(BNMatchConfig(first_bn_multiplier=3.0)).attach(model) as matcher:
        output = model(x)
        got = torch.autograd.grad(matcher.loss() + output.square().mean(), x)[0]
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_training_mode_layers_use_plain_autograd():
    model = _double_model().train()
    twin = copy.deepcopy(model)
    x = torch.randn(8, 1, 10, 10, dtype=torch.double)
    with BNStatMatcher(BNMatchConfig(first_bn_multiplier=10.0)).attach(model) as matcher:
        model(x)
        loss = matcher.loss()
    assert torch.allclose(loss, _reference(twin, x, [10.0, 1.0], [10.0, 1.0]), rtol=1e-9)


@pytest.mark.parametrize("case", ["nchw", "channels_last", "large_mean", "constant_channel"])
def test_batch_moments_match_reference(case):
    x = torch.randn(16, 8, 12, 12, generator=torch.Generator().manual_seed(0)) * 2 + 0.5
    if case == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    if case == "large_mean":
        x[:, 3] = x[:, 3] * 0.01 + 50  # E[x²] − μ² would cancel: the exact kernel must take over
    if case == "constant_channel":
        x[:, 5] = 0.0
    var, mean = torch.var_mean(x.double(), dim=(0, 2, 3), correction=0)
    got_mean, got_var = batch_moments(x)
    assert torch.allclose(got_mean.double(), mean, rtol=1e-5, atol=1e-6)
    assert torch.allclose(got_var.double(), var, rtol=1e-4, atol=1e-7)


def test_matching_leaves_running_statistics_and_forward_untouched():
    model = two_bn_model()
    before = batchnorm_state(model)
    x = torch.randn(8, 1, 10, 10, requires_grad=True)
    with BNStatMatcher(BNMatchConfig()).attach(model) as matcher:
        assert all("forward" in layer.__dict__ for layer in model if isinstance(layer, nn.BatchNorm2d))
        (matcher.loss() if model(x) is not None else None).backward()
    after = batchnorm_state(model)
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert all("forward" not in layer.__dict__ for layer in model if isinstance(layer, nn.BatchNorm2d))


def test_uniform_bn_matcher_weighs_every_layer_one():
    model, x = two_bn_model(), torch.randn(8, 1, 10, 10)
    with build_uniform(UniformBNConfig()).attach(model) as matcher:
        model(x)
        assert torch.allclose(matcher.loss(), _reference(model, x, [1.0, 1.0], [1.0, 1.0]), rtol=1e-5)
    with build_uniform(UniformBNConfig(first_bn_multiplier=4.0)).attach(model) as matcher:
        model(x)
        assert torch.allclose(matcher.loss(), _reference(model, x, [4.0, 1.0], [4.0, 1.0]), rtol=1e-5)


def test_wrong_number_of_layer_weights_names_the_problem():
    with pytest.raises(ConfigError, match="mean_weights has 3 values but the model has 2 BatchNorm layers"):
        BNStatMatcher(BNMatchConfig(mean_weights=(1.0, 1.0, 1.0))).attach(two_bn_model())


def test_learnable_weights_balance_layers_and_reset():
    """Optimising only the log-scales drives each layer's weighted term to its configured weight
    (β_k‖·‖ → β⁰_k): the learned coefficient is β⁰_k divided by the layer's mismatch."""
    model, x = two_bn_model(), torch.randn(8, 1, 10, 10)
    matcher = BNStatMatcher(BNMatchConfig(first_bn_multiplier=2.0, learnable=True, learnable_lr=0.2)).attach(model)
    (group,) = matcher.param_groups()
    optimizer = torch.optim.Adam(group["params"], lr=group["lr"])
    start = matcher.weights().clone()
    model.requires_grad_(False)
    model(x)  # the input is fixed, so one forward pass serves every step
    for _ in range(150):
        optimizer.zero_grad()
        matcher.loss().backward()
        optimizer.step()
    terms = (matcher.weights() * matcher._distances()).detach()
    assert torch.allclose(terms, torch.tensor([[2.0, 1.0], [2.0, 1.0]]), rtol=0.05)
    matcher.reset()
    assert torch.equal(matcher.weights().detach(), start.detach())
    matcher.detach()
