"""PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient
Architecture Search", ICLR 2020).

First-order DARTS with three changes. Partial channel connections: on every edge only the
first 1/K of the channels go through the mixed operation, the rest bypass it (max-pooled
where the edge halves the resolution), and a channel shuffle interleaves the two parts, so
that the next edges operate on other features (the paper's channel "sampling" is this
fixed slice and shuffle in its official code, as here).
Edge normalisation: per cell type a parameter beta per edge; each edge's output is scaled
by the softmax of beta over its node's incoming edges, which steadies the choice of edges
against the channel sampling. Warm-up: the architecture parameters stay frozen while the
weights train for the first epochs.

Derivation is DARTS' rule on the paper's edge weights (its edge normalisation section):
the softmax over each edge's operations times the edge's normalised beta
(:func:`~nasbench.spaces.cell.supernet.derive_genotype` on :meth:`PcDarts.edge_weights`).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasbench.errors import ConfigError
from nasbench.protocol import SupernetBudget
from nasbench.spaces.cell.supernet import NODE_EDGES, MixedOp, State, Supernet
from nasbench.spaces.layers import channel_shuffle
from nasbench.strategies.darts import Darts
from nasbench.strategies.supernet_search import ArchRecipe, Batch, WeightRecipe, rounded

# The paper's CIFAR-10 search settings and the official code's defaults (github.com/
# yuhuixu1993/PC-DARTS, train_search.py): weights by SGD, lr 0.1 cosine-annealed, momentum
# 0.9, weight decay 3e-4, clipping at 5 (code); annealed to zero, as the paper and the CIFAR-10
# search script (train_search.py L26 ``--learning_rate_min 0.0``; only its V100 copy anneals to
# 0.001). Architecture (alpha and beta) by Adam, lr 6e-4, betas (0.5, 0.999),
# weight decay 1e-3. Both are set for batch 256, which the partial channels fit in memory;
# the protocol fixes the supernet's batch (64 in `full`, 32 in `smoke`) and the learning rates
# are kept as published, not rescaled: under linear scaling 0.1 at 256 would be 0.025 at 64,
# DARTS' rate, so PC-DARTS here steps 4x larger than that rule would.
PC_DARTS_WEIGHTS = WeightRecipe(lr=0.1, lr_min=0.0, momentum=0.9, weight_decay=3e-4, grad_clip=5.0)
PC_DARTS_ARCHITECTURE = ArchRecipe(lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)
CHANNEL_PROPORTION = 4
"""K: 1/K of an edge's channels go through its operations (the paper's K = 4 on CIFAR-10)."""
WARMUP_SHARE = 0.3
"""The architecture is frozen for the first 15 of 50 epochs in the paper (the code's
``epoch >= 15``); scaled to the protocol's epochs as round(0.3 * epochs)."""


class PartialChannelMixedOp(nn.Module):
    """An edge of PC-DARTS: the mixed operation on the first 1/K of the input's channels, the
    others bypassing it, then a channel shuffle. The bypass is weighted by the weight row's
    sum (1 under a softmax), so that scaling the row, as edge normalisation does, scales the
    whole edge as the paper's ``beta_e * f_e(x)``."""

    def __init__(self, channels: int, stride: int, proportion: int = CHANNEL_PROPORTION):
        super().__init__()
        if channels % proportion:
            raise ConfigError(f"partial channel connections pass 1/{proportion} of an edge's channels through its "
                              f"operations: a cell needs a multiple of {proportion} channels, not {channels} (set "
                              f"[search.supernet] channels to a multiple of {proportion})")
        self.proportion = proportion
        self.mixed = MixedOp(channels // proportion, stride)
        self.bypass = nn.MaxPool2d(2, 2) if stride == 2 else nn.Identity()

    def forward(self, x: State, weights: torch.Tensor, active: tuple[int, ...]) -> torch.Tensor:
        part = x.raw.shape[1] // self.proportion
        bypassed = weights.sum() * self.bypass(x.raw[:, part:])
        mixed = self.mixed(State(x.raw[:, :part]), weights, active)
        if mixed is None:  # no active operation (sparse weights): that part is zero
            mixed = bypassed.new_zeros(bypassed.shape[0], part, *bypassed.shape[2:])
        return channel_shuffle(torch.cat([mixed, bypassed], dim=1), self.proportion)


def normalised_edges(beta: torch.Tensor) -> torch.Tensor:
    """Per edge, the softmax of ``beta`` over its node's incoming edges (NODE_EDGES lists
    the edges in order)."""
    return torch.cat([beta[list(incoming)].softmax(dim=-1) for incoming in NODE_EDGES])


class PcDarts(Darts):
    """PC-DARTS: first-order DARTS on a partial-channel supernet with edge normalisation,
    its architecture frozen during the warm-up epochs."""

    name = "pc-darts"
    summary = "PC-DARTS: partial channel connections (1/4), edge normalisation, warm-up; first order"
    spaces = ("cell",)
    task_implementations = {}  # DARTS' recurrent search is not this method's
    weight_recipe = PC_DARTS_WEIGHTS
    arch_recipe = PC_DARTS_ARCHITECTURE

    def make_supernet(self, budget: SupernetBudget) -> Supernet:
        return Supernet(budget.channels, budget.cells, mixed_op=PartialChannelMixedOp, edge_normalisation=True)

    def edge_weights(self) -> dict[str, torch.Tensor]:
        """Row e: softmax(alpha_e) times edge e's normalised beta (what the edges are scaled
        by in the forward pass and what the derivation ranks edges by)."""
        return {group: alpha.softmax(dim=-1) * normalised_edges(self.supernet.betas[group]).unsqueeze(-1)
                for group, alpha in self.supernet.alphas.items()}

    def warmup_epochs(self) -> int:
        return round(WARMUP_SHARE * self.budget())

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """DARTS' step after the warm-up; during it the weights' step alone, the validation
        loss only measured."""
        if self.epochs_done >= self.warmup_epochs():
            return super().search_step(train, val, lr)
        with torch.no_grad():
            val_loss = self.loss(val, self.search_weights())
        return val_loss, self.weight_step(train)

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        """Adds, per cell type and node, the normalised betas of its incoming edges."""
        with torch.no_grad():
            edges = {group: normalised_edges(beta).tolist() for group, beta in self.supernet.betas.items()}
        return {**super()._record(lr, train_loss, val_loss),
                "edge_weights": {group: rounded([[w[e] for e in incoming] for incoming in NODE_EDGES])
                                 for group, w in edges.items()},
                "architecture_frozen": self.epochs_done < self.warmup_epochs()}
