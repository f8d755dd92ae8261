import torch
from torch import nn

from scdd.matchers.bn import BNMatchConfig, BNStatMatcher


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6))
    for bn in (model[1], model[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return model.eval()


def _reference(model, x, mean_weights, var_weights):
    """Eq. 8 computed directly, layer by layer, without hooks."""
    total, h = 0.0, x
    bn_index = 0
    for layer in model:
        if isinstance(layer, nn.BatchNorm2d):
            mean = h.mean(dim=(0, 2, 3))
            var = ((h - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))
            total = total + mean_weights[bn_index] * (mean - layer.running_mean).norm() + var_weights[bn_index] * (
                var - layer.running_var
            ).norm()
            bn_index += 1
        h = layer(h)
    return total


def test_imbalanced_loss_matches_direct_computation():
    model, x = _model(), torch.randn(8, 1, 10, 10)
    with BNStatMatcher(BNMatchConfig(first_bn_multiplier=10.0)).attach(model) as matcher:
        model(x)
        loss = matcher.loss()
    assert torch.allclose(loss, _reference(model, x, [10.0, 1.0], [10.0, 1.0]), rtol=1e-5)


def test_explicit_per_layer_weights():
    model, x = _model(), torch.randn(8, 1, 10, 10)
    config = BNMatchConfig(mean_weights=(2.0, 0.5), var_weights=(0.0, 3.0))
    with BNStatMatcher(config).attach(model) as matcher:
        model(x)
        assert torch.allclose(matcher.loss(), _reference(model, x, [2.0, 0.5], [0.0, 3.0]), rtol=1e-5)


def test_first_multiplier_scales_only_first_layer():
    model, x = _model(), torch.randn(8, 1, 10, 10)
    terms = {}
    for multiplier in (1.0, 10.0):
        with BNStatMatcher(BNMatchConfig(first_bn_multiplier=multiplier)).attach(model) as matcher:
            model(x)
            terms[multiplier] = matcher.layer_losses()
    assert torch.allclose(terms[10.0][0], 10 * terms[1.0][0])
    assert torch.allclose(terms[10.0][1], terms[1.0][1])


def test_detach_removes_hooks():
    model = _model()
    matcher = BNStatMatcher(BNMatchConfig()).attach(model)
    matcher.detach()
    assert all(not layer._forward_hooks for layer in model if isinstance(layer, nn.BatchNorm2d))
