"""How stored soft labels are kept.

* ``fp32`` / ``fp16``: the teacher's full logits;
* top-K (``topk > 0``): only the K largest probabilities, softmax at the post-training temperature,
  in fp16, with their class indices. The student's target keeps those K probabilities and spreads
  the remaining mass evenly over the other classes (``SoftTargets.distribution``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scdd.errors import ConfigError
from scdd.labels.targets import SoftTargets

PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class LabelEncoding:
    """How stored labels are kept: full logits in fp32/fp16, or the top-K fp16 probabilities."""

    precision: str = "fp32"
    topk: int = 0  # 0: every class
    temperature: float = 1.0  # temperature of the stored top-K probabilities

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"label precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.topk < 0:
            raise ConfigError(f"label_topk must be >= 0 (0 keeps every class), got {self.topk}")
        if self.temperature <= 0:
            raise ConfigError(f"label temperature must be positive, got {self.temperature}")

    def check(self, num_classes: int) -> None:
        if self.topk > num_classes:
            raise ConfigError(f"label_topk {self.topk} exceeds the teacher's {num_classes} classes")

    @property
    def name(self) -> str:
        return f"top{self.topk}-fp16" if self.topk else self.precision

    def index_dtype(self, num_classes: int) -> torch.dtype:
        if num_classes <= 256:
            return torch.uint8
        return torch.int16 if num_classes <= 32768 else torch.int32

    def bytes_per_label(self, num_classes: int) -> int:
        """Bytes of one image's label for one epoch (the crop plan not included)."""
        if self.topk:
            index_bytes = torch.empty(0, dtype=self.index_dtype(num_classes)).element_size()
            return self.topk * (2 + index_bytes)
        return num_classes * (4 if self.precision == "fp32" else 2)

    def encode(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Tensors to store for teacher ``logits`` ``[..., C]``."""
        if not self.topk:
            return {"logits": logits.float() if self.precision == "fp32" else logits.half()}
        probs = F.softmax(logits.float() / self.temperature, dim=-1)
        values, indices = probs.topk(self.topk, dim=-1)
        return {"topk_probs": values.half(), "topk_indices": indices.to(self.index_dtype(logits.shape[-1]))}

    def decode(self, tensors: dict[str, torch.Tensor]) -> SoftTargets:
        if not self.topk:
            return SoftTargets(logits=tensors["logits"].float())
        return SoftTargets(probs=tensors["topk_probs"].float(), indices=tensors["topk_indices"].long(), temperature=self.temperature)

    @property
    def label_keys(self) -> tuple[str, ...]:
        return ("topk_probs", "topk_indices") if self.topk else ("logits",)
