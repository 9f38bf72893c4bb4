"""ENAS' recurrent cell space (Pham et al., ICML 2018, Sect. 2.1, Fig. 1), which DARTS'
recurrent space (Liu et al., ICLR 2019, Sect. 2.1, 4.1) is at 8 steps with all intermediate
nodes averaged: N nodes, each one of 4 activations on one earlier node, 4^N * (N-1)! cells.

The protocol's ``[language_model]`` gives the sampled cells' size (``cell_steps``) and output
rule (``cell_average``); a cell keeps its own size, so the zoo holds ENAS' 12-node and
DARTS' 9-node cells side by side.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Mapping

from nasbench.spaces.base import ZooEntry
from nasbench.spaces.language_model import ACTIVATIONS, RecurrentSpace
from nasbench.spaces.recurrent_cell import costs
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.types import (
    ArchitectureGraph,
    GraphEdge,
    GraphNode,
    NetworkConfig,
    PartKey,
)

if TYPE_CHECKING:
    from torch import nn

    from nasbench.spaces.recurrent_cell.cell import HighwayCell


def _cell(first: str, nodes: list[tuple[str, int]], average: str) -> RecurrentCellArch:
    return RecurrentCellArch(first, tuple(nodes), average)


ENAS_OFFICIAL_ARC = "0 0 0 1 1 2 1 2 0 2 0 5 1 1 0 6 1 8 1 8 1 8 1"
"""ENAS' final PTB cell as its official script trains it (scripts/ptb_final.sh:5): node 0's
activation, then (input, activation) per node; ptb_enas_child.py:281-290 numbers the
activations tanh, relu, identity, sigmoid."""
ENAS_ACTIVATION_CODES = ("tanh", "relu", "identity", "sigmoid")


def enas_arc(text: str) -> RecurrentCellArch:
    """A cell from ENAS' ``fixed_arc`` notation (loose ends averaged, as ENAS does)."""
    codes = [int(v) for v in text.split()]
    pairs = zip(codes[1::2], codes[2::2])
    return _cell(ENAS_ACTIVATION_CODES[codes[0]], [(ENAS_ACTIVATION_CODES[f], p) for p, f in pairs], "loose-ends")


ZOO = {
    "DARTS_V1": ZooEntry(
        "DARTS_V1", _cell("tanh", [("relu", 0), ("relu", 1), ("tanh", 2), ("relu", 3), ("relu", 4), ("identity", 1),
                                   ("relu", 5), ("relu", 1)], "intermediate"),
        23.0, "DARTS rnn/genotypes.py:32; Liu et al., ICLR 2019, Table 2 (first order, 23M)",
        "DARTS' first-order recurrent cell: 8 steps, all averaged"),
    "DARTS_V2": ZooEntry(
        "DARTS_V2", _cell("tanh", [("sigmoid", 0), ("relu", 1), ("relu", 1), ("identity", 1), ("tanh", 2),
                                   ("sigmoid", 5), ("tanh", 3), ("relu", 5)], "intermediate"),
        23.0, "DARTS rnn/genotypes.py:33; Liu et al., ICLR 2019, Table 2 (second order, 23M), Fig. 6",
        "DARTS' second-order recurrent cell (DARTS = DARTS_V2)"),
    "ENAS": ZooEntry(
        "ENAS", _cell("tanh", [("tanh", 0), ("tanh", 1), ("relu", 1), ("tanh", 3), ("tanh", 3), ("relu", 3),
                               ("relu", 4), ("relu", 7), ("relu", 8), ("relu", 8), ("relu", 8)], "loose-ends"),
        24.0, "DARTS rnn/genotypes.py:15-29 (its transcription, concat [2, 5, 6, 9, 10, 11]); Pham et al., "
              "ICML 2018, Table 1 (24M)",
        "ENAS' PTB cell as DARTS transcribes it: 12 nodes, loose ends averaged",
        params_note="at ENAS' final 748 units (ptb_final.sh) the model has 22.0M parameters; the paper's 24M is "
                    "not reached by its official script's size"),
    "ENAS_official": ZooEntry(
        "ENAS_official", enas_arc(ENAS_OFFICIAL_ARC), 24.0,
        "ENAS scripts/ptb_final.sh:5 (fixed_arc); Pham et al., ICML 2018, Table 1 (24M)",
        "ENAS' PTB cell as its official final-training script gives it (differs from DARTS' transcription)",
        params_note="22.0M at ptb_final.sh's 748 units, as the ENAS entry"),
}


class EnasRnnSpace(RecurrentSpace):
    name = "enas-rnn"
    description = ("ENAS/DARTS recurrent cell space for Penn Treebank: N highway nodes (the protocol's "
                   "[language_model]), each one of 4 activations on one earlier node; loose ends (ENAS) or all "
                   "intermediate nodes (DARTS) averaged")

    def sample(self, rng: random.Random) -> RecurrentCellArch:
        """Every activation uniformly among the 4 and every node's input uniformly among the
        earlier nodes (what ENAS' controller draws before it learns); node 0's activation is
        tanh under DARTS' rule, which fixes it, and drawn under ENAS'."""
        return self._draw(rng, self.settings.cell_steps)

    def profile_sample(self, rng: random.Random) -> RecurrentCellArch:
        """A cell of as many nodes after node 0 as the sampled and zoo cells span (uniformly; the
        proxy protocol's 8 to ENAS' 11), drawn as :meth:`sample` draws. Fitted on cells of one
        size, a table's predictor cannot tell a node's cost from the per-call overhead (the proxy
        tables so fitted under-predicted ENAS' 12-node cell by 9-16%); fitted on 1 to 11 nodes,
        one scale and offset fit no size well (74-89% of cells within ±10%)."""
        return self._draw(rng, rng.randint(*self._sizes()))

    def _draw(self, rng: random.Random, steps: int) -> RecurrentCellArch:
        enas = self.settings.cell_average == "loose-ends"
        first = rng.choice(ACTIVATIONS) if enas else "tanh"
        nodes = tuple((rng.choice(ACTIVATIONS), rng.randrange(i)) for i in range(1, steps + 1))
        return RecurrentCellArch(first, nodes, self.settings.cell_average)

    def _sizes(self) -> tuple[int, int]:
        """The fewest and most nodes after node 0 of a sampled or zoo cell."""
        sizes = [self.settings.cell_steps, *(len(entry.arch.nodes) for entry in ZOO.values())]
        return min(sizes), max(sizes)

    def mutate(self, arch: RecurrentCellArch, rng: random.Random) -> RecurrentCellArch:
        """One node, uniformly (node 0 only under ENAS' rule, where its activation is a choice);
        its input (past node 1, which can only read node 0) or its activation replaced by
        another, the two equally likely."""
        nodes = list(arch.nodes)
        lowest = 0 if arch.average == "loose-ends" else 1
        node = rng.randrange(lowest, len(nodes) + 1)
        if node == 0:
            return RecurrentCellArch(rng.choice([a for a in ACTIVATIONS if a != arch.first]), arch.nodes,
                                     arch.average)
        activation, source = nodes[node - 1]
        if node > 1 and rng.random() < 0.5:
            nodes[node - 1] = (activation, rng.choice([j for j in range(node) if j != source]))
        else:
            nodes[node - 1] = (rng.choice([a for a in ACTIVATIONS if a != activation]), source)
        return RecurrentCellArch(arch.first, tuple(nodes), arch.average)

    def cost_parts(self, arch: RecurrentCellArch, config: NetworkConfig) -> list[PartKey]:
        arch.check()
        return costs.cell_parts(arch, config)

    def all_cost_parts(self, config: NetworkConfig) -> list[PartKey]:
        """Node 0 tanh (DARTS' rule) or any (ENAS'), and the zoo cells'; the average of as many
        nodes as the cells :meth:`profile_sample` draws have (ENAS' rule: 1 to that many loose
        ends) and as the zoo cells average."""
        fewest, most = self._sizes()
        darts = self.settings.cell_average == "intermediate"
        firsts = ["tanh"] if darts else ACTIVATIONS
        averaged = range(fewest if darts else 1, most + 1)
        return costs.all_parts(config, [*firsts, *(entry.arch.first for entry in ZOO.values())],
                               [*averaged, *(len(entry.arch.concat) for entry in ZOO.values())])

    def build_part(self, key: PartKey) -> nn.Module:
        from nasbench.spaces.recurrent_cell.parts import build_part

        return build_part(key)

    def cell_class(self) -> type[HighwayCell]:
        from nasbench.spaces.recurrent_cell.cell import HighwayCell

        return HighwayCell

    def from_dict(self, data: Any, where: str = "architecture") -> RecurrentCellArch:
        return RecurrentCellArch.from_dict(data, where)

    def to_dict(self, arch: RecurrentCellArch) -> dict[str, Any]:
        return arch.to_dict()

    def zoo(self) -> Mapping[str, ZooEntry[RecurrentCellArch]]:
        return ZOO

    def graph(self, arch: RecurrentCellArch) -> tuple[ArchitectureGraph, ...]:
        """DARTS' drawing (Fig. 6): x_t and h_{t-1} into node 0, an edge per node from its input
        labelled with its activation, and the averaged nodes into h_t."""
        nodes = [GraphNode("x", "x_{t}", "input"), GraphNode("h", "h_{t-1}", "input")]
        nodes += [GraphNode(f"n{i}", str(i), "intermediate") for i in range(len(arch.nodes) + 1)]
        edges = [GraphEdge("x", "n0", arch.first), GraphEdge("h", "n0", arch.first)]
        edges += [GraphEdge(f"n{source}", f"n{i}", act) for i, (act, source) in enumerate(arch.nodes, start=1)]
        edges += [GraphEdge(f"n{i}", "out", "avg") for i in arch.concat]
        return (ArchitectureGraph("recurrent", (*nodes, GraphNode("out", "h_{t}", "output")), tuple(edges)),)
