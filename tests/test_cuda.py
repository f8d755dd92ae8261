"""The CUDA paths: layouts and bf16 autocast change only the rounding. Skipped without CUDA;
``benchmarks/gpu_check.sh`` runs them on a GPU machine. The float32 bounds are those derived in
test_memory_format.py and test_recovery.py (same shapes, same sums); TF32 is off while they run,
since it rounds convolution and matmul operands to 10 bits."""

from __future__ import annotations

import pytest
import torch
from test_memory_format import first_squeeze_loss, small_images
from test_recovery import check_layouts_and_autocast, teacher  # noqa: F401 (teacher is a fixture)

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
    check_layouts_and_autocast(*teacher, CUDA, plain="auto", other="channels-last")  # auto: contiguous on CUDA
