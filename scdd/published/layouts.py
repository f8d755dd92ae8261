"""The official file layouts of published ResNet-50 checkpoints, as rules that map their keys onto
torchvision ResNet names (which timm's ResNet shares) or drop them.

Facts from the official repositories' code (see the checkpoint-formats notes in the README): each
format wraps torchvision's names in a prefix and adds training-only state (projection heads,
predictors, prototypes, queues, momentum encoders) that a backbone does not need. Prefixes are
stripped with ``startswith``, never by substring replacement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from scdd.errors import ArtifactError

HEAD_KEYS = ("fc.weight", "fc.bias")


@dataclass(frozen=True)
class Rule:
    """Source keys starting with ``prefix``: kept under their name without it, or dropped."""

    prefix: str
    keep: bool
    label: str


@dataclass
class Conversion:
    """A checkpoint mapped onto torchvision names, and an account of what was kept and dropped."""

    layout: str
    backbone: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor] | None
    kept: list[tuple[str, int]] = field(default_factory=list)
    dropped: list[tuple[str, int]] = field(default_factory=list)


def _keep(prefix: str, label: str) -> Rule:
    return Rule(prefix, True, label)


def _drop(prefix: str, label: str) -> Rule:
    return Rule(prefix, False, label)


def _tensor_dict(obj: Any, where: str, path: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ArtifactError(f"{path}: expected a dict of tensors at {where}; is this the right --format?")
    return dict(obj)


def _container(obj: Any, key: str, path: str, fmt: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping) or key not in obj:
        found = ", ".join(sorted(map(str, obj))[:6]) if isinstance(obj, Mapping) else type(obj).__name__
        raise ArtifactError(f"{path}: a {fmt} checkpoint keeps its weights under {key!r}; found {found}")
    return _tensor_dict(obj[key], f"[{key!r}]", path)


def _has_prefix(state: Mapping[str, Any], prefix: str) -> bool:
    return any(key.startswith(prefix) for key in state)


def _optional_module(state: Mapping[str, Any]) -> str:
    """``"module."`` when every key carries DistributedDataParallel's prefix, else ``""``."""
    return "module." if all(key.startswith("module.") for key in state) else ""


def apply_rules(state: Mapping[str, torch.Tensor], rules: list[Rule], layout: str, path: str) -> Conversion:
    """Map ``state`` with the first matching rule per key; a key no rule matches is an error."""
    kept: dict[str, torch.Tensor] = {}
    counts: dict[Rule, int] = {rule: 0 for rule in rules}
    for key, tensor in state.items():
        rule = next((r for r in rules if key.startswith(r.prefix)), None)
        if rule is None:
            raise ArtifactError(f"{path}: unexpected key {key!r} for a {layout} checkpoint; is this the right --format?")
        counts[rule] += 1
        if rule.keep:
            kept[key[len(rule.prefix) :]] = tensor
    head = {key[3:]: kept.pop(key) for key in HEAD_KEYS if key in kept}
    if head and set(head) != {"weight", "bias"}:
        raise ArtifactError(f"{path}: the linear classifier needs both fc.weight and fc.bias")
    conversion = Conversion(layout=layout, backbone=kept, head=head or None)
    for rule, count in counts.items():
        if count:
            label = f"{rule.label} ({rule.prefix}*)" if rule.prefix else rule.label
            (conversion.kept if rule.keep else conversion.dropped).append((label, count))
    return conversion


def _linear_probe_layout(state: Mapping[str, Any], path: str, fmt: str, pretrain_prefix: str) -> None:
    """``main_lincls`` files hold the whole network under ``module.`` with torchvision names."""
    if "module.conv1.weight" not in state or not all(key.startswith("module.") for key in state):
        raise ArtifactError(
            f"{path}: neither a {fmt} pretraining file ({pretrain_prefix}*) nor its linear-probe file "
            "(module.conv1.*, module.fc.*); is this the right --format?"
        )


def _linear_only(state: Mapping[str, Any]) -> bool:
    return bool(state) and all(key.startswith(("module.linear.", "linear.")) for key in state)


def _refuse_linear_only(state: Mapping[str, Any], path: str, fmt: str) -> None:
    if _linear_only(state):
        raise ArtifactError(
            f"{path}: this {fmt} file holds only a linear classifier; give the backbone file and pass this one with --linear"
        )


def _convert_moco(obj: Any, path: str, fmt: str, label: str, encoder: tuple[str, str, str], dropped) -> Conversion:
    """MoCo pretraining files (``encoder`` = its prefix, what its ``fc`` is, what the rest becomes; and the
    ``dropped`` (prefix, what) parts) or ``main_lincls`` / ``linear-*.pth.tar`` linear-probe files."""
    encoder_prefix, head, kept = encoder
    state = _container(obj, "state_dict", path, fmt)
    if _has_prefix(state, encoder_prefix):
        rules = [
            _drop(f"{encoder_prefix}fc.", head),
            _keep(encoder_prefix, kept),
            *(_drop(prefix, what) for prefix, what in dropped),
        ]
        return apply_rules(state, rules, f"{label} pretraining", path)
    _linear_probe_layout(state, path, fmt, encoder_prefix)
    return apply_rules(state, [_keep("module.", "backbone + linear classifier")], f"{label} linear probe", path)


def convert_moco_v2(obj: Any, path: str) -> Conversion:
    """MoCo v1/v2: pretraining files (``encoder_q`` / ``encoder_k`` / queue) or ``main_lincls`` files."""
    encoder = ("module.encoder_q.", "projection head", "query encoder → backbone")
    dropped = [("module.encoder_k.", "momentum key encoder"), ("module.queue_ptr", "queue pointer"), ("module.queue", "queue of negatives")]
    return _convert_moco(obj, path, "moco_v2", "MoCo v2", encoder, dropped)


def convert_moco_v3(obj: Any, path: str) -> Conversion:
    """MoCo v3: pretraining files (base / momentum encoder, predictor) or ``linear-*.pth.tar`` files."""
    encoder = ("module.base_encoder.", "projector", "base encoder → backbone")
    dropped = [("module.momentum_encoder.", "momentum encoder"), ("module.predictor.", "predictor")]
    return _convert_moco(obj, path, "moco_v3", "MoCo v3", encoder, dropped)


def convert_swav(obj: Any, path: str) -> Conversion:
    """SwAV released weights: a flat dict with projection head and prototypes beside the backbone."""
    state = _tensor_dict(obj["state_dict"] if isinstance(obj, Mapping) and "state_dict" in obj else obj, "the top level", path)
    _refuse_linear_only(state, path, "swav")
    prefix = _optional_module(state)
    rules = [
        _drop(f"{prefix}projection_head.", "projection head"),
        _drop(f"{prefix}prototypes.", "prototypes"),
        _keep(prefix, "backbone"),
    ]
    return apply_rules(state, rules, "SwAV pretraining", path)


def convert_dino(obj: Any, path: str) -> Conversion:
    """DINO: the released backbone (flat, torchvision names) or a full checkpoint (its teacher)."""
    if isinstance(obj, Mapping) and "teacher" in obj:
        state = _tensor_dict(obj["teacher"], "['teacher']", path)
        prefix = _optional_module(state)
        rules = [_keep(f"{prefix}backbone.", "teacher backbone"), _drop(f"{prefix}head.", "teacher DINO head")]
        conversion = apply_rules(state, rules, "DINO full checkpoint (teacher)", path)
        others = sorted(str(key) for key in obj if key != "teacher")
        if others:
            conversion.dropped.append((f"other entries: {', '.join(others)}", len(others)))
        return conversion
    state = _tensor_dict(obj["state_dict"] if isinstance(obj, Mapping) and "state_dict" in obj else obj, "the top level", path)
    _refuse_linear_only(state, path, "dino")
    return apply_rules(state, [_keep(_optional_module(state), "backbone")], "DINO backbone", path)


def convert_torchvision(obj: Any, path: str) -> Conversion:
    """torchvision's supervised ResNets: a flat state dict with the 1000-way fc."""
    state = _tensor_dict(obj, "the top level", path)
    return apply_rules(state, [_keep("", "backbone + linear classifier")], "torchvision", path)


CONVERTERS = {
    "moco_v2": convert_moco_v2,
    "moco_v3": convert_moco_v3,
    "swav": convert_swav,
    "dino": convert_dino,
    "torchvision": convert_torchvision,
}


def linear_head(obj: Any, path: str) -> tuple[dict[str, torch.Tensor], list[tuple[str, int]]]:
    """The linear classifier of a linear-probe file (SwAV/DINO ``module.linear.*``, MoCo ``module.fc.*``)
    and the count of other tensors in it, which are dropped."""
    state = _tensor_dict(obj["state_dict"] if isinstance(obj, Mapping) and "state_dict" in obj else obj, "the top level", path)
    for prefix in ("module.linear.", "linear.", "module.fc.", "fc."):
        if f"{prefix}weight" in state and f"{prefix}bias" in state:
            head = {"weight": state[f"{prefix}weight"], "bias": state[f"{prefix}bias"]}
            others = len(state) - 2
            return head, ([("other tensors of the linear-probe file", others)] if others else [])
    raise ArtifactError(f"{path}: no linear classifier (module.linear.*, linear.*, module.fc.* or fc.*) in this file")


def fill_batch_counters(backbone: dict[str, torch.Tensor]) -> int:
    """Add ``num_batches_tracked = 0`` to BatchNorm layers saved before PyTorch tracked it; returns how many."""
    added = 0
    for key in [k for k in backbone if k.endswith(".running_mean")]:
        counter = key[: -len("running_mean")] + "num_batches_tracked"
        if counter not in backbone:
            backbone[counter] = torch.tensor(0, dtype=torch.long)
            added += 1
    return added
