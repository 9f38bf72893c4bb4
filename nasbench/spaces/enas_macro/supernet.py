"""The macro space's weight-sharing supernet (Pham et al., ICML 2018, Sect. 2.3): every layer
holds all six operations and its skip batch norm, every pooling position a reduction per
state; an architecture is a path through them, so every architecture shares these weights
(the official ``_enas_layer`` computes all branches and keeps the sampled one; here only the
path's operations run).

The path comes as weights, the layout ENAS' cell-space supernet takes
(:func:`path_weights`): ``{"operations": (L, 6), "skips": (L, L)}``; row i of
``operations`` weighs layer i's operations, entry (i, j) of ``skips`` the skip from state j
(j < i; see :class:`~nasbench.spaces.enas_macro.space.MacroArch`). A layer's output is the
weighted sum of its operations plus the weighted sum of its skips, through its batch norm;
with one-hot weights that is exactly the architecture's network
(:class:`~nasbench.spaces.enas_macro.network.MacroNetwork`), whose parameter names are a
subset of the supernet's.
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.spaces.enas_macro.network import MacroBackbone, MacroLayer
from nasbench.spaces.enas_macro.plan import OPERATIONS
from nasbench.spaces.enas_macro.space import MacroArch
from nasbench.spaces.layers import weighted_sum

OPERATIONS_GROUP, SKIPS_GROUP = "operations", "skips"


def path_weights(arch: MacroArch, device: torch.device) -> dict[str, torch.Tensor]:
    """The supernet weights that run exactly ``arch``: a one-hot operation row per layer and
    a 1 for every skip it takes."""
    layers = len(arch.operations)
    operations = torch.zeros(layers, len(OPERATIONS))
    operations[range(layers), [OPERATIONS.index(op) for op in arch.operations]] = 1
    skips = torch.zeros(layers, layers)
    for layer, sources in enumerate(arch.skips):
        skips[layer, list(sources)] = 1
    return {OPERATIONS_GROUP: operations.to(device), SKIPS_GROUP: skips.to(device)}


class MacroSupernet(MacroBackbone):
    """All six operations in every layer; a forward pass runs the path its weights give."""

    def __init__(self, layers: int, channels: int, num_classes: int = 10):
        super().__init__(layers, channels, num_classes, lambda i: OPERATIONS)

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter: the architecture is the controller's, not the supernet's."""
        return list(self.parameters())

    def forward(self, x: torch.Tensor, weights: dict[str, torch.Tensor], sparse: bool = True) -> torch.Tensor:
        """Logits under the path ``weights``: with ``sparse``, only the terms of non-zero
        weight run (one host sync), else every operation and every earlier state."""
        layers = len(self.layers)
        operations, skips = weights[OPERATIONS_GROUP], weights[SKIPS_GROUP]
        if tuple(operations.shape) != (layers, len(OPERATIONS)) or tuple(skips.shape) != (layers, layers):
            raise ValueError(f"macro supernet weights need ({layers}, {len(OPERATIONS)}) operations and "
                             f"({layers}, {layers}) skips, got {tuple(operations.shape)} and {tuple(skips.shape)}")
        earlier = torch.ones(layers, layers, dtype=torch.bool).tril(-1)
        if sparse:
            nonzero = torch.cat([operations.detach().ne(0), skips.detach().ne(0) & earlier.to(skips.device)], 1).cpu()
            active_ops, active_skips = nonzero[:, :len(OPERATIONS)], nonzero[:, len(OPERATIONS):]
        else:
            active_ops, active_skips = torch.ones(layers, len(OPERATIONS), dtype=torch.bool), earlier
        chosen_ops = [row.nonzero().flatten().tolist() for row in active_ops]
        chosen_skips = [row.nonzero().flatten().tolist() for row in active_skips]

        def layer_output(index: int, layer: MacroLayer, states: list[torch.Tensor]) -> torch.Tensor:
            out = weighted_sum((operations[index, k], layer.ops[OPERATIONS[k]](states[-1])) for k in chosen_ops[index])
            return layer.combine(out, weighted_sum((skips[index, j], states[j]) for j in chosen_skips[index]))

        return self.run(x, layer_output)
