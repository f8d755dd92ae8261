"""Recovery initializers: noise as the paper starts, real images as the coreset draws them, RDED patches."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from scdd.errors import ConfigError
from scdd.recovery.initializers import (
    InitContext,
    NoiseConfig,
    NoiseInitializer,
    PatchesConfig,
    PatchesInitializer,
    RealConfig,
    RealInitializer,
    auto_factor,
    initial_noise,
    stitch,
    tile_sides,
)
from scdd.stages.coreset import random_real


class Brightness(nn.Module):
    """A stand-in teacher: the logit of an even class is +5 x the image's mean brightness, of an odd
    class -5 x it, so it is surer of an even class the brighter the image, of an odd class the darker."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.sign = torch.tensor([1.0 if c % 2 == 0 else -1.0 for c in range(classes)])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return 5 * pixels.mean(dim=(1, 2, 3))[:, None] * self.sign[None, :]


def _context(data, ipc, seed=3, classifier=None):
    return InitContext(info=data.info, ipc=ipc, seed=seed, device=torch.device("cpu"), classifier=classifier, data=data)


def test_noise_is_the_engines_normalised_gaussian(mnist_subset):
    data = mnist_subset(200, 10, 0)
    init = NoiseInitializer(NoiseConfig())
    init.prepare(_context(data, 2))
    members = [(3, 1), (0, 0)]
    assert torch.equal(init.start(members), initial_noise(data.info, members, 3))  # the paper's start, bit for bit
    assert not init.reads_data


def test_real_random_is_the_random_coreset_of_the_same_seed(mnist_subset):
    data = mnist_subset(300, 10, 1)
    init = RealInitializer(RealConfig(selection="random"))
    context = _context(data, 3, seed=5)
    init.prepare(context)
    images, labels = random_real(data, 3, 5)
    members = [(int(label), index % 3) for index, label in enumerate(labels)]
    assert torch.equal(init.start(members), context.normalise(images))
    assert init.reads_data


def test_real_confident_takes_the_images_the_teacher_is_surest_of(mnist_subset):
    data = mnist_subset(300, 10, 2)
    teacher = Brightness(10)
    init = RealInitializer(RealConfig(selection="confident"))
    context = _context(data, 2, classifier=teacher)
    init.prepare(context)
    mean, std = data.info.mean[0], data.info.std[0]
    for label in range(10):
        members = torch.nonzero(data.train.labels == label).flatten()
        brightness = data.train.images[members].float().mean(dim=(1, 2, 3))
        chosen = (init.start([(label, 0), (label, 1)]) * std + mean).mean(dim=(1, 2, 3)) * 255
        top = brightness.sort(descending=label % 2 == 0).values[:2]
        assert torch.allclose(chosen, top, atol=1e-3)


def test_real_initializers_refuse_to_run_without_data(mnist_subset):
    data = mnist_subset(100, 10, 0)
    context = _context(data, 1)
    context.data = None
    with pytest.raises(ConfigError, match="reads the training images"):
        RealInitializer(RealConfig()).prepare(context)
    with pytest.raises(ConfigError, match="selection"):
        RealConfig(selection="best")


def test_tiles_cover_the_side_and_stitch_places_each_patch():
    assert tile_sides(28, 2) == [14, 14]
    assert tile_sides(28, 3) == [9, 9, 10]
    assert sum(tile_sides(8, 3)) == 8
    patches = torch.stack([torch.full((1, 8, 8), value) for value in (0.1, 0.4, 0.7, 1.0)])
    image = stitch(patches, 2, 8)
    assert image.shape == (1, 8, 8)
    assert torch.allclose(image[0, :4, :4], torch.tensor(0.1))
    assert torch.allclose(image[0, :4, 4:], torch.tensor(0.4))
    assert torch.allclose(image[0, 4:, :4], torch.tensor(0.7))
    assert torch.allclose(image[0, 4:, 4:], torch.tensor(1.0))


def test_patches_keep_the_most_confident_crops(mnist_subset):
    data = mnist_subset(300, 10, 3)
    teacher = Brightness(10)
    confident = PatchesInitializer(PatchesConfig(factor=1, candidates=8))
    confident.prepare(_context(data, 2, classifier=teacher))
    single = PatchesInitializer(PatchesConfig(factor=1, candidates=1))
    single.prepare(_context(data, 2, classifier=teacher))
    even = [(label, index) for label in range(0, 10, 2) for index in range(2)]
    odd = [(label, index) for label in range(1, 10, 2) for index in range(2)]
    # with 8 candidates per kept crop, the kept crops are brighter (even classes) or darker (odd) than without choice
    assert confident.start(even).mean() > single.start(even).mean() + 0.01
    assert confident.start(odd).mean() < single.start(odd).mean() - 0.01
    stitched = PatchesInitializer(PatchesConfig(factor=2))
    stitched.prepare(_context(data, 1, classifier=teacher))
    assert stitched.start([(0, 0)]).shape == (1, 1, 28, 28)
    assert stitched.factor == 2 == auto_factor(28)
    assert auto_factor(8) == 1


def test_patches_are_deterministic_per_seed(mnist_subset):
    data = mnist_subset(200, 10, 4)
    teacher = Brightness(10)
    runs = []
    for seed in (0, 0, 1):
        init = PatchesInitializer(PatchesConfig(factor=2))
        init.prepare(_context(data, 1, seed=seed, classifier=teacher))
        runs.append(init.start([(4, 0)]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])
