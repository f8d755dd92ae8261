"""BatchNorm running statistics of saved checkpoints: the paper's model-selection criterion.

Theorem 1 argues that BN statistics which fluctuate more across channels carry more information
for recovery; Table 2's "BN-mean Var" column is the channel-wise variance of a layer's running
means, and Eq. 7 gives the Gaussian entropy ``½·log(2πe·σ²)`` of a channel with variance σ².
For every BN layer (k of Eq. 8, forward order) this module reports:

- ``mean_variance``: variance over channels of ``running_mean`` (Table 2, Fig. 4 left);
- ``var_variance``: variance over channels of ``running_var`` (Fig. 4 right);
- ``entropy``: the per-channel Gaussian entropy of Eq. 7, averaged over channels.

Variances over channels are population variances (divide by the channel count). A channel whose
running variance is below the layer's ``eps`` is floored at ``eps`` for the entropy, the same floor
BatchNorm applies when it normalises, so a dead channel cannot make the entropy −∞.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from scdd.artifacts import load_tensors
from scdd.errors import ArtifactError
from scdd.models.classifier import Classifier, batchnorm_layers, running_statistics
from scdd.models.saved import load_model

MODEL_KINDS = ("backbone", "classifier")


@dataclass(frozen=True)
class BNLayerStats:
    """Channel statistics of one BN layer's running mean and variance."""

    index: int  # k in Eq. 8: 0 is the first BN layer
    name: str  # module name inside the backbone
    channels: int
    mean_variance: float  # Var_c(running_mean)
    var_variance: float  # Var_c(running_var)
    entropy: float  # mean_c ½·log(2πe·running_var_c), Eq. 7


@dataclass
class CheckpointBNStats:
    """Every BN layer's statistics of one checkpoint, with the raw running statistics for plotting."""

    path: Path
    label: str
    kind: str
    architecture: str
    pretrainer: str | None
    layers: list[BNLayerStats]
    running_means: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)
    running_vars: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    def layer(self, key: str | int) -> BNLayerStats | None:
        """A layer by index (``0``, ``"0"``) or module name; ``None`` when absent."""
        for stats in self.layers:
            if str(stats.index) == str(key) or stats.name == key:
                return stats
        return None

    def summary(self) -> dict[str, float]:
        """Checkpoint-level numbers: the first BN layer's (Table 2's column) and means over all layers."""
        count = len(self.layers)
        return {
            "first_bn_mean_variance": self.layers[0].mean_variance,
            "first_bn_var_variance": self.layers[0].var_variance,
            "first_bn_entropy": self.layers[0].entropy,
            "mean_mean_variance": sum(s.mean_variance for s in self.layers) / count,
            "mean_var_variance": sum(s.var_variance for s in self.layers) / count,
            "mean_entropy": sum(s.entropy for s in self.layers) / count,
        }


def gaussian_entropy(variance: torch.Tensor) -> torch.Tensor:
    """Eq. 7: the differential entropy ``½·log(2πe·σ²)`` of a Gaussian with variance ``σ²`` (elementwise)."""
    return 0.5 * torch.log(2 * math.pi * math.e * variance)


def layer_statistics(name: str, index: int, layer: nn.modules.batchnorm._BatchNorm) -> BNLayerStats:
    """The statistics of one BN layer, computed in float64."""
    if layer.running_mean is None or layer.running_var is None:
        raise ArtifactError(f"BatchNorm layer {name!r} keeps no running statistics")
    mean = layer.running_mean.detach().double().cpu()
    var = layer.running_var.detach().double().cpu()
    return BNLayerStats(
        index=index,
        name=name,
        channels=mean.numel(),
        mean_variance=mean.var(unbiased=False).item(),
        var_variance=var.var(unbiased=False).item(),
        entropy=gaussian_entropy(var.clamp_min(layer.eps)).mean().item(),
    )


def model_statistics(model: nn.Module) -> list[BNLayerStats]:
    """Statistics of every 2-d BN layer of ``model`` in forward-definition order."""
    return [layer_statistics(name, index, layer) for index, (name, layer) in enumerate(batchnorm_layers(model))]


def inspect_checkpoint(path: str | Path, label: str | None = None) -> CheckpointBNStats:
    """Load a backbone or classifier artifact and compute its BN statistics (a classifier's backbone only)."""
    path = Path(path)
    _, metadata = load_tensors(path)
    kind = metadata.get("kind")
    if kind not in MODEL_KINDS:
        raise ArtifactError(f"{path}: expected a backbone or classifier artifact, found {kind or 'no scdd kind'}")
    model, record = load_model(path, kind)
    backbone = model.backbone if isinstance(model, Classifier) else model  # the kind "classifier" loads a Classifier
    layers = batchnorm_layers(backbone)
    if not layers:
        raise ArtifactError(f"{path}: architecture {record.architecture!r} has no BatchNorm2d layers")
    pretrainer = record.extra.get("pretrainer")
    return CheckpointBNStats(
        path=path,
        label=label or default_label(path, pretrainer),
        kind=kind,
        architecture=record.architecture,
        pretrainer=pretrainer,
        layers=model_statistics(backbone),
        running_means={name: running_statistics(layer)[0].detach().double().cpu() for name, layer in layers},
        running_vars={name: running_statistics(layer)[1].detach().double().cpu() for name, layer in layers},
    )


def default_label(path: Path, pretrainer: str | None) -> str:
    """The pretrainer's name (the file's stem when the artifact names none)."""
    return pretrainer or path.stem


def _run_name(path: Path) -> str:
    """The run folder of ``RUN/stage/file`` (or the file's own folder)."""
    return path.parent.parent.name if len(path.parents) > 2 and path.parent.parent.name else path.parent.name


def inspect_checkpoints(paths: list[str | Path], labels: list[str] | None = None) -> list[CheckpointBNStats]:
    """Several checkpoints side by side; labels default to the pretrainer, then with its run folder and
    kind, then the whole path, whichever first tells them apart."""
    if labels is not None and len(labels) != len(paths):
        raise ArtifactError(f"{len(labels)} labels given for {len(paths)} checkpoints")
    results = [inspect_checkpoint(path, labels[i] if labels else None) for i, path in enumerate(paths)]
    if labels is None:
        for make in (lambda r: f"{r.label} ({_run_name(r.path)} {r.kind})", lambda r: str(r.path)):
            duplicated = {r.label for r in results if sum(o.label == r.label for o in results) > 1}
            for result in results:
                if result.label in duplicated:
                    result.label = make(result)
    return results


def to_json(results: list[CheckpointBNStats]) -> list[dict]:
    """A JSON-ready description of every checkpoint's statistics."""
    return [
        {
            "path": str(result.path),
            "label": result.label,
            "kind": result.kind,
            "architecture": result.architecture,
            "pretrainer": result.pretrainer,
            "summary": result.summary(),
            "layers": [asdict(layer) for layer in result.layers],
        }
        for result in results
    ]
