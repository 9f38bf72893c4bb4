"""PNAS (Liu et al., "Progressive Neural Architecture Search", ECCV 2018) on the cell space.

Sequential model-based optimisation over cells that grow one block at a time. A block is
one node of the cell space: two distinct earlier states as inputs, an operation on each
(``none`` excluded, as in :data:`~nasbench.spaces.cell.space.SAMPLED_OPERATIONS`). Level
``b`` expands every kept ``(b-1)``-block cell by one block in every possible way, scores
all expansions with a learned predictor, trains only the best ``K`` predicted, and keeps
the trained ones for the next level; the predictor is refit from scratch on every trained
cell before each level. One cell serves as normal and reduction cell (the reduction cell
is the same cell with stride 2, as in PNAS), all its nodes concatenated.

Budget: the protocol's ``candidates`` trainings in total, ``K = candidates // B`` per level
and the remainder at the final level, where the result comes from: the best trained
``B``-block cell by search-validation accuracy.

Deviations from the paper, forced by the budget: PNAS trains all 1-block cells to start
its predictor; here level 1 trains ``K`` of them drawn uniformly. ``B`` is the cell
space's 4 nodes (the paper's cells have 5 blocks), fewer when the protocol has fewer
candidates than that (smoke: 2 candidates, 2 levels of one cell each). Forced by the
space: blocks take two distinct inputs (PNAS also allows one input twice) and the
space's 7 operations, and cells concatenate all their nodes.

Resuming: the state is the current level and the queue of cells it still has to train;
the predictor is never stored, as every level refits it, deterministically, from the
trials when it plans.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import torch
from torch import nn

from nasbench.spaces.cell.genotype import CellEdges, Genotype
from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS
from nasbench.strategies.base import Strategy
from nasbench.types import SearchResult, Trial, derive_seed

# PNAS Sec. 3.3: the MLP predictor embeds each token of a block (its two inputs, its two
# operations; inputs and operations have their own embedding tables) into D = 100
# dimensions, concatenates a block's four embeddings, averages over the blocks, and
# regresses the validation accuracy (sigmoid output) under an L1 loss; an ensemble of 5
# predictors, each fit from scratch on 4/5 of the trained cells, reduces the variance of
# the predictions. Ours: two hidden layers as wide as the embedding, and full-batch Adam
# (lr 0.01, 200 steps) on training sets of at most ``candidates`` cells.
EMBEDDING_SIZE = 100
HIDDEN_UNITS = 100
HIDDEN_LAYERS = 2
ENSEMBLE_SIZE = 5
PREDICTOR_LR = 0.01
PREDICTOR_STEPS = 200

OPERATION_INDEX = {op: i for i, op in enumerate(SAMPLED_OPERATIONS)}


def expansions(cell: CellEdges) -> list[CellEdges]:
    """Every cell one block longer than ``cell`` (the 1-block cells for the empty cell):
    the new node takes two distinct earlier states, lower index first, with any pair of
    operations."""
    states = len(cell) // 2 + 2
    return [cell + ((op_a, a), (op_b, b))
            for a, b in itertools.combinations(range(states), 2)
            for op_a, op_b in itertools.product(SAMPLED_OPERATIONS, repeat=2)]


def cell_genotype(cell: Sequence[Sequence[Any]]) -> Genotype:
    """The genotype using ``cell`` (edges, as tuples or their JSON lists) as normal and
    reduction cell, all nodes concatenated."""
    edges = tuple((op, source) for op, source in cell)
    concat = tuple(range(2, len(edges) // 2 + 2))
    return Genotype(normal=edges, normal_concat=concat, reduce=edges, reduce_concat=concat)


def encode(cells: Sequence[CellEdges], blocks: int) -> torch.Tensor:
    """One row per cell: how often each token fills each of a block's four slots (first
    input, second input, first operation, second operation), divided by the cell's blocks.
    Embedding these frequencies is PNAS' average over blocks of the concatenated block
    embeddings; cells of different lengths share one encoding."""
    inputs = blocks + 1
    rows, columns, weights = [], [], []
    for row, cell in enumerate(cells):
        for position, (op, source) in enumerate(cell):
            slot = position % 2
            rows += [row, row]
            columns += [slot * inputs + source, 2 * inputs + slot * len(SAMPLED_OPERATIONS) + OPERATION_INDEX[op]]
            weights += [2 / len(cell)] * 2
    features = torch.zeros(len(cells), 2 * inputs + 2 * len(SAMPLED_OPERATIONS), dtype=torch.float64)
    features.index_put_((torch.tensor(rows, dtype=torch.long), torch.tensor(columns, dtype=torch.long)),
                        torch.tensor(weights, dtype=torch.float64), accumulate=True)
    return features


def level_sizes(candidates: int) -> list[int]:
    """Cells trained at each level, one level per block: ``K = candidates // B`` each,
    with ``B`` the space's nodes or, where the budget cannot train one cell per level,
    ``candidates`` (so ``K >= 1`` for every valid protocol). Level 1 trains at most all
    1-block cells; the budget's remainder goes to the final level, where the result is
    chosen."""
    blocks = min(NODES, candidates)
    beam = candidates // blocks
    sizes = [min(beam, len(expansions(())))] + [beam] * (blocks - 1)
    sizes[-1] += candidates - sum(sizes)
    return sizes


class PredictorEnsemble(nn.Module):
    """The ensemble of PNAS' MLP predictors as one batched module (members along the first
    dimension of every parameter), so scoring thousands of cells is a few matrix products."""

    def __init__(self, blocks: int, generator: torch.Generator):
        super().__init__()
        self.inputs = blocks + 1

        def uniform(*shape: int, fan_in: int) -> nn.Parameter:  # torch.nn.Linear's default range
            unit = torch.rand(ENSEMBLE_SIZE, *shape, generator=generator, dtype=torch.float64)
            return nn.Parameter((unit * 2 - 1) * fan_in ** -0.5)

        self.input_embedding = nn.Parameter(torch.randn(ENSEMBLE_SIZE, self.inputs, EMBEDDING_SIZE, generator=generator,
                                                        dtype=torch.float64))
        self.operation_embedding = nn.Parameter(torch.randn(ENSEMBLE_SIZE, len(SAMPLED_OPERATIONS), EMBEDDING_SIZE,
                                                            generator=generator, dtype=torch.float64))
        widths = [4 * EMBEDDING_SIZE] + [HIDDEN_UNITS] * HIDDEN_LAYERS + [1]
        self.weights = nn.ParameterList(uniform(w_in, w_out, fan_in=w_in) for w_in, w_out in zip(widths, widths[1:]))
        self.biases = nn.ParameterList(uniform(1, w_out, fan_in=w_in) for w_in, w_out in zip(widths, widths[1:]))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Predicted accuracy of every member for every encoded cell: (members, cells).
        The first layer is linear in the averaged embeddings, so it applies to the token
        frequencies through ``embedding @ weight`` per slot, never building the
        (members, cells, 4 * D) embeddings."""
        slots = features.split([self.inputs, self.inputs, len(SAMPLED_OPERATIONS), len(SAMPLED_OPERATIONS)], dim=-1)
        tables = (self.input_embedding, self.input_embedding, self.operation_embedding, self.operation_embedding)
        slot_weights = self.weights[0].split(EMBEDDING_SIZE, dim=1)
        x = self.biases[0] + sum(torch.matmul(slot, table @ weight)
                                 for slot, table, weight in zip(slots, tables, slot_weights))
        for weight, bias in zip(self.weights[1:], self.biases[1:]):
            x = torch.baddbmm(bias, torch.relu(x), weight)
        return torch.sigmoid(x.squeeze(-1))

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """The ensemble's prediction: the members' mean."""
        return self(features).mean(0)


def fit_predictor(cells: Sequence[CellEdges], accuracies: Sequence[float], blocks: int, seed: int) -> PredictorEnsemble:
    """A fresh ensemble fit on the trained cells, determined by ``seed`` and the data.
    Members are trained together (their losses add; Adam updates each parameter from its
    own gradient, so this equals training them one by one)."""
    generator = torch.Generator().manual_seed(seed)
    predictor = PredictorEnsemble(blocks, generator)
    features = encode(cells, blocks)
    targets = torch.tensor(accuracies, dtype=torch.float64)
    membership = _ensemble_membership(len(cells), generator)
    optimiser = torch.optim.Adam(predictor.parameters(), lr=PREDICTOR_LR, fused=True)  # fused: 2x faster on a CPU
    for _ in range(PREDICTOR_STEPS):
        optimiser.zero_grad()
        errors = (predictor(features) - targets).abs() * membership
        (errors.sum(1) / membership.sum(1)).sum().backward()
        optimiser.step()
    return predictor


def _ensemble_membership(cells: int, generator: torch.Generator) -> torch.Tensor:
    """(members, cells) weights: member ``m`` leaves out the ``m``-th of five random folds
    (PNAS: each fit on 4/5 of the data); with fewer cells than members, every member sees
    them all and only their initialisations differ."""
    if cells < ENSEMBLE_SIZE:
        return torch.ones(ENSEMBLE_SIZE, cells, dtype=torch.float64)
    folds = torch.empty(cells, dtype=torch.long)
    folds[torch.randperm(cells, generator=generator)] = torch.arange(cells) % ENSEMBLE_SIZE
    return (folds[None, :] != torch.arange(ENSEMBLE_SIZE)[:, None]).to(torch.float64)


def _cell(trial: Trial) -> CellEdges:
    return tuple((op, source) for op, source in trial.arch["normal"])


class Pnas(Strategy):
    """PNAS' progressive search with an MLP-ensemble predictor, one training per step."""

    name = "pnas"
    strategy_class = "SMBO"
    summary = "PNAS: cells grown block by block, a learned predictor picks the expansions to train"
    state_fields = ("level", "queue")

    def __init__(self, context):
        super().__init__(context)
        self.level_sizes = level_sizes(context.protocol.search.candidates)
        self.blocks = len(self.level_sizes)
        self.level = 0
        self.queue: list[list[list[Any]]] = []
        """The current level's cells still to train, best predicted first (as JSON lists)."""

    def budget(self) -> int:
        return self.context.protocol.search.candidates

    def step(self) -> None:
        if not self.queue:
            self.level += 1
            self.queue = [[list(edge) for edge in cell] for cell in self._plan_level()]
        cell, self.queue = self.queue[0], self.queue[1:]  # a new list: earlier checkpoints keep theirs
        self.evaluate(cell_genotype(cell))

    def result(self) -> SearchResult:
        best = max(self._trained(self.blocks), key=lambda t: (t.val_acc, -t.index))
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc,
                            {"blocks": self.blocks, "cells_per_level": self.level_sizes})

    def _plan_level(self) -> list[CellEdges]:
        """The cells the current level trains: drawn uniformly at level 1, the best
        predicted expansions of the kept cells after."""
        count = self.level_sizes[self.level - 1]
        if self.level == 1:
            return self.rng.sample(expansions(()), count)
        kept = self._trained(self.level - 1)
        children = [child for trial in kept for child in expansions(_cell(trial))]
        trained = [t for t in self.trials if t.val_acc is not None]
        predictor = fit_predictor([_cell(t) for t in trained], [t.val_acc for t in trained], self.blocks,
                                  derive_seed(self.context.seed, "pnas-predictor", self.level))
        ranking = torch.argsort(predictor.predict(encode(children, self.blocks)), descending=True, stable=True)
        return [children[i] for i in ranking[:count].tolist()]

    def _trained(self, level: int) -> list[Trial]:
        """The successfully trained cells of ``level`` blocks; an error if there are none."""
        cells = [t for t in self.trials if len(t.arch["normal"]) == 2 * level]
        scored = [t for t in cells if t.val_acc is not None]
        if not scored:
            errors = "; ".join(sorted({t.error for t in cells if t.error})) or "none was trained"
            raise RuntimeError(f"pnas: every cell of level {level} failed: {errors}")
        return scored
