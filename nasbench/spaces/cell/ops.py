"""The candidate operations of the cell space, as in DARTS' operation set.

Every operation maps ``C`` channels to ``C`` channels; with ``stride=2`` it halves the
spatial size (it sits on an edge leaving a cell input of a reduction cell). ``affine``
is False inside a weight-sharing supernet (DARTS keeps batch-norm affine parameters off
there so that operations compete on equal terms) and True in evaluation networks.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from nasbench.errors import UnknownNameError
from nasbench.spaces.layers import PointwiseConv2d


class ReLUConvBN(nn.Sequential):
    """ReLU, a plain convolution and batch norm: the cells' input preprocessing (and the
    NASNet space's plain and dilated convolutions)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True,
                 dilation: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilatedConv(nn.Sequential):
    """ReLU, dilated depthwise convolution, pointwise convolution, batch norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SeparableConv(nn.Sequential):
    """Two stacked (depthwise, pointwise, batch norm) units; only the first one strides."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            DilatedConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilatedConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedConv(nn.Sequential):
    """A 1xk then kx1 convolution (NASNet/AmoebaNet's ``conv_7x1_1x7``; NASNet's space also
    has k = 3)."""

    def __init__(self, c: int, kernel: int, stride: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, kernel), stride=(1, stride), padding=(0, kernel // 2), bias=False),
            nn.Conv2d(c, c, (kernel, 1), stride=(stride, 1), padding=(kernel // 2, 0), bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class Identity(nn.Module):
    """The stride-1 skip connection; drop path leaves it alone, so it has its own type."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def functional_mac(self, inputs: tuple, output: torch.Tensor) -> int:
        """A skip connection touches no memory."""
        return 0


class Zero(nn.Module):
    """The ``none`` operation: a zero tensor of the output shape (it still allocates)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)

    def functional_mac(self, inputs: tuple, output: torch.Tensor) -> int:
        """It reads the (strided) input and writes zeros: twice the output, per image."""
        return 2 * output[0].numel()


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing every other pixel: two stride-2 1x1
    convolutions, the second shifted by one pixel, concatenated along channels."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = PointwiseConv2d(c_in, c_out // 2, stride=2)
        self.conv_2 = PointwiseConv2d(c_in, c_out // 2, stride=2)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))

    @staticmethod
    def functional_mac(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Padding (read x, write x padded by one row and column) and the concatenation."""
        _, c, h, w = inputs[0].shape
        return c * h * w + c * (h + 1) * (w + 1) + 2 * output[0].numel()


class NodeSum(nn.Module):
    """The sum of a node's two branches (a part of its own in cost tables)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    @staticmethod
    def functional_mac(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        return 3 * output[0].numel()


class Concat(nn.Module):
    """Channel concatenation of a cell's nodes (a part of its own in cost tables)."""

    def forward(self, *states: torch.Tensor) -> torch.Tensor:
        return torch.cat(states, dim=1)

    @staticmethod
    def functional_mac(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        return 2 * output[0].numel()


def _pool(kind: str, stride: int, c: int, affine: bool) -> nn.Module:
    pool = (
        nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        if kind == "avg"
        else nn.MaxPool2d(3, stride=stride, padding=1)
    )
    # In a supernet DARTS normalises pooling outputs so that their scale matches the
    # convolutions'; evaluation networks use the bare pooling.
    return pool if affine else nn.Sequential(pool, nn.BatchNorm2d(c, affine=False))


OperationFactory = Callable[[int, int, bool], nn.Module]

OPERATIONS: dict[str, OperationFactory] = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: _pool("avg", stride, c, affine),
    "max_pool_3x3": lambda c, stride, affine: _pool("max", stride, c, affine),
    "skip_connect": lambda c, stride, affine: Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SeparableConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SeparableConv(c, c, 5, stride, 2, affine),
    "sep_conv_7x7": lambda c, stride, affine: SeparableConv(c, c, 7, stride, 3, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilatedConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilatedConv(c, c, 5, stride, 4, 2, affine),
    "conv_7x1_1x7": lambda c, stride, affine: FactorizedConv(c, 7, stride, affine),
}
"""The module of every operation a genotype may name, keyed by the names of
:data:`~nasbench.spaces.cell.genotype.OPERATION_NAMES`, in their order."""


def make_operation(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    try:
        factory = OPERATIONS[name]
    except KeyError:
        raise UnknownNameError("operation", name, OPERATIONS) from None
    return factory(channels, stride, affine)
