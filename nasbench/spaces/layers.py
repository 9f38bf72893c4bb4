"""Building blocks that more than one space's networks use."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: view the channels as (groups, C / groups), transpose; channel
    ``g * C / groups + j`` moves to ``j * groups + g``."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def weighted_sum(terms: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
    """``sum(weight * output)`` over (scalar weight, output) pairs, accumulated with
    ``addcmul`` (one pass over the output per term, not a product and a sum); None when
    there are no terms. A supernet's mixed operations spend most of their non-convolution
    time here."""
    total = None
    for weight, output in terms:
        total = weight * output if total is None else torch.addcmul(total, weight, output)
    return total


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution that, when its weight gradient will be computed, applies its stride
    by subsampling the input and convolving at stride 1: the same arithmetic, but it keeps
    oneDNN's strided 1x1 weight-gradient kernel out of training. That kernel writes past its
    workspace for channels-last inputs with fewer channels than its SIMD block (oneDNN issue
    6035, jit_1x1 on AVX2/AVX-512), which corrupted the heap in the smoke protocol. Without
    gradients (inference, cost tables) it is the strided convolution, as fast as before."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, groups: int = 1):
        super().__init__(c_in, c_out, 1, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != (1, 1) and torch.is_grad_enabled() and self.weight.requires_grad:
            # a 1x1 average pool subsamples, and its gradient keeps the input's memory
            # format (a slice's gradient is NCHW, which made the ReLU before it 2.4x slower)
            return nn.functional.conv2d(nn.functional.avg_pool2d(x, 1, self.stride), self.weight, groups=self.groups)
        return nn.functional.conv2d(x, self.weight, stride=self.stride, groups=self.groups)
