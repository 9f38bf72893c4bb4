"""GDAS (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours", CVPR 2019).

First-order DARTS under sampled architectures: per edge and per forward pass a hard
one-hot choice of operation by Gumbel-max, ``argmax(alpha + G)``, G standard Gumbel noise,
whose backward pass is that of the Gumbel-softmax ``softmax((alpha + G) / t)`` (the
straight-through estimator). The forward pass thus runs only the sampled operation of each
edge (``sparse_weights``), which is what makes GDAS fast; the temperature t falls linearly
from 10 to 0.1 over the search.

The search network and the derivation are the official code's, not DARTS'
(github.com/D-X-Y/AutoDL-Projects, xautodl/models/cell_searchs/search_model_gdas_nasnet.py,
``NASNetworkGDAS``): its pooling operations have no batch norm after them (``POOLING`` in
xautodl/models/cell_operations.py), a batch norm and a ReLU (``lastact``) come before the
global pooling, and ``genotype()`` keeps per node the two strongest (operation, input) pairs
among all the non-``none`` operations of all incoming edges, by softmax(alpha), so that a
node may apply two operations to one input (:func:`derive_gdas_genotype`). GDAS-FRC (a
fixed, hand-designed reduction cell) is not implemented.
"""
from __future__ import annotations

from typing import Any

import torch

from nasbench.protocol import SupernetBudget
from nasbench.spaces.cell.costs import SEARCH_NODES
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.supernet import (
    EDGES,
    GROUPS,
    NODE_EDGES,
    NONE,
    EdgeWeights,
    Supernet,
    check_weights,
)
from nasbench.strategies.darts import Darts
from nasbench.strategies.snas import gumbel_softmax, linear_temperature
from nasbench.strategies.supernet_search import ArchRecipe, WeightRecipe

# The official code's search on the DARTS (NASNet) space, which its documentation names the
# search "as in the original paper" (github.com/D-X-Y/AutoDL-Projects, docs/CVPR-2019-GDAS.md,
# scripts-search/NASNet-space-search-by-GDAS.sh, configs/search-opts/GDAS-NASNet-CIFAR.config):
# weights by SGD with Nesterov momentum 0.9, lr 0.025 cosine-annealed to 0.001, weight decay
# 5e-4, clipping at 5; architecture by Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3;
# the temperature tau_max - (tau_max - tau_min) * e / (E - 1) in epoch e of E, tau from 10 to
# 0.1 (exps/NAS-Bench-201-algos/GDAS.py). That code searches at batch 256 for 250 epochs;
# the protocol fixes batch and epochs here, and the learning rates are kept as they are. It
# steps the weights before the architecture on each batch; the shared loop keeps DARTS' order.
GDAS_WEIGHTS = WeightRecipe(lr=0.025, lr_min=0.001, momentum=0.9, weight_decay=5e-4, grad_clip=5.0, nesterov=True)
GDAS_ARCHITECTURE = ArchRecipe(lr=3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
TEMPERATURE_MAX = 10.0
TEMPERATURE_MIN = 0.1


def straight_through_gumbel(alpha: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """Per row a one-hot Gumbel-max sample (exactly one-hot in value) whose gradient is the
    Gumbel-softmax sample's: ``hard + soft - soft.detach()``, the soft sample at ``temperature``
    and the hard one its argmax."""
    soft = gumbel_softmax(alpha, temperature, generator)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    return hard + (soft - soft.detach())


def derive_gdas_genotype(weights: EdgeWeights) -> Genotype:
    """GDAS' discrete cell: per node the two heaviest (operation, input) pairs among the
    non-``none`` operations of all its incoming edges (heaviest first; ties go to the lower
    input, then to the operation listed first), so both may read the same input, which
    DARTS' rule (one operation per edge) never allows; all nodes concatenated."""
    check_weights(weights)
    cells = {}
    for group in GROUPS:
        rows = weights[group].detach().cpu().tolist()
        edges = []
        for incoming in NODE_EDGES:
            pairs = [(-rows[e][k], EDGES[e][1], k)
                     for e in incoming for k in range(len(SEARCH_OPERATIONS)) if k != NONE]
            edges += [(SEARCH_OPERATIONS[k], source) for _, source, k in sorted(pairs)[:2]]
        cells[group] = tuple(edges)
    concat = tuple(range(2, SEARCH_NODES + 2))
    return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)


class Gdas(Darts):
    """GDAS: first-order bilevel search in which every forward pass (architecture step and
    weight step alike) runs one freshly sampled operation per edge."""

    name = "gdas"
    summary = "GDAS: one Gumbel-max sampled operation per edge, straight-through gradients, bilevel"
    spaces = ("cell",)
    task_implementations = {}  # DARTS' recurrent search is not this method's
    weight_recipe = GDAS_WEIGHTS
    arch_recipe = GDAS_ARCHITECTURE
    sparse_weights = True

    def make_supernet(self, budget: SupernetBudget) -> Supernet:
        """GDAS' search network: no batch norm after pooling, batch norm and ReLU before the head."""
        return Supernet(budget.channels, budget.cells, pool_norm=False, last_act=True)

    def derive(self, weights: EdgeWeights) -> Genotype:
        return derive_gdas_genotype(weights)

    def temperature(self) -> float:
        """10 in the first epoch down to 0.1 in the last, linearly (a one-epoch search runs
        at 0.1, as the last epoch of any search does)."""
        epochs = self.budget()
        progress = self.epochs_done / (epochs - 1) if epochs > 1 else 1.0
        return linear_temperature(TEMPERATURE_MAX, TEMPERATURE_MIN, progress)

    def search_weights(self) -> dict[str, torch.Tensor]:
        """One straight-through Gumbel-max sample per edge, from :attr:`generator`."""
        t = self.temperature()
        return {group: straight_through_gumbel(alpha, t, self.generator)
                for group, alpha in self.supernet.alphas.items()}

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        return {**super()._record(lr, train_loss, val_loss), "temperature": self.temperature()}
