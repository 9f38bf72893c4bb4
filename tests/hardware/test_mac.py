"""Memory access cost: each operation's count against a hand count from the documented
per-layer formulas (nasbench/hardware/mac.py), at C=4 channels, 8x8 inputs, batch 1."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nasbench.hardware.mac import count_mac
from nasbench.spaces.cell.ops import Concat, NodeSum, make_operation

C, H = 4, 8
X = C * H * H  # 256 input elements
Y2 = C * (H // 2) ** 2  # 64 output elements at stride 2


def mac_of(op: str, stride: int) -> int:
    return count_mac(make_operation(op, C, stride), [torch.randn(1, C, H, H)])


def relu(n):
    return 2 * n


def conv(x, y, weights):
    return x + y + weights


def bn(n, c=C):
    return 2 * n + 4 * c


def test_separable_convolution_3x3_stride_1():
    depthwise, pointwise = C * 9, C * C
    unit = relu(X) + conv(X, X, depthwise) + conv(X, X, pointwise) + bn(X)
    assert mac_of("sep_conv_3x3", 1) == 2 * unit == 4232


def test_separable_convolution_5x5_stride_2_strides_only_its_first_unit():
    first = relu(X) + conv(X, Y2, C * 25) + conv(Y2, Y2, C * C) + bn(Y2)
    second = relu(Y2) + conv(Y2, Y2, C * 25) + conv(Y2, Y2, C * C) + bn(Y2)
    assert mac_of("sep_conv_5x5", 2) == first + second


def test_dilated_convolution():
    assert mac_of("dil_conv_3x3", 1) == relu(X) + conv(X, X, C * 9) + conv(X, X, C * C) + bn(X)
    assert mac_of("dil_conv_5x5", 2) == relu(X) + conv(X, Y2, C * 25) + conv(Y2, Y2, C * C) + bn(Y2)


@pytest.mark.parametrize("op", ["max_pool_3x3", "avg_pool_3x3"])
def test_pooling_reads_input_writes_output(op):
    assert mac_of(op, 1) == X + X
    assert mac_of(op, 2) == X + Y2


def test_skip_connection_is_free_but_its_strided_form_is_a_factorized_reduce():
    assert mac_of("skip_connect", 1) == 0
    half = Y2 // 2
    expected = (relu(X)
                + conv(X, half, C * C // 2)          # conv_1: stride 2, half the channels
                + X + C * (H + 1) * (H + 1)          # zero padding by one row and column
                + conv(X, half, C * C // 2)          # conv_2 on the shifted view
                + 2 * Y2                              # concatenation of the halves
                + bn(Y2))
    assert mac_of("skip_connect", 2) == expected == 1956


def test_none_reads_and_writes_its_output_size():
    assert mac_of("none", 1) == 2 * X
    assert mac_of("none", 2) == 2 * Y2


def test_factorized_7x1_1x7():
    x_mid = C * H * (H // 2)  # after the (1, 7) convolution with stride (1, 2)
    expected = relu(X) + conv(X, x_mid, C * C * 7) + conv(x_mid, Y2, C * C * 7) + bn(Y2)
    assert mac_of("conv_7x1_1x7", 2) == expected


def test_node_sum_and_concatenation():
    a, b = torch.randn(1, C, H, H), torch.randn(1, C, H, H)
    assert count_mac(NodeSum(), [a, b]) == 3 * X
    assert count_mac(Concat(), [a, b, a]) == 2 * 3 * X


def test_mac_is_per_image():
    op = make_operation("sep_conv_3x3", C, 1)
    assert count_mac(op, [torch.randn(5, C, H, H)]) == count_mac(op, [torch.randn(1, C, H, H)])


def test_batch_norm_without_affine_counts_only_running_statistics():
    assert count_mac(nn.BatchNorm2d(C, affine=False), [torch.randn(1, C, H, H)]) == 2 * X + 2 * C


def test_a_layer_without_formula_is_refused():
    with pytest.raises(TypeError, match="no memory-access formula for GELU"):
        count_mac(nn.Sequential(nn.GELU()), [torch.randn(1, C, H, H)])


def test_mac_restores_training_mode():
    op = make_operation("sep_conv_3x3", C, 1).train()
    count_mac(op, [torch.randn(1, C, H, H)])
    assert op.training
