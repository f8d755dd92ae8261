"""Post-training's EMA student (``posttrain.ema_decay``, EDC's EMA-based evaluation): the saved weights
are timm's moving average of the student's, checked by hand on a two-step run, and the option is off by default."""

import dataclasses

import pytest
import torch
from hard_inputs import _distilled as distilled_file
from hard_inputs import _info

from scdd.config import make_run_config
from scdd.distilled import DistilledSet
from scdd.errors import ConfigError
from scdd.models.saved import load_model
from scdd.stages.posttrain import PosttrainConfig, posttrain, train_student

CPU = torch.device("cpu")
# one step per epoch (8 images, batch 8); the cosine spans 10 epochs in every run, so a 1-epoch and a
# 2-epoch run take the same first step
TWO_STEPS = PosttrainConfig(students=("resnet10-slim",), epochs=2, batch_size=8, labels="hard", schedule_epochs=10, lr=0.01)


def _distilled() -> DistilledSet:
    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    return DistilledSet(images, torch.arange(8) % 4, _info(), 2, "test")


def _weights(config: PosttrainConfig) -> dict[str, torch.Tensor]:
    student, _ = train_student("resnet10-slim", _distilled(), None, config, device=CPU, seed=3)
    return {key: value.clone() for key, value in student.state_dict().items()}


def test_the_saved_student_is_the_average_of_the_last_two_steps():
    first = _weights(dataclasses.replace(TWO_STEPS, epochs=1))  # w1: the weights after step 1
    last = _weights(TWO_STEPS)  # w2
    decay = 0.75
    average = _weights(dataclasses.replace(TWO_STEPS, ema_decay=decay))
    # timm counts updates from 1; the first copies w1, the second gives decay·w1 + (1 − decay)·w2
    for key, value in average.items():
        if value.is_floating_point():
            assert torch.allclose(value, decay * first[key] + (1 - decay) * last[key], atol=1e-6), key
        else:
            assert torch.equal(value, last[key]), key  # BN's step counters are copied, not averaged
    changed = [key for key in last if last[key].is_floating_point() and not torch.equal(first[key], last[key])]
    assert changed and all(not torch.allclose(average[key], last[key]) for key in changed)


def test_ema_is_off_in_the_defaults_reachable_from_set_and_recorded(tmp_path):
    assert PosttrainConfig().ema_decay == 0.0
    config = make_run_config({"posttrain": {"ema_decay": "0.999", "batch_size": "32", "schedule_epochs": "600"}})
    assert (config.posttrain.ema_decay, config.posttrain.batch_size, config.posttrain.schedule_epochs) == (0.999, 32, 600)
    with pytest.raises(ConfigError, match="ema_decay must be in"):
        PosttrainConfig(ema_decay=1.0)
    path = distilled_file(tmp_path / "distilled.safetensors")
    config = dataclasses.replace(TWO_STEPS, epochs=1, ema_decay=0.5)
    result = posttrain(config, path, None, tmp_path / "p", device=CPU, seed=0)
    _, record = load_model(result.artifacts["resnet10-slim"], "classifier")
    assert record.extra["ema_decay"] == 0.5
    plain = posttrain(dataclasses.replace(config, ema_decay=0.0), path, None, tmp_path / "q", device=CPU, seed=0)
    assert "ema_decay" not in load_model(plain.artifacts["resnet10-slim"], "classifier")[1].extra
