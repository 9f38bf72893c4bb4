"""The 13 operations of the NASNet search space (Zoph et al., CVPR 2018, Sect. 3).

Every operation maps ``C`` channels to ``C`` channels; with ``stride=2`` (it reads a cell
input of a reduction cell) it halves the resolution. Appendix A.4 fixes how they are
built: ReLU, convolution, batch norm in that order; a depthwise-separable convolution is
applied twice, with no batch norm or ReLU between its depthwise and pointwise parts.
Operations identical to the cell space's (identity, 3x3 pooling, separable convolutions,
1x7 then 7x1) are the cell space's own (:mod:`nasbench.spaces.cell.ops`), with its names.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from nasbench.errors import UnknownNameError
from nasbench.spaces.cell.ops import OPERATIONS as CELL_OPERATIONS
from nasbench.spaces.cell.ops import FactorizedConv, ReLUConvBN
from nasbench.spaces.layers import PointwiseConv2d


def _cell_operation(name: str) -> Callable[[int, int], nn.Module]:
    """The cell space's evaluation-network form of ``name`` (affine batch norm, bare pooling)."""
    return lambda c, stride: CELL_OPERATIONS[name](c, stride, True)


def _max_pool(kernel: int) -> Callable[[int, int], nn.Module]:
    return lambda c, stride: nn.MaxPool2d(kernel, stride=stride, padding=kernel // 2)


def _pointwise_conv(c: int, stride: int) -> nn.Module:
    """ReLU, 1x1 convolution, batch norm; the strided 1x1 convolution is the project's
    :class:`~nasbench.spaces.layers.PointwiseConv2d` (it keeps a oneDNN bug out of CPU training)."""
    return nn.Sequential(nn.ReLU(inplace=False), PointwiseConv2d(c, c, stride), nn.BatchNorm2d(c))


OPERATIONS: dict[str, Callable[[int, int], nn.Module]] = {
    "skip_connect": _cell_operation("skip_connect"),
    "conv_3x1_1x3": lambda c, stride: FactorizedConv(c, 3, stride),
    "conv_7x1_1x7": _cell_operation("conv_7x1_1x7"),
    "dilated_conv_3x3": lambda c, stride: ReLUConvBN(c, c, 3, stride, 2, dilation=2),
    "avg_pool_3x3": _cell_operation("avg_pool_3x3"),
    "max_pool_3x3": _cell_operation("max_pool_3x3"),
    "max_pool_5x5": _max_pool(5),
    "max_pool_7x7": _max_pool(7),
    "conv_1x1": _pointwise_conv,
    "conv_3x3": lambda c, stride: ReLUConvBN(c, c, 3, stride, 1),
    "sep_conv_3x3": _cell_operation("sep_conv_3x3"),
    "sep_conv_5x5": _cell_operation("sep_conv_5x5"),
    "sep_conv_7x7": _cell_operation("sep_conv_7x7"),
}
"""The modules of :data:`nasbench.spaces.nasnet.arch.OPERATIONS`, keyed by its names in its order,
the paper's list: identity (``skip_connect``; at stride 2 a factorized
reduction, as in the cell space, since an identity cannot halve the resolution); 1x3 then
3x1 convolution; 1x7 then 7x1 convolution; 3x3 dilated convolution (a full convolution
of dilation 2: the paper lists it beside plain and depthwise-separable convolutions, so it
is neither; the cell space's ``dil_conv_3x3`` is DARTS' separable one, hence another name);
3x3 average pooling; 3x3, 5x5 and 7x7 max pooling; 1x1 and 3x3 convolutions; 3x3, 5x5 and
7x7 depthwise-separable convolutions. Pooling has no batch norm, as in NASNet's official
code (tensorflow/models research/slim/nets/nasnet/nasnet_utils.py)."""


def make_operation(name: str, channels: int, stride: int) -> nn.Module:
    try:
        factory = OPERATIONS[name]
    except KeyError:
        raise UnknownNameError("operation", name, OPERATIONS) from None
    return factory(channels, stride)
