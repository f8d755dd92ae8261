"""Crop-scale schedules of recovery: constant (the paper's) and CDA's easy-to-hard curriculum."""

from __future__ import annotations

import pytest

from scdd.errors import ConfigError
from scdd.recovery.schedules import ConstantSchedule, CurriculumConfig, CurriculumSchedule


def test_constant_is_the_configured_range_at_every_step():
    schedule = ConstantSchedule()
    assert {schedule.scale(step, 100, (0.08, 1.0)) for step in range(100)} == {(0.08, 1.0)}


@pytest.mark.parametrize("shape", ["cosine", "linear", "step"])
def test_curriculum_falls_from_large_crops_to_the_configured_minimum(shape):
    schedule = CurriculumSchedule(CurriculumConfig(start_min_scale=0.9, milestone=0.5, shape=shape))
    lows = [schedule.scale(step, 200, (0.2, 1.0))[0] for step in range(200)]
    assert lows[0] == pytest.approx(0.9)
    assert all(later <= earlier + 1e-12 for earlier, later in zip(lows, lows[1:], strict=False))  # easy to hard, never back
    assert lows[100:] == [pytest.approx(0.2)] * 100  # at the milestone and after: the configured range
    assert {schedule.scale(step, 200, (0.2, 1.0))[1] for step in range(200)} == {1.0}
    if shape == "cosine":
        assert lows[50] == pytest.approx(0.2 + 0.7 * 0.5)
        assert lows[25] == pytest.approx(0.2 + 0.7 * 0.5 * (1 + 2**-0.5))  # cos(π/4) a quarter of the way
    if shape == "linear":
        assert lows[25] == pytest.approx(0.2 + 0.7 * 0.75)
    if shape == "step":
        assert lows[99] == pytest.approx(0.9)


def test_curriculum_start_never_exceeds_the_upper_scale():
    schedule = CurriculumSchedule(CurriculumConfig(start_min_scale=1.0))
    assert schedule.scale(0, 10, (0.3, 0.6)) == (0.6, 0.6)


def test_curriculum_options_are_checked():
    with pytest.raises(ConfigError, match="shape"):
        CurriculumConfig(shape="exponential")
    with pytest.raises(ConfigError, match="milestone"):
        CurriculumConfig(milestone=0.0)
    with pytest.raises(ConfigError, match="start_min_scale"):
        CurriculumConfig(start_min_scale=1.5)
