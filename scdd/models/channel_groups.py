"""Which channels of a network can be pruned: conv → BN pairs whose output only feeds convolutions
or linear layers through channel-wise operations.

The model is traced with ``torch.fx``. A BatchNorm channel is prunable when removing it changes no
other tensor's shape: its producing convolution has no other user, and every path from the BN
output reaches a consumer (a convolution's input, or a linear layer after a channel-major
flatten) through operations that treat each channel on its own (activations, pooling, dropout).
A path that meets anything else (a residual ``add``, a ``cat``, the model output) makes the whole
group unprunable. On a ResNet this keeps exactly the channels inside a block (``conv1``/``bn1`` of a
BasicBlock, ``conv1``/``conv2`` of a Bottleneck) and leaves every block output, which a residual
sum couples across blocks, at its width. On a VGG-style ``features`` chain every conv/BN layer is
prunable, the last one included when a global pool + flatten leads to the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

ELEMENTWISE_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout2d,
)
POOLING_MODULES = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
ELEMENTWISE_FUNCTIONS = {F.relu, F.relu6, F.leaky_relu, F.gelu, F.silu, F.hardswish, F.dropout, torch.relu, torch.sigmoid, torch.tanh}
POOLING_FUNCTIONS = {F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d}
ELEMENTWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh", "contiguous"}
SPATIAL_DIMS = ({2, 3}, {-2, -1})


@dataclass(frozen=True)
class Consumer:
    """A layer that reads a group's channels: a ``conv``'s input channels, or a ``linear`` layer's
    input features after a channel-major flatten (each channel owns ``in_features / channels``
    consecutive features, its flattened spatial positions)."""

    name: str
    kind: str  # "conv" or "linear"


@dataclass(frozen=True)
class ChannelGroup:
    """One prunable set of channels: the conv that makes them, the BN that scales them (named by
    ``bn``, which is also the group's name), and every layer that reads them."""

    conv: str
    bn: str
    consumers: tuple[Consumer, ...]


class _Tracer(torch.fx.Tracer):
    """fx tracer that keeps any sub-module it cannot trace (shape-dependent control flow) as an
    opaque leaf; channels that flow into such a leaf are simply not prunable."""

    def __init__(self, traceable: dict[int, bool] | None = None) -> None:
        super().__init__()
        self._traceable = {} if traceable is None else traceable  # shared by nested tracers

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        if super().is_leaf_module(module, qualified_name):
            return True
        return not self._can_trace(module)

    def _can_trace(self, module: nn.Module) -> bool:
        key = id(module)
        if key not in self._traceable:
            self._traceable[key] = True  # provisional, guards against recursion
            try:
                _Tracer(self._traceable).trace(module)
            except Exception:  # noqa: BLE001 - any tracing failure means "treat as a leaf"
                self._traceable[key] = False
        return self._traceable[key]


def trace(model: nn.Module) -> torch.fx.Graph:
    """The model's fx graph (untraceable sub-modules appear as single ``call_module`` nodes)."""
    return _Tracer().trace(model)


def find_channel_groups(model: nn.Module) -> list[ChannelGroup]:
    """Every prunable conv → BN channel group of ``model``, in forward order."""
    graph = trace(model)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[_module_name(node)] = calls.get(_module_name(node), 0) + 1
    groups = []
    for node in graph.nodes:
        if not _is_module(node, modules, nn.BatchNorm2d) or calls[_module_name(node)] != 1:
            continue
        bn = modules[_module_name(node)]
        producer = node.args[0] if node.args else None
        if not (bn.affine and isinstance(producer, torch.fx.Node) and _is_module(producer, modules, nn.Conv2d)):
            continue
        conv = modules[_module_name(producer)]
        if conv.groups != 1 or calls[_module_name(producer)] != 1 or list(producer.users) != [node]:
            continue
        consumers = _consumers(node, modules, calls)
        if consumers:
            groups.append(ChannelGroup(conv=_module_name(producer), bn=_module_name(node), consumers=tuple(consumers)))
    return groups


def _module_name(node: torch.fx.Node) -> str:
    """A ``call_module`` node's target: the qualified name of the module it calls."""
    assert isinstance(node.target, str), node.target
    return node.target


def _is_module(node: torch.fx.Node, modules: dict[str, nn.Module], kind: type) -> bool:
    return node.op == "call_module" and isinstance(modules.get(_module_name(node)), kind)


def _consumers(bn_node: torch.fx.Node, modules: dict[str, nn.Module], calls: dict[str, int]) -> list[Consumer] | None:
    """Walk forward from the BN output; ``None`` when any path leaves the channel-wise world."""
    consumers: list[Consumer] = []
    pending = [(user, bn_node, False) for user in bn_node.users]
    while pending:
        node, source, flat = pending.pop()
        if not node.args or node.args[0] is not source or _other_inputs(node):
            return None  # the channels are not the (only) tensor this node reads
        if node.op == "call_module" and calls.get(_module_name(node)) == 1:
            module = modules[_module_name(node)]
            if isinstance(module, nn.Conv2d) and not flat and module.groups == 1:
                consumers.append(Consumer(_module_name(node), "conv"))
                continue
            if isinstance(module, nn.Linear) and flat:
                consumers.append(Consumer(_module_name(node), "linear"))
                continue
        step = _step(node, modules, flat)
        if step is None:
            return None
        pending.extend((user, node, step) for user in node.users)
    return consumers


def _other_inputs(node: torch.fx.Node) -> list[torch.fx.Node]:
    """Graph values a node reads besides its first argument (a binary op mixes two tensors)."""
    found: list[torch.fx.Node] = []

    def collect(arg: torch.fx.Node) -> torch.fx.Node:
        found.append(arg)
        return arg

    torch.fx.node.map_arg((node.args[1:], node.kwargs), collect)
    return found


def _step(node: torch.fx.Node, modules: dict[str, nn.Module], flat: bool) -> bool | None:
    """Whether ``node`` treats each channel on its own: the new "flattened" state, or ``None``.

    Element-wise ops keep the state; spatial pooling needs an unflattened [N, C, H, W] input; a
    flatten from dim 1 (or a spatial mean without ``keepdim``) turns it into channel-major features.
    """
    kind, target = node.op, node.target
    if kind == "call_module":
        module = modules[_module_name(node)]
        if isinstance(module, ELEMENTWISE_MODULES):
            return flat
        if isinstance(module, POOLING_MODULES):
            return None if flat else False
        if isinstance(module, nn.Flatten) and (module.start_dim, module.end_dim) == (1, -1):
            return None if flat else True
        return None
    if (kind == "call_function" and target in ELEMENTWISE_FUNCTIONS) or (kind == "call_method" and target in ELEMENTWISE_METHODS):
        return flat
    if kind == "call_function" and target in POOLING_FUNCTIONS:
        return None if flat else False
    if (kind == "call_function" and target is torch.flatten) or (kind == "call_method" and target == "flatten"):
        return None if flat or not _flatten_from_channels(node) else True
    if (kind == "call_function" and target is torch.mean) or (kind == "call_method" and target in {"mean", "amax"}):
        return _spatial_reduction(node, flat)
    return None


def _flatten_from_channels(node: torch.fx.Node) -> bool:
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return bool(start == 1 and end == -1)


def _spatial_reduction(node: torch.fx.Node, flat: bool) -> bool | None:
    """``x.mean((2, 3))``: a global pool; without ``keepdim`` the result is already [N, C]."""
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if flat or dims is None or set(dims if isinstance(dims, (tuple, list)) else (dims,)) not in SPATIAL_DIMS:
        return None
    keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    return not keepdim
