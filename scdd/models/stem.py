"""The small-input stem option every built-in architecture takes.

Inputs of at most ``SMALL_INPUT_MAX`` pixels get a CIFAR-style stem, as SRe²L/SC-DD's code does below
64 px: the first convolution keeps full resolution (stride 1) and the stem's max-pool is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

SMALL_INPUT_MAX = 64  # inputs up to this size get the CIFAR-style stem


@dataclass
class StemConfig:
    small_input_stem: str = "auto"  # "auto" (by image size), "yes", "no"


def wants_small_stem(config: StemConfig, image_size: int) -> bool:
    """Whether ``config`` asks for the small-input stem at this image size."""
    if config.small_input_stem == "auto":
        return image_size <= SMALL_INPUT_MAX
    return config.small_input_stem in {"yes", "true", "1"}
