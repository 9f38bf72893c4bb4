"""The network of a plain CNN as EAS builds it (github.com/han-cai/EAS code/models/convnet.py
L51-97, layers.py L197-228; the start network's net.config): each convolution (no bias) is
followed by batch norm (epsilon 1e-5, decay 0.9: torch's defaults) and ReLU; 2x2 max pooling
of stride 2 between blocks; global average pooling after the last block; each hidden fully
connected layer (no bias) by batch norm and ReLU; the classifier is linear with a bias. The
start network's dropout keeps every unit on its convolutions (``conv_drop`` 1.0, and the
drop scheme ``conv`` leaves the others off), so there is none here.

Every layer is a :class:`Unit` named by its place (``blocks.<b>.<i>``, ``fcs.<i>``), so that
the transformations (:mod:`nasbench.spaces.plain_cnn.morphism`) can rewrite a state dict
layer by layer and load it into the network of the new architecture.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nasbench.spaces.plain_cnn.arch import LayerRef, PlainCnn


class Unit(nn.Module):
    """One layer: ``op`` (a convolution or a linear map, no bias), batch norm, ReLU."""

    def __init__(self, op: nn.Module, norm: nn.Module):
        super().__init__()
        self.op, self.bn = op, norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.op(x)))


def conv_unit(c_in: int, c_out: int, kernel: int) -> Unit:
    return Unit(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out))


def fc_unit(c_in: int, c_out: int) -> Unit:
    return Unit(nn.Linear(c_in, c_out, bias=False), nn.BatchNorm1d(c_out))


def unit_name(arch: PlainCnn, ref: LayerRef) -> str:
    """The state-dict prefix of the layer at ``ref``."""
    return f"fcs.{ref.index}" if ref.block == arch.fc_block else f"blocks.{ref.block}.{ref.index}"


CLASSIFIER = "classifier"


class PlainCnnNetwork(nn.Module):
    def __init__(self, arch: PlainCnn, num_classes: int, in_channels: int = 3):
        super().__init__()
        self.arch = arch
        blocks, channels = [], in_channels
        for block in arch.blocks:
            units = []
            for conv in block:
                units.append(conv_unit(channels, conv.filters, conv.kernel))
                channels = conv.filters
            blocks.append(nn.ModuleList(units))
        self.blocks = nn.ModuleList(blocks)
        fcs = []
        for units in arch.fc:
            fcs.append(fc_unit(channels, units))
            channels = units
        self.fcs = nn.ModuleList(fcs)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor, until: LayerRef | None = None) -> torch.Tensor:
        """The logits; with ``until``, the output of that layer instead."""
        for b, block in enumerate(self.blocks):
            if b:
                x = F.max_pool2d(x, 2)
            for i, unit in enumerate(block):
                x = unit(x)
                if until == LayerRef(b, i):
                    return x
        x = x.mean((2, 3))
        for i, unit in enumerate(self.fcs):
            x = unit(x)
            if until == LayerRef(len(self.blocks), i):
                return x
        return self.classifier(x)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The trainer's interface: logits and no auxiliary logits."""
        return self(x), None
