"""The FBNet space's candidate blocks (Wu et al., CVPR 2019, Fig. 3 and Table 2) and its
fixed stem and head.

A block is MobileNetV2's inverted residual with grouped pointwise convolutions: a 1x1
(group) convolution expanding the channels by ``e``, batch norm and ReLU, a channel
shuffle when the convolutions are grouped, a KxK depthwise convolution carrying the
layer's stride, batch norm and ReLU, and a 1x1 (group) convolution to the output
channels with batch norm and no activation; a residual connection adds the input when
the block keeps its shape. ``skip`` is the identity, or where the layer changes shape a
1x1 convolution with batch norm and ReLU at the layer's stride (the official builders' projection;
an identity cannot change the shape; maskrcnn-benchmark's ``fbnet_builder.py`` and
mobile-vision's ``fbnet_v2`` builders use this convolution, batch norm and ReLU).
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.errors import UnknownNameError
from nasbench.spaces.fbnet.candidates import BLOCKS, BlockSpec
from nasbench.spaces.layers import PointwiseConv2d, channel_shuffle


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    conv = (PointwiseConv2d(c_in, c_out, stride, groups) if kernel == 1
            else nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False))
    layers = [conv, nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, spec: BlockSpec, c_in: int, c_out: int, stride: int):
        super().__init__()
        hidden = c_in * spec.expansion
        self.groups = spec.groups
        self.expand = conv_bn(c_in, hidden, 1, groups=spec.groups)
        self.depthwise = conv_bn(hidden, hidden, spec.kernel, stride, groups=hidden)
        self.project = conv_bn(hidden, c_out, 1, groups=spec.groups, relu=False)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        if self.groups > 1:
            y = channel_shuffle(y, self.groups)
        y = self.project(self.depthwise(y))
        return x + y if self.residual else y

    def functional_mac(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
        """Memory accesses beyond the block's layers (see nasbench/hardware/mac.py): the
        shuffle reads and writes the hidden tensor, the residual sum reads two and writes one."""
        hidden = self.expand[0].out_channels * inputs[0][0, 0].numel()
        return (2 * hidden if self.groups > 1 else 0) + (3 * output[0].numel() if self.residual else 0)


def make_block(name: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    """Candidate ``name`` of a layer from ``c_in`` to ``c_out`` channels at ``stride``."""
    if name not in BLOCKS:
        raise UnknownNameError("FBNet block", name, BLOCKS)
    spec = BLOCKS[name]
    if spec is None:
        return nn.Identity() if stride == 1 and c_in == c_out else conv_bn(c_in, c_out, 1, stride)
    return InvertedResidual(spec, c_in, c_out, stride)


def make_stem(c_out: int, stride: int) -> nn.Module:
    """A 3x3 convolution on the image, batch norm, ReLU."""
    return conv_bn(3, c_out, 3, stride)


def make_head_conv(c_in: int, c_out: int) -> nn.Module:
    """The 1x1 convolution after the last searchable layer, batch norm, ReLU."""
    return conv_bn(c_in, c_out, 1)


class Classifier(nn.Sequential):
    """Global average pooling and a linear classifier."""

    def __init__(self, c_in: int, num_classes: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
