"""The network of one FBNet-space architecture: the layout's stem, the chosen block of
every searchable layer, its head (:mod:`nasbench.spaces.fbnet.blocks` builds each)."""
from __future__ import annotations

import torch
from torch import nn

from nasbench.spaces.fbnet.blocks import (
    Classifier,
    make_block,
    make_head_conv,
    make_stem,
)
from nasbench.spaces.fbnet.space import FbnetLayout, LayerArch, plan_layers


class FbnetNetwork(nn.Module):
    """The network of one architecture: stem, the chosen blocks, head."""

    def __init__(self, arch: LayerArch, layout: FbnetLayout, num_classes: int):
        super().__init__()
        specs = plan_layers(layout)
        self.stem = make_stem(layout.stem_channels, layout.stem_stride)
        self.layers = nn.Sequential(*(make_block(name, s.c_in, s.c_out, s.stride) for name, s in zip(arch.blocks, specs)))
        self.head = make_head_conv(specs[-1].c_out, layout.head_channels)
        self.classifier = Classifier(layout.head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.layers(self.stem(x))))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The trainer's interface: logits and no auxiliary logits (FBNet's networks have no
        auxiliary head, and no drop path)."""
        return self(x), None
