"""The DARTS/NASNet cell search space."""
from __future__ import annotations

import dataclasses
import json
import random
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Mapping

from nasbench.spaces.base import SearchSpace, ZooEntry
from nasbench.spaces.cell import costs
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, CellEdges, Genotype
from nasbench.types import (
    ArchitectureGraph,
    CostLayout,
    GraphEdge,
    GraphNode,
    NetworkConfig,
    PartKey,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

NODES = 4
SAMPLED_OPERATIONS = tuple(op for op in SEARCH_OPERATIONS if op != "none")
"""Operations a random architecture draws from. ``none`` is excluded because no search
method can derive it either (DARTS and its successors drop it when deriving a cell)."""


class CellSpace(SearchSpace[Genotype]):
    name = "cell"
    description = (
        "DARTS/NASNet cell space: normal and reduction cells, 2 inputs, 4 nodes of 2 edges, "
        "8 DARTS operations; networks in DARTS' CIFAR layout"
    )
    arch_noun = "genotype"

    def sample(self, rng: random.Random) -> Genotype:
        """Per node: two distinct inputs among the earlier states, an operation for each,
        uniformly; all intermediate nodes concatenated (the RS baseline of DARTS and of
        Li & Talwalkar, 2019)."""
        cells = []
        for _ in range(2):
            edges = []
            for node in range(NODES):
                for source in sorted(rng.sample(range(node + 2), 2)):
                    edges.append((rng.choice(SAMPLED_OPERATIONS), source))
            cells.append(tuple(edges))
        concat = tuple(range(2, NODES + 2))
        return Genotype(normal=cells[0], normal_concat=concat, reduce=cells[1], reduce_concat=concat)

    def mutate(self, arch: Genotype, rng: random.Random) -> Genotype:
        """AmoebaNet's mutations (Real et al., AAAI 2019, Sect. 2.2): pick a cell (normal or
        reduction), one of its nodes and one of the node's two edges uniformly, then either
        replace the edge's input by another earlier state (hidden-state mutation) or its
        operation by another one (op mutation), the two equally likely. An input is never
        made equal to the node's other input (the space's nodes have two distinct inputs),
        so node 0 can only change operations."""
        cells = {kind: list(edges) for kind, edges, _ in arch.cells() if edges is not None}
        kind = rng.choice(sorted(cells))
        edges = cells[kind]
        position = rng.randrange(len(edges))
        op, source = edges[position]
        other_source = edges[position ^ 1][1]
        new_sources = [s for s in range(position // 2 + 2) if s not in (source, other_source)]
        if new_sources and rng.random() < 0.5:
            edges[position] = (op, rng.choice(new_sources))
        else:
            edges[position] = (rng.choice([o for o in SAMPLED_OPERATIONS if o != op]), source)
        return dataclasses.replace(arch, **{kind: tuple(edges)})

    def build(self, arch: Genotype, config: NetworkConfig) -> nn.Module:
        from nasbench.spaces.cell.network import EvalNetwork

        return EvalNetwork(arch, config.channels, config.cells, config.num_classes, config.auxiliary)

    def from_dict(self, data: Any, where: str = "genotype") -> Genotype:
        return Genotype.from_dict(data, where)

    def to_dict(self, arch: Genotype) -> dict[str, Any]:
        return arch.to_dict()

    def skip_share(self, arch: Genotype) -> dict[str, float]:
        """Per cell type, the share of ``skip_connect`` among the cell's edges (DARTS' known
        failure mode is a cell collapsing onto skip connections)."""
        return {group: sum(op == "skip_connect" for op, _ in edges) / len(edges)
                for group, edges, _ in arch.cells() if edges is not None}

    def zoo(self) -> Mapping[str, ZooEntry[Genotype]]:
        return _zoo()

    def graph(self, arch: Genotype) -> tuple[ArchitectureGraph, ...]:
        """DARTS' drawing (Liu et al., ICLR 2019, Fig. 4-5) of each searched cell; GDAS' fixed
        reduction cell is not searched and so not drawn."""
        return tuple(cell_graph(kind, edges, concat) for kind, edges, concat in arch.cells() if edges is not None)

    def cost_parts(self, arch: Genotype, config: NetworkConfig) -> list[PartKey]:
        return costs.genotype_parts(arch, config)

    def all_cost_parts(self, config: NetworkConfig) -> list[PartKey]:
        return costs.all_parts(config, [entry.arch for entry in self.zoo().values()])

    def build_part(self, key: PartKey) -> nn.Module:
        return costs.build_part(key)

    def cost_layout(self, config: NetworkConfig) -> CostLayout:
        return costs.cost_layout(config)

    def arch_weights(self, arch: Genotype) -> dict[str, torch.Tensor]:
        return costs.genotype_weights(arch)


def cell_graph(group: str, edges: CellEdges, concat: tuple[int, ...]) -> ArchitectureGraph:
    """The inputs c_{k-2} and c_{k-1}, intermediate nodes 0..n-1 whose edges carry their
    operations, and the output c_{k} concatenating the listed nodes."""
    nodes = [GraphNode("s0", "c_{k-2}", "input"), GraphNode("s1", "c_{k-1}", "input")]
    nodes += [GraphNode(f"s{state}", str(state - 2), "intermediate") for state in range(2, len(edges) // 2 + 2)]
    links = [GraphEdge(f"s{source}", f"s{position // 2 + 2}", op) for position, (op, source) in enumerate(edges)]
    links += [GraphEdge(f"s{state}", "out") for state in concat]
    return ArchitectureGraph(group, (*nodes, GraphNode("out", "c_{k}", "output")), tuple(links))


@cache
def _zoo() -> Mapping[str, ZooEntry[Genotype]]:
    raw = json.loads(resources.files("nasbench.baselines").joinpath("genotypes.json").read_text())
    entries = {}
    for name, record in raw.items():
        genotype = Genotype.from_dict({k: record[k] for k in ("normal", "normal_concat", "reduce", "reduce_concat")},
                                      where=f"baselines/genotypes.json:{name}")
        entries[name] = ZooEntry(name, genotype, record.get("published_params_m"), record["source"],
                                 record.get("note", ""), record.get("params_note", ""))
    return entries
