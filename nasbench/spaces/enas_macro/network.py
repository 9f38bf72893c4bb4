"""The networks of ENAS' macro search space (Pham et al., "Efficient Neural Architecture Search
via Parameter Sharing", ICML 2018, Sect. 2.3 and Fig. 3-4), as the official code's searched
child builds them (github.com/melodyguan/enas, src/cifar10/general_child.py, ``_model`` and
``_enas_layer`` with ``--controller_search_whole_channels``, the macro search script's setting).

A stem (3x3 convolution and batch norm), then L layers of ``channels`` channels. Layer i
applies its operation to the previous layer's output; from the second layer on, it adds the
skip inputs it chose and applies batch norm to the sum. The states a layer can take skips
from are numbered by the layer that reads them as its input: state j is the input of layer
j (the stem's output for j = 0, layer j - 1's output otherwise), so layer i chooses among
states 0..i-1 and reads state i itself. After layers L/3 - 1 and 2L/3 - 1 (0-based) every
state so far is halved in resolution by a factorized reduction of its own, so later skips
still match in shape. Global average pooling, dropout and a linear classifier end the network.

The six operations (the code's branch order, which is the controller's): 3x3 and 5x5
convolutions and their depthwise-separable versions, each behind a 1x1 convolution, and
3x3 average and max pooling behind the same 1x1 convolution; every convolution is followed
by batch norm and ReLU, a separable one has no batch norm between its depthwise and
pointwise parts (TensorFlow's ``separable_conv2d``).

Deviation: the official code trains its final (``fixed_arc``) network differently from the
child it searched: channels doubling at the pooling layers, skips concatenated and mixed by
a 1x1 convolution. Its whole-channel branch of ``_fixed_layer`` cannot build the pooling
operations and builds separable convolutions as plain ones, so the space's networks are the
searched child itself, at a constant width: what the search scores is what is trained, and
the supernet's path for an architecture is exactly that architecture's network.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from nasbench.errors import UnknownNameError
from nasbench.spaces.cell.ops import FactorizedReduce
from nasbench.spaces.enas_macro.plan import OPERATIONS, reduction_layers
from nasbench.spaces.fbnet.blocks import conv_bn
from nasbench.spaces.layers import PointwiseConv2d

DROPOUT = 0.1
"""Before the classifier: the macro search script's ``--child_keep_prob=0.90``."""


class SeparableConv(nn.Sequential):
    """A depthwise KxK convolution, then a pointwise one, batch norm and ReLU."""

    def __init__(self, channels: int, kernel: int):
        super().__init__(nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False),
                         PointwiseConv2d(channels, channels), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


def _pool(kind: str) -> nn.Module:
    # TensorFlow's SAME average pooling divides by the pixels inside the image
    return nn.AvgPool2d(3, 1, 1, count_include_pad=False) if kind == "avg" else nn.MaxPool2d(3, 1, 1)


OPERATION_FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    "conv_3x3": lambda c: conv_bn(c, c, 3),
    "sep_conv_3x3": lambda c: SeparableConv(c, 3),
    "conv_5x5": lambda c: conv_bn(c, c, 5),
    "sep_conv_5x5": lambda c: SeparableConv(c, 5),
    "avg_pool_3x3": lambda c: _pool("avg"),
    "max_pool_3x3": lambda c: _pool("max"),
}


def make_operation(name: str, channels: int) -> nn.Module:
    """Operation ``name`` of a layer, behind the 1x1 convolution, batch norm and ReLU that
    every branch of the official code starts with."""
    if name not in OPERATION_FACTORIES:
        raise UnknownNameError("enas-macro operation", name, OPERATIONS)
    return nn.Sequential(conv_bn(channels, channels, 1), OPERATION_FACTORIES[name](channels))


class Reduction(FactorizedReduce):
    """The official ``_factorized_reduction`` at stride 2: two 1x1 convolutions of half the
    channels, one on the input and one shifted by a pixel, concatenated, then batch norm.
    Unlike DARTS' (the cell space's) it applies no ReLU first."""

    def __init__(self, channels: int):
        super().__init__(channels, channels)
        self.relu = nn.Identity()


class MacroLayer(nn.Module):
    """One layer: its candidate ``operations`` (one in a network, all six in the supernet)
    and, past the first layer, the batch norm of the sum with the skip inputs."""

    def __init__(self, index: int, channels: int, operations: Sequence[str]):
        super().__init__()
        self.ops = nn.ModuleDict({name: make_operation(name, channels) for name in operations})
        self.skip_bn = nn.BatchNorm2d(channels) if index > 0 else None

    def combine(self, out: torch.Tensor, skips: torch.Tensor | None) -> torch.Tensor:
        """The layer's output from its operation's output ``out`` and the sum of its skip
        inputs (None for none): the first layer has no skip choice and no batch norm."""
        if self.skip_bn is None:
            return out
        return self.skip_bn(out if skips is None else out + skips)


LayerOutput = Callable[[int, MacroLayer, list[torch.Tensor]], torch.Tensor]
"""Layer i's output from the layer and the states so far (state j is layer j's input)."""


class MacroBackbone(nn.Module):
    """Stem, layers, the reductions of every state and the classifier; how a layer computes
    its output is the subclass's (one architecture, or a path of the supernet)."""

    def __init__(self, layers: int, channels: int, num_classes: int, candidates: Callable[[int], Sequence[str]]):
        super().__init__()
        self.stem = conv_bn(3, channels, 3, relu=False)
        self.layers = nn.ModuleList(MacroLayer(i, channels, candidates(i)) for i in range(layers))
        # after layer i, states 0..i+1 exist: one reduction for each
        self.reductions = nn.ModuleDict({str(i): nn.ModuleList(Reduction(channels) for _ in range(i + 2))
                                         for i in reduction_layers(layers)})
        self.dropout = nn.Dropout(DROPOUT)
        self.classifier = nn.Linear(channels, num_classes, bias=False)  # the code's "fc" has no bias

    def run(self, x: torch.Tensor, layer_output: LayerOutput) -> torch.Tensor:
        states = [self.stem(x)]
        for index, layer in enumerate(self.layers):
            states.append(layer_output(index, layer, states))
            if str(index) in self.reductions:
                states = [reduce(state) for reduce, state in zip(self.reductions[str(index)], states)]
        return self.classifier(self.dropout(states[-1].mean(dim=(2, 3))))


class MacroNetwork(MacroBackbone):
    """The network of one architecture (built by :meth:`EnasMacroSpace.build`)."""

    def __init__(self, operations: Sequence[str], skips: Sequence[Sequence[int]], channels: int, num_classes: int):
        super().__init__(len(operations), channels, num_classes, lambda i: (operations[i],))
        self.operations, self.skips = tuple(operations), tuple(tuple(s) for s in skips)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self._layer_output)

    def _layer_output(self, index: int, layer: MacroLayer, states: list[torch.Tensor]) -> torch.Tensor:
        out = layer.ops[self.operations[index]](states[-1])
        chosen = [states[j] for j in self.skips[index]]
        return layer.combine(out, sum(chosen[1:], chosen[0]) if chosen else None)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The trainer's interface: logits and no auxiliary logits (the general child has no
        auxiliary head and no drop path)."""
        return self(x), None
