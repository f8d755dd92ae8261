"""The CUDA paths: layouts and bf16 autocast change only the rounding. Skipped without CUDA;
``benchmarks/gpu_check.sh`` runs them on a GPU machine. The float32 bounds are those derived in
test_memory_format.py and test_recovery.py (same shapes, same sums); TF32 is off while they run,
since it rounds convolution and matmul operands to 10 bits."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from test_memory_format import first_squeeze_loss, small_images
from test_recovery import QUICK, _conv_inputs, teacher  # noqa: F401 (teacher is a fixture)

from scdd.recovery.engine import synthesize
from scdd.runtime import memory_format

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def no_tf32():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_squeeze_layouts_agree_on_cuda():
    assert memory_format(CUDA) == torch.contiguous_format
    data = small_images()
    contiguous, bound, conv_inputs = first_squeeze_loss(data, "auto", CUDA)
    assert conv_inputs and all(x.is_contiguous() for x in conv_inputs)
    channels_last, _, conv_inputs = first_squeeze_loss(data, "channels-last", CUDA)
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in conv_inputs)
    assert abs(channels_last - contiguous) <= 64 * bound


def test_recovery_layout_and_bf16_autocast_on_cuda(teacher):  # noqa: F811
    classifier, data = teacher
    reference = synthesize(classifier, data.info, QUICK, device=CUDA, seed=0)  # auto: contiguous on CUDA
    record: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = _conv_inputs(classifier, record)
    try:
        channels_last = synthesize(classifier, data.info, dataclasses.replace(QUICK, memory_format="channels-last"), device=CUDA, seed=0)
        assert record and all(x.is_contiguous(memory_format=torch.channels_last) for x, _ in record)
        record.clear()
        bf16 = synthesize(classifier, data.info, dataclasses.replace(QUICK, autocast=True), device=CUDA, seed=0)
        assert record and all(out.dtype == torch.bfloat16 for _, out in record)
    finally:
        for hook in hooks:
            hook.remove()
    for got in (channels_last, bf16):
        assert torch.isfinite(got.images).all() and torch.isfinite(got.loss_bn).all()
    assert torch.allclose(channels_last.loss_bn[:, 0], reference.loss_bn[:, 0], rtol=2 * 2.6e-3, atol=0)
    assert torch.allclose(channels_last.loss_ce[:, 0], reference.loss_ce[:, 0], rtol=2 * 2.6e-3, atol=1e-6)
    assert torch.allclose(bf16.loss_bn[:, 0], reference.loss_bn[:, 0], rtol=0.05)
