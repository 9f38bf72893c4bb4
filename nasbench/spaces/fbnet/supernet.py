"""The FBNet space's weight-sharing supernet: every searchable layer holds all 9 candidate
blocks; its output is the weighted sum of the candidates it runs. Architecture parameters,
one row of 9 per layer, are kept apart from the network weights.

Weights are ``{"layers": (layers, 9) tensor}``, the cost model's layout: FBNet's
Gumbel-softmax samples (every block runs), or ProxylessNAS' binary gates (only the blocks
with a non-zero gate run, or those listed as ``active``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nasbench.spaces.fbnet.blocks import (
    Classifier,
    make_block,
    make_head_conv,
    make_stem,
)
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.space import LAYERS_GROUP, FbnetSpace, LayerArch
from nasbench.spaces.layers import weighted_sum


class LayerSupernet(nn.Module):
    def __init__(self, space: FbnetSpace, num_classes: int = 10, alpha_std: float = 0.0):
        super().__init__()
        layout = space.layout
        self.stem = make_stem(layout.stem_channels, layout.stem_stride)
        self.layers = nn.ModuleList(
            nn.ModuleList(make_block(name, s.c_in, s.c_out, s.stride) for name in BLOCK_NAMES) for s in space.specs)
        self.head = make_head_conv(space.specs[-1].c_out, layout.head_channels)
        self.classifier = Classifier(layout.head_channels, num_classes)
        self.alphas = nn.ParameterDict(
            {LAYERS_GROUP: nn.Parameter(alpha_std * torch.randn(len(space.specs), len(BLOCK_NAMES)))})

    @property
    def alpha(self) -> nn.Parameter:
        return self.alphas[LAYERS_GROUP]

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p is not self.alpha]

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor], sparse: bool = False,
                active: dict[str, Sequence[Sequence[int]]] | None = None) -> torch.Tensor:
        """Logits under per-layer block ``weights``. Layer l runs the blocks
        ``active["layers"][l]``; without ``active``, those of non-zero weight if ``sparse``
        (one host sync), else all of them."""
        w = weights[LAYERS_GROUP]
        if active is None:
            everything = [range(len(BLOCK_NAMES))] * len(self.layers)
            chosen = [row.nonzero().flatten().tolist() for row in w.detach().ne(0).cpu()] if sparse else everything
        else:
            chosen = active[LAYERS_GROUP]
        x = self.stem(x)
        for layer, blocks in enumerate(self.layers):
            x = weighted_sum((w[layer, i], blocks[i](x)) for i in chosen[layer])
        return self.classifier(self.head(x))


def most_likely(weights: dict[str, torch.Tensor]) -> LayerArch:
    """Per layer the block of the largest weight (ProxylessNAS' derivation)."""
    return LayerArch(tuple(BLOCK_NAMES[i] for i in weights[LAYERS_GROUP].argmax(dim=-1).tolist()))


def sample_arch(alphas: dict[str, torch.Tensor], generator: torch.Generator) -> LayerArch:
    """Per layer a block drawn from softmax(alpha) (FBNet's final sampling)."""
    picks = torch.multinomial(alphas[LAYERS_GROUP].detach().softmax(dim=-1), 1, generator=generator).squeeze(1)
    return LayerArch(tuple(BLOCK_NAMES[i] for i in picks.tolist()))
