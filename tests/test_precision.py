"""Mixed precision: autocast per precision, the gradient scaler only for fp16, the recorded
fp32 fallbacks."""
from __future__ import annotations

import pytest
import torch
from helpers import CPU

from nasbench.precision import FP32_OPERATIONS, PRECISIONS, Precision, full_precision


@pytest.mark.parametrize("name, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_autocast_computes_a_layer_in_the_precisions_dtype(name, dtype):
    layer, x = torch.nn.Linear(4, 3), torch.randn(2, 4)
    with Precision(name).autocast(CPU):
        y = layer(x)
        loss = torch.nn.functional.cross_entropy(y, torch.tensor([0, 1]))
        with full_precision(CPU):
            fallback = layer(x)
    assert y.dtype == dtype and layer.weight.dtype == torch.float32
    assert loss.dtype == torch.float32 and fallback.dtype == torch.float32  # what stays fp32
    assert Precision(name).mixed == (name != "fp32")


@pytest.mark.parametrize("name", PRECISIONS)
def test_only_fp16_scales_its_gradients(name):
    scaler = Precision(name).grad_scaler(CPU)
    assert scaler.is_enabled() == (name == "fp16")
    loss = torch.tensor(2.0, requires_grad=True)
    assert scaler.scale(loss).item() == (2.0 * 2 ** 16 if name == "fp16" else 2.0)


def test_the_fallbacks_are_recorded_for_low_precisions_only():
    assert Precision("fp32").fallbacks() == []
    fallbacks = Precision("bf16").fallbacks()
    assert fallbacks == list(FP32_OPERATIONS) == Precision("fp16").fallbacks()
    assert any("Hessian-vector product" in f for f in fallbacks) and any("softmax" in f for f in fallbacks)


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, got 'fp8'"):
        Precision("fp8")
