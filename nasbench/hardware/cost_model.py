"""The cost model the search methods use: one object for every family.

- exact cost of an architecture (a sum of table entries, the latency through the
  table's predictor): a hard filter for black-box search, a sampled penalty for RL;
- expected cost under architecture probabilities, as a differentiable torch
  expression: the penalty of gradient methods (SNAS' ``E[C(Z)]``, FBNet/ProxylessNAS'
  expected latency). With one-hot weights it equals the exact cost.
"""
from __future__ import annotations

from typing import Hashable, Mapping

import torch

from nasbench.errors import NasbenchError
from nasbench.hardware.table import CostTable, LatencyPredictor
from nasbench.spaces.base import SearchSpace
from nasbench.types import PartKey

METRICS = ("latency_ms", "flops", "params", "mac_elements", "mac_bytes")


class CostModel:
    def __init__(self, table: CostTable, space: SearchSpace, metric: str):
        if metric not in METRICS:
            raise NasbenchError(f"unknown cost metric {metric!r}; known: {', '.join(METRICS)}")
        table.check_fits(space)
        if metric == "latency_ms":
            table.require()
        self.table, self.space, self.metric = table, space, metric
        self.config = table.network_config
        self.predictor = table.predictor or LatencyPredictor("sum", 1.0, table.harness_ms or 0.0)
        self.offset = self.predictor.offset_ms if metric == "latency_ms" else 0.0
        self._layout: tuple[float, dict[str, torch.Tensor]] | None = None
        self._structure: _EdgeStructure | None = None

    def part_cost(self, key: PartKey) -> float:
        """What ``key`` adds to a network's cost (latency: through the table's predictor)."""
        entry = self.table.entry(key)
        if self.metric == "latency_ms":
            return self.predictor.part_scale(key) * (entry.latency.p50_ms - self.table.harness_ms)
        return float(getattr(entry, self.metric))

    def cost(self, arch: Hashable) -> float:
        """The exact cost of ``arch``'s network."""
        return sum(self.part_cost(key) for key in self.space.cost_parts(arch, self.config)) + self.offset

    def within(self, arch: Hashable, budget: float) -> bool:
        """The hard constraint of black-box search."""
        return self.cost(arch) <= budget

    def _cost_tensors(self) -> tuple[float, dict[str, torch.Tensor]]:
        """The fixed parts' cost and, per group, a (positions, edges, operations) tensor of
        what each choice adds at each position."""
        if self._layout is None:
            layout = self.space.cost_layout(self.config)
            fixed = sum(self.part_cost(key) for key in layout.fixed)
            per_group = {
                group: torch.tensor([[[self.part_cost(key) for key in ops] for ops in edges] for edges in positions],
                                    dtype=torch.float64)
                for group, positions in layout.choices.items()
            }
            self._layout = (fixed, per_group)
            self._structure = _EdgeStructure(layout.nodes, layout.inputs_per_node, layout.free_op)
        return self._layout

    def _group_costs(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per group, the choices' costs on the weights' device and dtype."""
        _, per_group = self._cost_tensors()
        missing = set(per_group) - set(weights)
        if missing:
            raise NasbenchError(f"expected cost needs weights for {', '.join(sorted(missing))}")
        return {g: costs.to(weights[g].device, weights[g].dtype) for g, costs in per_group.items()}

    def expected(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Expected cost under per-edge operation weights (e.g. softmax or Gumbel-softmax
        of the architecture parameters), one (edges, operations) tensor per group, counting
        the edges and operations a derived network has (:meth:`_EdgeStructure.shares`)."""
        total = 0.0
        for group, costs in self._group_costs(weights).items():
            share, within = self._structure.shares(weights[group])
            total = total + (share[:, None] * within * costs.sum(0)).sum()
        return total + self._layout[0] + self.offset

    def per_edge_log(self, weights: Mapping[str, torch.Tensor], scale: float = 1.0) -> torch.Tensor:
        """SNAS' resource term for this metric (Xie et al. 2019, Sect. 2.4; the official
        code's log penalty, SNAS-Series/SNAS-Series SNAS/model_search.py): per edge the log of
        its expected cost (times ``scale``, floored at 1 as the official code floors it), summed
        over a cell's edges, averaged over the group's positions (the code divides the normal
        cells' sum by 6 and the reduction cells' by 2 in its 8-cell network) and summed over
        the groups. Edges count as :meth:`expected` counts them."""
        total = 0.0
        for group, costs in self._group_costs(weights).items():
            share, within = self._structure.shares(weights[group])
            per_edge = (within * costs).sum(-1) * scale
            total = total + (share * torch.log(per_edge.clamp_min(1.0))).sum(-1).mean()
        return total


class _EdgeStructure:
    """Which edges and operations a derived network keeps, as differentiable shares.

    Without nodes every edge is kept with its weights as given. With nodes (the cell space),
    the derivation keeps ``inputs_per_node`` incoming edges per node and never the free
    operation (``none``): an edge's share of its node is its non-free mass ``m_e`` relative
    to the node's, ``k * m_e / sum(m)`` (k the inputs the node keeps), and its operations
    weigh ``w / m_e`` without the free one. On the one-hot weights of a derived genotype
    this counts exactly its edges and operations, so the expected cost is the exact one;
    ``none`` is no cheap way out, as no derived network has it."""

    def __init__(self, nodes: tuple[tuple[int, ...], ...], inputs_per_node: int, free_op: int | None):
        self.nodes = nodes
        if nodes:
            self.node_of_edge = torch.tensor([n for n, edges in enumerate(nodes) for _ in edges])
            self.edge_order = torch.tensor([e for edges in nodes for e in edges])
            self.kept = torch.tensor([float(min(inputs_per_node, len(edges))) for edges in nodes for _ in edges])
        self.free_op = free_op

    def shares(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per edge its expected count in a derived network (edges,), per edge its
        operations' weights (edges, operations))."""
        if not self.nodes:
            return torch.ones(w.shape[0], device=w.device, dtype=w.dtype), w
        kept_ops = w if self.free_op is None else w.index_fill(1, torch.tensor([self.free_op], device=w.device), 0.0)
        mass = kept_ops.sum(-1)
        order = self.edge_order.to(w.device)
        node = self.node_of_edge.to(w.device)
        node_mass = torch.zeros(len(self.nodes), device=w.device, dtype=w.dtype).index_add(0, node, mass[order])
        share = torch.zeros_like(mass).index_copy(
            0, order, self.kept.to(w.device, w.dtype) * mass[order] / node_mass[node].clamp_min(TINY))
        return share, kept_ops / mass.clamp_min(TINY)[:, None]


TINY = 1e-12
"""Floor of a mass divided by (an edge or node with no weight left contributes nothing)."""
