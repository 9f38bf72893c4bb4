"""DARTS' continuous relaxation of the recurrent cell (Liu et al., ICLR 2019, Sect. 2.1-2.2,
Fig. 1; official code rnn/model_search.py) and the discrete cell it derives.

Node 0 is the fixed tanh highway step on x_t and h_{t-1}. Node i (1..N) reads every earlier
node j through its own projection W_i (one per node, as the derived cell has: c and h from
each predecessor), applies every operation to each (c, h) pair as a highway step, mixes the
operations by softmax(alpha) of that edge and sums over predecessors. The cell outputs the
mean of nodes 1..N. Operations are DARTS' ``PRIMITIVES`` for the RNN: ``none`` (adds
nothing) and the four activations (rnn/genotypes.py:5-11).

Batch normalisation: the official search cell normalises node 0 and every mixed node with
one ``BatchNorm1d(nhid, affine=False)`` (model_search.py:14, 18, 39), in training mode by
the batch's statistics, in evaluation by running ones; :class:`SupernetCell` does the same
(``batch_norm=False`` turns it off, which makes the supernet at one-hot weights the
derived cell exactly). The derived cell (:class:`HighwayCell`) has none (rnn/model.py).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nasbench.spaces.language_model import ACTIVATIONS, LanguageModelStage
from nasbench.spaces.language_model_network import (
    ACTIVATION_FUNCTIONS,
    LanguageModel,
    RecurrentCell,
    uniform_parameter,
)
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch

OPERATIONS = ("none", *ACTIVATIONS)
"""The columns of alpha: DARTS rnn/genotypes.py:5-11 (none, tanh, relu, sigmoid, identity)."""
NONE = OPERATIONS.index("none")
ALPHA_INIT_SCALE = 1e-3
"""alpha ~ 1e-3 * N(0, 1) (model_search.py:61)."""
FIRST_ACTIVATION = "tanh"
"""Node 0's activation, fixed in DARTS' space (rnn/model.py:54)."""


def edge_count(steps: int) -> int:
    """Edges of a cell of ``steps`` nodes after node 0: node i has i predecessors (1 + ... + N)."""
    return steps * (steps + 1) // 2


def node_edges(steps: int) -> list[range]:
    """Per node 1..N, its rows of alpha (edges from nodes 0..i-1, in order; model_search.py:21-41)."""
    rows, offset = [], 0
    for i in range(1, steps + 1):
        rows.append(range(offset, offset + i))
        offset += i
    return rows


class SupernetCell(RecurrentCell):
    """The relaxed cell: the :class:`HighwayCell` parameters of every cell of ``steps`` nodes
    (W0 and one W_i per node) plus alpha, of shape (edges, operations)."""

    def __init__(self, input_size: int, hidden_size: int, steps: int, batch_norm: bool = True):
        super().__init__(input_size, hidden_size)
        self.steps = steps
        self.w0 = uniform_parameter(input_size + hidden_size, 2 * hidden_size)
        self.ws = nn.ParameterList(uniform_parameter(hidden_size, 2 * hidden_size) for _ in range(steps))
        self.alpha = nn.Parameter(ALPHA_INIT_SCALE * torch.randn(edge_count(steps), len(OPERATIONS)))
        self.bn = nn.BatchNorm1d(hidden_size, affine=False) if batch_norm else None
        self._activations = tuple(ACTIVATION_FUNCTIONS[name] for name in ACTIVATIONS)
        self._mixing: torch.Tensor | None = None

    def project(self, inputs: torch.Tensor) -> torch.Tensor:
        # The operation weights are the same at every time step of a window: softmax once here.
        self._mixing = self.alpha.softmax(dim=-1)[:, NONE + 1:]  # none adds nothing (model_search.py:34-35)
        return inputs @ self.w0[:self.input_size]

    def _normalise(self, s: torch.Tensor) -> torch.Tensor:
        return s if self.bn is None else self.bn(s)

    def step(self, projected, state, h_mask):
        (h_prev,) = state
        masked = h_prev if h_mask is None else h_prev * h_mask
        c0, h0 = (projected + masked @ self.w0[self.input_size:]).chunk(2, dim=-1)
        s0 = h_prev + torch.sigmoid(c0) * (torch.tanh(h0) - h_prev)
        states = [self._normalise(s0)]
        for w, rows in zip(self.ws, node_edges(self.steps)):
            prev = torch.stack(states)  # (i, batch, hidden): every predecessor at once
            c, h = ((prev if h_mask is None else prev * h_mask) @ w).chunk(2, dim=-1)
            c = torch.sigmoid(c)
            p = self._mixing[rows.start:rows.stop]  # (i, operations)
            activated = torch.stack([f(h) for f in self._activations])  # (operations, i, batch, hidden)
            mixed = torch.einsum("kibh,ik->ibh", activated, p)
            # sum_k p_k (s + c (f_k(h) - s)) = P s + c (sum_k p_k f_k(h) - P s), P the non-none weight
            kept = p.sum(dim=-1)[:, None, None] * prev
            states.append(self._normalise((kept + c * (mixed - kept)).sum(dim=0)))
        return (torch.stack(states[1:]).mean(dim=0),)


class RecurrentSupernet(LanguageModel):
    """The language model (embedding, dropouts, tied decoder) around a :class:`SupernetCell`,
    split into network weights and architecture parameters for the bilevel search."""

    cell: SupernetCell

    def __init__(self, vocab_size: int, stage: LanguageModelStage, steps: int, batch_norm: bool = True):
        super().__init__(SupernetCell(stage.hidden_size, stage.hidden_size, steps, batch_norm), vocab_size,
                         stage.dropouts)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.cell.alpha]

    def named_weight_parameters(self) -> dict[str, nn.Parameter]:
        """Every parameter but alpha (the tied embedding/decoder matrix once)."""
        return {name: p for name, p in self.named_parameters() if p is not self.cell.alpha}

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.named_weight_parameters().values())

    def edge_weights(self) -> torch.Tensor:
        """softmax(alpha) per edge: (edges, operations), columns as :data:`OPERATIONS`."""
        return self.cell.alpha.softmax(dim=-1)

    def genotype(self) -> RecurrentCellArch:
        with torch.no_grad():
            return derive_arch(self.edge_weights(), self.cell.steps)


def derive_arch(weights: torch.Tensor | Sequence[Sequence[float]], steps: int) -> RecurrentCellArch:
    """DARTS' genotype (model_search.py:75-95): per node the single strongest incoming
    (edge, operation) by weight, ``none`` excluded; ties go to the earlier predecessor,
    then the earlier operation, as there. Node 0 is tanh, the output averages nodes 1..N."""
    rows = weights.detach().cpu().tolist() if isinstance(weights, torch.Tensor) else [list(r) for r in weights]
    if len(rows) != edge_count(steps) or any(len(r) != len(OPERATIONS) for r in rows):
        raise ValueError(f"weights of shape ({len(rows)}, ...) for a cell of {steps} steps: need "
                         f"({edge_count(steps)}, {len(OPERATIONS)})")
    nodes = []
    for edges in node_edges(steps):
        candidates = [(rows[e][k], j, k) for j, e in enumerate(edges) for k in range(len(OPERATIONS)) if k != NONE]
        best = max(candidates, key=lambda c: (c[0], -c[1], -c[2]))
        nodes.append((OPERATIONS[best[2]], best[1]))
    return RecurrentCellArch(FIRST_ACTIVATION, tuple(nodes), "intermediate")
