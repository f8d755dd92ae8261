"""Crop sampling: views draw their boxes as torchvision's RandomResizedCrop does (with rejection),
replayable crops stay scdd's own (test_soft_labels.py)."""

import torch
from torchvision.transforms import RandomResizedCrop

from scdd.augment import CropSpec, random_resized_crop
from scdd.augment.crops import torchvision_boxes


def test_view_boxes_are_torchvisions_draws_from_the_given_generator():
    spec, size = CropSpec(scale=(0.3, 1.0)), 28
    boxes = torchvision_boxes(64, spec, size, torch.Generator().manual_seed(5))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)  # torchvision's own sampler, fed the same stream
        expected = [RandomResizedCrop.get_params(torch.empty(1, size, size), [0.3, 1.0], [3 / 4, 4 / 3]) for _ in range(64)]
    for (cx, cy, w, h), (top, left, height, width) in zip(boxes.tolist(), expected, strict=False):
        assert (round(cx * size - w * size / 2), round(cy * size - h * size / 2)) == (left, top)
        assert (round(w * size), round(h * size)) == (width, height)
    assert (boxes[:, :2] - boxes[:, 2:] / 2 >= 0).all() and (boxes[:, :2] + boxes[:, 2:] / 2 <= 1 + 1e-6).all()
    assert torch.equal(torchvision_boxes(64, spec, size, torch.Generator().manual_seed(5)), boxes)  # replayable from the seed


def test_view_boxes_advance_their_generator():
    """Two calls on one generator continue its stream (the next batch gets new boxes), as one call of twice the size."""
    spec, stream = CropSpec(scale=(0.3, 1.0)), torch.Generator().manual_seed(7)
    first, second = torchvision_boxes(32, spec, 28, stream), torchvision_boxes(32, spec, 28, stream)
    assert not torch.equal(first, second)
    assert torch.equal(torch.cat([first, second]), torchvision_boxes(64, spec, 28, torch.Generator().manual_seed(7)))


def test_random_resized_crop_keeps_the_global_generator_untouched():
    images = torch.rand(4, 1, 28, 28)
    state = torch.get_rng_state()
    random_resized_crop(images, generator=torch.Generator().manual_seed(0), crop_generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.get_rng_state(), state)
