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
from nasbench.hardware.table import CostTable, LatencyPredictor, MissingEntryError
from nasbench.spaces.base import SearchSpace
from nasbench.types import PartKey

METRICS = ("latency_ms", "flops", "params", "mac_elements", "mac_bytes")


class CostModel:
    def __init__(self, table: CostTable, space: SearchSpace, metric: str):
        if metric not in METRICS:
            raise NasbenchError(f"unknown cost metric {metric!r}; known: {', '.join(METRICS)}")
        if table.space != space.name:
            raise NasbenchError(f"cost table {table.path} is for the {table.space} space, not {space.name}")
        if metric == "latency_ms":
            table.require()
        self.table, self.space, self.metric = table, space, metric
        self.config = table.network_config
        if space.network_record(self.config) != table.network:
            raise NasbenchError(f"cost table {table.path or table.file_name() if table.measured else table.path} "
                                f"was measured for another {space.name} network ({table.network}) than the one "
                                f"costed ({space.network_record(self.config)}); profile one for this layout")
        missing = [key for key in space.all_cost_parts(self.config) if key not in table.entries]
        if missing:
            where = f"cost table {table.path}" if table.path else f"the {table.protocol} table"
            raise MissingEntryError(f"{where} lacks {len(missing)} of the {space.name} space's parts "
                                    f"(e.g. {missing[0].id}); measure a complete one with `{table.profile_command()}`")
        self.predictor = table.predictor or LatencyPredictor("sum", 1.0, table.harness_ms or 0.0)
        self.offset = self.predictor.offset_ms if metric == "latency_ms" else 0.0
        self._layout: tuple[float, dict[str, torch.Tensor]] | None = None

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
        if self._layout is None:
            layout = self.space.cost_layout(self.config)
            fixed = sum(self.part_cost(key) for key in layout.fixed)
            per_group = {
                group: torch.tensor([[[self.part_cost(key) for key in ops] for ops in edges] for edges in positions],
                                    dtype=torch.float64).sum(0)
                for group, positions in layout.choices.items()
            }
            self._layout = (fixed, per_group)
        return self._layout

    def expected(self, weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Expected cost under per-edge operation weights (e.g. softmax or Gumbel-softmax
        of the architecture parameters), one (edges, operations) tensor per group."""
        fixed, per_group = self._cost_tensors()
        missing = set(per_group) - set(weights)
        if missing:
            raise NasbenchError(f"expected cost needs weights for {', '.join(sorted(missing))}")
        total = sum((weights[g] * per_group[g].to(weights[g].device, weights[g].dtype)).sum() for g in per_group)
        return total + fixed + self.offset
