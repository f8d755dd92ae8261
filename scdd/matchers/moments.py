"""Channel-wise batch moments of a BatchNorm layer's input, fused with the layer's eval-mode forward.

Recovery needs, for every BN layer k, the batch mean ``μ_k(x')`` and biased variance ``σ²_k(x')``
of the layer's input (Eq. 8), and their gradient with respect to that input:

    ∂/∂x [gμ·μ + gσ·σ²] = (gμ + 2 gσ (x − μ)) / M = a·x + b,   a = 2gσ/M,  b = gμ/M − a·μ

where ``M`` is the number of values per channel. ``EvalBatchNormWithMoments`` returns the frozen
layer's output and the two moments from one autograd node, and its backward adds the moment term
to the layer's own input gradient in the same two elementwise passes, instead of autograd's
separate mean/variance backward passes and an extra gradient accumulation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_CHANNEL_DIMS = (0, 2, 3)


def batch_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel-wise mean and biased variance of ``[N, C, H, W]`` input, at least float32 (no autograd)."""
    if x.device.type == "cpu" and x.dtype == torch.float32:
        if x.is_contiguous():
            moments = _row_sum_moments(x)
            if moments is not None:
                return moments
        # The CPU batch-norm statistics kernel: exact, and fast for channels-last input.
        mean, var = torch.ops.aten.batch_norm_update_stats(x, None, None, 0.0)
        return mean, var
    var, mean = torch.var_mean(_at_least_float32(x), dim=_CHANNEL_DIMS, correction=0)
    return mean, var


_CANCELLATION_LIMIT = 100.0  # mean²/var above this: E[x²] − μ² may lose more than ~1e-5 relative


def _row_sum_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Moments of contiguous NCHW input from per-(n, c) row sums Σx (a matrix-vector product) and
    Σx² (a row norm): two streaming reads, several times faster on the CPU than the statistics
    kernel. Sums are combined in float64; where a channel's mean is so large against its spread
    that E[x²] − μ² would cancel, returns None and the caller uses the exact kernel."""
    n, channels, height, width = x.shape
    rows = x.view(n * channels, height * width)
    count = n * height * width
    sums = torch.mv(rows, _ones(height * width)).view(n, channels).sum(0, dtype=torch.float64)
    squares = torch.linalg.vector_norm(rows, dim=1).double().square().view(n, channels).sum(0)
    mean = sums / count
    var = squares / count - mean.square()
    if bool(((var <= 0) | (mean.square() > _CANCELLATION_LIMIT * var)).any()):
        return None
    return mean.float(), var.float()


_ONES: dict[int, torch.Tensor] = {}


def _ones(size: int) -> torch.Tensor:
    if size not in _ONES:
        _ONES[size] = torch.ones(size)
    return _ONES[size]


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _channel(vector: torch.Tensor) -> torch.Tensor:
    return vector.view(1, -1, 1, 1)


class EvalBatchNormWithMoments(torch.autograd.Function):
    """``(batch_norm_eval(x), μ(x), σ²(x))`` with a fused backward; running statistics untouched."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, eps: float):
        output = F.batch_norm(x, running_mean, running_var, weight, bias, False, 0.0, eps)
        mean, var = batch_moments(x)
        ctx.eps = eps
        ctx.save_for_backward(x, weight, running_mean, running_var, mean)
        return output, mean, var

    @staticmethod
    def backward(ctx, grad_output, grad_mean, grad_var):
        x, weight, running_mean, running_var, mean = ctx.saved_tensors
        inv_std = torch.rsqrt(_at_least_float32(running_var) + ctx.eps)
        scale = inv_std if weight is None else inv_std * _at_least_float32(weight)
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            count = x.numel() // x.shape[1]
            grad_mean = torch.zeros_like(mean) if grad_mean is None else grad_mean
            grad_var = torch.zeros_like(mean) if grad_var is None else grad_var
            slope = grad_var * (2.0 / count)
            offset = grad_mean / count - slope * mean
            grad_x = torch.addcmul(_channel(offset.to(x.dtype)), x, _channel(slope.to(x.dtype)))
            if grad_output is not None:
                grad_x.addcmul_(grad_output, _channel(scale.to(grad_output.dtype)))
        if grad_output is not None and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
            grad_bias = _at_least_float32(grad_output).sum(_CHANNEL_DIMS)
            normalised = (_at_least_float32(x) - _channel(_at_least_float32(running_mean))) * _channel(inv_std)
            grad_weight = (_at_least_float32(grad_output) * normalised).sum(_CHANNEL_DIMS)
            grad_weight = grad_weight.to(weight.dtype) if ctx.needs_input_grad[1] else None
            grad_bias = grad_bias.to(weight.dtype) if ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias, None, None, None


def eval_batch_norm_with_moments(
    layer: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The eval-mode output of ``layer`` on ``x`` and the batch moments of ``x``."""
    output, mean, var = EvalBatchNormWithMoments.apply(x, layer.weight, layer.bias, layer.running_mean, layer.running_var, layer.eps)
    return output, mean, var


def moments_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch moments through plain autograd (for layers in training mode, where BN normalises with them)."""
    var, mean = torch.var_mean(_at_least_float32(x), dim=_CHANNEL_DIMS, correction=0)
    return mean, var
