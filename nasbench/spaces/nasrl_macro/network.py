"""The network of a NAS-RL layer chain (Zoph & Le, ICLR 2017, Sect. 3.3): each layer a
convolution, batch norm and ReLU on the concatenation of its inputs, zero-padded to the
largest (the paper's rule; see :mod:`nasbench.spaces.nasrl_macro.space`)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nasbench.spaces.nasrl_macro.space import LayerChain


def _pad_to(states: list[torch.Tensor], height: int, width: int) -> list[torch.Tensor]:
    """Zero-pad every state at the bottom and right to ``height`` x ``width`` (the paper's
    rule for concatenating inputs of different sizes)."""
    return [s if s.shape[-2:] == (height, width) else F.pad(s, (0, width - s.shape[-1], 0, height - s.shape[-2]))
            for s in states]


def _concat(states: list[torch.Tensor]) -> torch.Tensor:
    if len(states) == 1:
        return states[0]
    height, width = max(s.shape[-2] for s in states), max(s.shape[-1] for s in states)
    return torch.cat(_pad_to(states, height, width), dim=1)


class ChainNetwork(nn.Module):
    """The network of one :class:`LayerChain`: its layers (convolution, batch norm, ReLU) on
    their concatenated inputs, then the unused layers' outputs, concatenated, to global
    average pooling and a linear classifier."""

    def __init__(self, arch: LayerChain, num_classes: int, in_channels: int = 3):
        super().__init__()
        self.inputs = [layer.inputs for layer in arch.layers]
        self.outputs = arch.outputs()
        self.layers = nn.ModuleList()
        for layer in arch.layers:
            c_in = sum(arch.layers[j].filters for j in layer.inputs) if layer.inputs else in_channels
            self.layers.append(nn.Sequential(
                nn.Conv2d(c_in, layer.filters, (layer.filter_height, layer.filter_width),
                          stride=(layer.stride_height, layer.stride_width),
                          padding=(layer.filter_height // 2, layer.filter_width // 2), bias=False),
                nn.BatchNorm2d(layer.filters), nn.ReLU(inplace=True)))
        self.classifier = nn.Linear(sum(arch.layers[i].filters for i in self.outputs), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states: list[torch.Tensor] = []
        for layer, inputs in zip(self.layers, self.inputs):
            states.append(layer(_concat([states[j] for j in inputs]) if inputs else x))
        hidden = _concat([states[i] for i in self.outputs])
        return self.classifier(F.adaptive_avg_pool2d(hidden, 1).flatten(1))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The trainer's interface: logits and no auxiliary logits (NAS-RL's networks have
        no auxiliary head and no drop path)."""
        return self(x), None
