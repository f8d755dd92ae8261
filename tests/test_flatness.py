"""EDC's flatness term: KL between the teacher's logits on a view of the images and on the same view of their EMA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scdd.errors import ConfigError
from scdd.recovery.regularizers import Flatness, FlatnessConfig, RecoveryStep


def _step(model, latent, step=0):
    flip = lambda x: torch.flip(x, dims=[3])  # noqa: E731  (the step's view: a flip)
    view = flip(latent)
    return RecoveryStep(step, 10, latent, view, model(view), torch.zeros(len(latent), dtype=torch.long), flip, model)


def test_flatness_is_zero_at_the_start_and_the_kl_to_the_ema_afterwards():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 5))
    latent = torch.randn(3, 1, 4, 4, requires_grad=True)
    term = Flatness(FlatnessConfig(weight=2.0, ema_decay=0.75, temperature=3.0))
    term.begin(latent)
    assert term.loss(_step(model, latent)).item() == pytest.approx(0.0, abs=1e-6)
    old = latent.detach().clone()
    with torch.no_grad():
        latent.add_(torch.randn_like(latent))
    term.after_step(latent)
    assert torch.allclose(term.average, 0.75 * old + 0.25 * latent.detach())
    step = _step(model, latent, 1)
    loss = term.loss(step)
    anchor = model(torch.flip(term.average, dims=[3]))
    expected = 2.0 * 9.0 * F.kl_div(F.log_softmax(step.logits / 3, 1), F.log_softmax(anchor / 3, 1), reduction="batchmean", log_target=True)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss.item() > 0
    loss.backward()
    assert latent.grad.abs().sum() > 0  # the images move; the EMA is a constant target


def test_flatness_options_are_checked():
    with pytest.raises(ConfigError, match="ema_decay"):
        FlatnessConfig(ema_decay=1.0)
    with pytest.raises(ConfigError, match="weight"):
        FlatnessConfig(weight=-1)
