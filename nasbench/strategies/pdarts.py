"""P-DARTS (Chen, Xie, Wu & Tian, "Progressive Differentiable Architecture Search: Bridging
the Depth Gap between Search and Evaluation", ICCV 2019).

First-order DARTS in three stages whose supernets grow deeper while the candidate
operations per edge shrink (search-space approximation): after a stage, each edge keeps
the operations of highest softmax weight (8 -> 5 -> 3), and the next stage starts from a
new supernet, new weights and new architecture parameters for the kept operations.
Within a stage the first epochs train the weights only; a dropout after every identity
skip-connect regularises the search, its rate decaying within the stage. The cell is
DARTS' derivation on the last stage's weights, then at most two skip-connects in the
normal cell (search-space regularisation): while there are more, the derived skip of
lowest weight is zeroed and the cell derived again.

Settings (the paper's Sect. 4.2 and the official code, github.com/chenxin061/pdarts,
``train_search.py`` "L<n>", ``model_search.py`` "M<n>"), scaled to the protocol where
the protocol's ``[search.supernet]`` stands for DARTS' search (``full``: 8 cells, 50
epochs): a stage has round(epochs / 2) epochs (25 per stage against DARTS' 50 at ``full``,
L29) and round(cells * d / 8) cells for d in 5, 11, 17 (``--layers 5 --add_layers 6
--add_layers 12``, L31, L45, README), so ``full`` runs the paper's 5, 11 and 17 cells of
25 epochs, ``proxy`` 3, 7 and 11 of 5, ``smoke`` 2, 4 and 6 of 1. Channels and batch are the
protocol's (the paper's batch is 96, L23). No ``[search.pdarts]`` section: the settings are
the paper's at every scale, the protocol's supernet scales them.

Deviations: every supernet holds the weights of all seven operations on every edge; only
the kept ones run and train (the official supernet builds only those, M17-25). Dropout
masks come from the search's generator, so a resumed search draws the same. Ties between
equal weights go to the lower operation or edge index in the derivation (the official
sort keeps the higher).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.supernet import (
    EDGES,
    GROUPS,
    EdgeWeights,
    MixedOp,
    Supernet,
    derive_genotype,
)
from nasbench.strategies.darts import Darts
from nasbench.strategies.supernet_search import ArchRecipe, Batch, WeightRecipe
from nasbench.training import cosine_annealing

PDARTS_WEIGHTS = WeightRecipe(lr=0.025, lr_min=0.0, momentum=0.9, weight_decay=3e-4, grad_clip=5.0)
"""SGD lr 0.025 cosine-annealed per stage to 0.0, momentum 0.9, weight decay 3e-4, clipping
at 5 (L24-27, L37, L133-141, L296)."""
PDARTS_ARCHITECTURE = ArchRecipe(lr=6e-4, betas=(0.5, 0.999), weight_decay=1e-3)
"""Adam (L39-40, L138-139)."""
ARCH_GRAD_CLIP = 5.0
"""The architecture's gradients are clipped at ``--grad_clip`` too (L288), unlike DARTS'."""
STAGE_DEPTHS = (5, 11, 17)
"""Cells per stage at DARTS' 8-cell search network (``--layers 5``, ``add_layers`` 0, 6, 12)."""
DARTS_DEPTH = 8
"""The depth of DARTS' search network, which the protocol's supernet cells stand for."""
STAGE_OPERATIONS = (8, 5, 3)
"""Candidate operations per edge in each stage (the paper's Sect. 4.2; ``num_to_keep`` 5, 3
after the first two stages, L109-110); each at least 3, so that an edge keeps an operation
that is neither ``none`` nor skip-connect and the skip limit always ends."""
SKIP_DROPOUT = (0.1, 0.4, 0.7)
"""Each stage's skip-connect dropout rate: the README's CIFAR-10 command (``--dropout_rate``,
L43, L119-122); the paper's Sect. 4.2 gives 0.0 for the first stage."""
STAGE_EPOCH_SHARE = 0.5
"""25 epochs per stage (L29) against DARTS' 50."""
FROZEN_SHARE = 0.4
"""The first 10 of a stage's 25 epochs train the weights only (``eps_no_archs``, L123, L152-159)."""
DROPOUT_DECAY = 0.2
"""After the frozen epochs the rate decays as exp(-0.2 * epochs since) (``scale_factor``, L145, L157)."""
SKIP_LIMIT = 2
"""Skip-connects allowed in the normal cell (the paper's M = 2; L247-262 derive every limit from 8 to 0)."""
SKIP = SEARCH_OPERATIONS.index("skip_connect")


def stage_cells(cells: int) -> tuple[int, ...]:
    """Each stage's depth: the paper's, scaled by the protocol's cells against DARTS' 8."""
    return tuple(max(1, round(cells * depth / DARTS_DEPTH)) for depth in STAGE_DEPTHS)


def stage_epochs(epochs: int) -> int:
    """Each stage's epochs: half the protocol's, at least one."""
    return max(1, round(STAGE_EPOCH_SHARE * epochs))


def skip_dropout_rate(rate: float, epoch: int, epochs: int, frozen: int) -> float:
    """The dropout rate in ``epoch`` of a stage of ``epochs`` whose first ``frozen`` train the
    weights only: linear towards 0 during those, then ``rate`` decaying exponentially (L152-158)."""
    if epoch < frozen:
        return rate * (epochs - epoch - 1) / epochs
    return rate * math.exp(-(epoch - frozen) * DROPOUT_DECAY)


def strongest(weights: torch.Tensor, kept: list[list[int]], count: int) -> list[list[int]]:
    """Per edge, the ``count`` of its ``kept`` operations of highest weight, in index order:
    the others dropped lowest first, of equal ones the lower index first, as ``np.argmin``
    drops them (``get_min_k``, L185, L363-371; ``none`` competes like any operation)."""
    rows = weights.detach().cpu().tolist()
    return [sorted(sorted(ops, key=lambda k: (row[k], k))[len(ops) - count:])
            for row, ops in zip(rows, kept, strict=True)]


def derive_with_skip_limit(weights: EdgeWeights, limit: int = SKIP_LIMIT) -> Genotype:
    """DARTS' derivation, then while the normal cell has more than ``limit`` skip-connects,
    the skip weight of its derived skip edge of lowest one is zeroed and the cell derived again
    (``delete_min_sk_prob``, ``keep_1_on``, ``keep_2_branches``, ``check_sk_number``, L255-259;
    the reduction cell is left as derived)."""
    normal = weights["normal"].detach().clone()
    while True:
        genotype = derive_genotype({**weights, "normal": normal})
        skips = [EDGES.index((2 + i // 2, source)) for i, (op, source) in enumerate(genotype.normal)
                 if op == "skip_connect"]
        if len(skips) <= limit:
            return genotype
        weakest = min(skips, key=lambda e: (normal[e, SKIP].item(), e))
        normal[weakest, SKIP] = 0.0


class SkipDropout:
    """``nn.Dropout`` after an identity skip-connect (M23-24): each element zeroed with
    probability :attr:`prob`, the rest rescaled; masks from the search's generator."""

    def __init__(self, generator: torch.Generator):
        self.generator, self.prob = generator, 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0.0:
            return x
        keep = 1.0 - self.prob
        return x * torch.empty_like(x).bernoulli_(keep, generator=self.generator) / keep


class Pdarts(Darts):
    """P-DARTS: first-order DARTS in stages of growing depth and shrinking operation sets,
    skip-connect dropout, weight-only epochs at each stage's start, at most two skips."""

    name = "pdarts"
    summary = "P-DARTS: three first-order DARTS stages, 5/11/17 cells (full), 8/5/3 operations, skip dropout, 2 skips"
    spaces = ("cell",)
    task_implementations = {}  # DARTS' recurrent search is not this method's
    weight_recipe = PDARTS_WEIGHTS
    arch_recipe = PDARTS_ARCHITECTURE
    sparse_weights = True  # the dropped operations weigh exactly 0: they never run
    state_fields = ("epochs_done", "history", "stage", "kept")

    def __init__(self, context):
        budget = context.protocol.search.supernet
        self.stage_cells, self.stage_epochs = stage_cells(budget.cells), stage_epochs(budget.epochs)
        self.frozen_epochs = round(FROZEN_SHARE * self.stage_epochs)
        self.stage = 0
        self.kept = {group: [list(range(len(SEARCH_OPERATIONS))) for _ in EDGES] for group in GROUPS}
        """Per cell type and edge, the indices of the stage's candidate operations."""
        super().__init__(context)
        self.dropout = SkipDropout(self.generator)
        self._install()

    def make_supernet(self, budget) -> Supernet:
        return Supernet(budget.channels, self.stage_cells[self.stage])

    def _build_stage(self) -> None:
        """A new supernet of the stage's depth and new optimisers (L125-141)."""
        self.build_supernet(f"supernet-stage-{self.stage}")
        self._install()

    def _install(self) -> None:
        """The stage's operation masks, and the skip dropout on every edge of its supernet."""
        self.masks = {}
        for group, rows in self.kept.items():
            mask = torch.zeros(len(EDGES), len(SEARCH_OPERATIONS), dtype=torch.bool)
            for e, ops in enumerate(rows):
                mask[e, ops] = True
            self.masks[group] = mask.to(self.context.device)
        for module in self.supernet.modules():
            if isinstance(module, MixedOp):
                module.skip_dropout = self.dropout

    # -- the schedule ----------------------------------------------------------------
    def budget(self) -> int:
        return len(STAGE_DEPTHS) * self.stage_epochs

    def epoch_in_stage(self) -> int:
        return self.epochs_done - self.stage * self.stage_epochs

    def architecture_frozen(self) -> bool:
        return self.epoch_in_stage() < self.frozen_epochs

    def learning_rate(self, epoch: int) -> float:
        """Cosine over each stage's epochs, restarted with the stage (a new scheduler per stage, L140)."""
        recipe = self.weight_recipe
        return cosine_annealing(recipe.lr, recipe.lr_min, epoch % self.stage_epochs, self.stage_epochs)

    def step(self) -> None:
        """One epoch under the stage's dropout rate; after a stage's last epoch, the next stage."""
        self.dropout.prob = skip_dropout_rate(SKIP_DROPOUT[self.stage], self.epoch_in_stage(), self.stage_epochs,
                                              self.frozen_epochs)
        super().step()
        if self.epoch_in_stage() == self.stage_epochs and self.stage + 1 < len(STAGE_DEPTHS):
            self.advance_stage()

    def advance_stage(self) -> None:
        """Keep each edge's strongest operations (L173-199) and start the next stage on them."""
        with torch.no_grad():
            weights = self.edge_weights()
        count = STAGE_OPERATIONS[self.stage + 1]
        self.kept = {group: strongest(weights[group], self.kept[group], count) for group in GROUPS}
        self.stage += 1
        self._build_stage()

    # -- the search ------------------------------------------------------------------
    def edge_weights(self) -> dict[str, torch.Tensor]:
        """Softmax over each edge's kept operations (the official alphas have a column per kept
        operation, M154-158); the dropped ones weigh exactly 0."""
        return {group: alpha.masked_fill(~self.masks[group], -math.inf).softmax(dim=-1)
                for group, alpha in self.supernet.alphas.items()}

    def architecture_gradients(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
        loss, grads = super().architecture_gradients(train, val, lr)
        scale = (ARCH_GRAD_CLIP / (nn.utils.get_total_norm(grads) + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s
        return loss, [g * scale for g in grads]

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor | None, torch.Tensor]:
        """DARTS' step, or during the stage's frozen epochs the weights' step alone (L155)."""
        if self.architecture_frozen():
            return None, self.weight_step(train)
        return super().search_step(train, val, lr)

    def derive(self, weights: EdgeWeights) -> Genotype:
        return derive_with_skip_limit(weights)

    def _record(self, lr: float, train_loss: float, val_loss: float | None) -> dict[str, Any]:
        return {**super()._record(lr, train_loss, val_loss), "stage": self.stage + 1,
                "cells": self.stage_cells[self.stage], "skip_dropout": self.dropout.prob,
                "architecture_frozen": self.architecture_frozen()}

    # -- state -----------------------------------------------------------------------
    def load_tensor_state(self, tensors) -> None:
        """The restored stage's supernet and optimisers are built, then loaded."""
        self._build_stage()
        super().load_tensor_state(tensors)
