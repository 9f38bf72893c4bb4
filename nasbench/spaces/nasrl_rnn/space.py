"""NAS-RL's recurrent cell space (Zoph & Le, ICLR 2017, Sect. 3.4 and 4.2): a tree of B
leaves (the protocol's ``[language_model]`` ``nasrl_base``; 8 for PTB), each node one of 2
combinations and 4 activations, a cell inject of the same choices and two cell indices.
The zoo holds the NAS cell as TensorFlow's ``tf.contrib.rnn.NASCell`` implements it.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Mapping

from nasbench.spaces.base import ZooEntry
from nasbench.spaces.language_model import ACTIVATIONS, RecurrentSpace
from nasbench.spaces.nasrl_rnn import costs
from nasbench.spaces.nasrl_rnn.arch import COMBINATIONS, TreeCellArch, tree_children
from nasbench.types import (
    ArchitectureGraph,
    GraphEdge,
    GraphNode,
    NetworkConfig,
    PartKey,
)

if TYPE_CHECKING:
    from torch import nn

    from nasbench.spaces.nasrl_rnn.cell import TreeCell

CHOICES = {"combination": COMBINATIONS, "activation": ACTIVATIONS}

NAS_CELL = TreeCellArch(
    nodes=(("add", "sigmoid"), ("add", "relu"), ("add", "sigmoid"), ("elem_mult", "relu"), ("add", "tanh"),
           ("add", "sigmoid"), ("add", "tanh"), ("add", "sigmoid"),  # leaves: NASCell's layer1_0..7
           ("elem_mult", "tanh"), ("add", "tanh"), ("elem_mult", "tanh"), ("add", "sigmoid"),  # l2_0..3
           ("elem_mult", "identity"), ("add", "tanh"),  # l3_0 (its output is its pre-activation), l3_1
           ("elem_mult", "tanh")),  # new_m = h_t
    inject=("add", "tanh"),  # l2_0 = tanh(l2_0 + c_prev)
    cell_indices=(12, 8))  # new_c = l3_0_pre; c_prev enters at l2_0
"""TensorFlow 1.x contrib/rnn/python/ops/rnn_cell.py, ``NASCell.call`` (Zoph & Le, Fig. 8)."""

ZOO = {"NAS_cell": ZooEntry(
    "NAS_cell", NAS_CELL, 54.0,
    "TensorFlow tf.contrib.rnn.NASCell (contrib/rnn/python/ops/rnn_cell.py); Zoph & Le, ICLR 2017, Fig. 8, "
    "Table 2 (base 8, shared embeddings: 25M, 64.0; 54M, 62.4)",
    "NAS-RL's base-8 PTB cell",
    params_note="the paper gives neither the hidden size nor the layer count of its 25M and 54M models; one "
                "layer at n units has 16 n^2 cell weights (TF's NASCell, no biases) besides the tied embedding")}


class NasRlRnnSpace(RecurrentSpace):
    name = "nasrl-rnn"
    description = ("NAS-RL recurrent cell space for Penn Treebank: a tree over B leaves (the protocol's "
                   "[language_model]), each node an add or elem_mult and one of 4 activations, a cell inject and "
                   "the cell indices that read and write the memory cell")

    def sample(self, rng: random.Random) -> TreeCellArch:
        """Every choice uniformly, in the controller's order: per node a combination and an
        activation, the inject's, then the two cell indices among the nodes below the root."""
        size = 2 * self.settings.nasrl_base - 1
        nodes = tuple((rng.choice(CHOICES["combination"]), rng.choice(CHOICES["activation"])) for _ in range(size))
        inject = (rng.choice(CHOICES["combination"]), rng.choice(CHOICES["activation"]))
        return TreeCellArch(nodes, inject, (rng.randrange(size - 1), rng.randrange(size - 1)))

    def mutate(self, arch: TreeCellArch, rng: random.Random) -> TreeCellArch:
        """One of the cell's decisions, uniformly (a node's or the inject's combination or
        activation, or a cell index), replaced by another value."""
        decisions = len(arch.nodes) + 1
        position = rng.randrange(2 * decisions + 2)
        if position >= 2 * decisions:
            indices = list(arch.cell_indices)
            k = position - 2 * decisions
            indices[k] = rng.choice([i for i in range(len(arch.nodes) - 1) if i != indices[k]])
            return TreeCellArch(arch.nodes, arch.inject, tuple(indices))
        pairs = [*arch.nodes, arch.inject]
        node, part = divmod(position, 2)
        values = list(pairs[node])
        values[part] = rng.choice([v for v in CHOICES[("combination", "activation")[part]] if v != values[part]])
        pairs[node] = tuple(values)
        return TreeCellArch(tuple(pairs[:-1]), pairs[-1], arch.cell_indices)

    def cost_parts(self, arch: TreeCellArch, config: NetworkConfig) -> list[PartKey]:
        arch.check()
        return costs.cell_parts(arch, config)

    def all_cost_parts(self, config: NetworkConfig) -> list[PartKey]:
        return costs.all_parts(config, {self.settings.nasrl_base, *(entry.arch.base for entry in ZOO.values())})

    def build_part(self, key: PartKey) -> nn.Module:
        from nasbench.spaces.nasrl_rnn.parts import build_part

        return build_part(key)

    def cell_class(self) -> type[TreeCell]:
        from nasbench.spaces.nasrl_rnn.cell import TreeCell

        return TreeCell

    def from_dict(self, data: Any, where: str = "architecture") -> TreeCellArch:
        return TreeCellArch.from_dict(data, where)

    def to_dict(self, arch: TreeCellArch) -> dict[str, Any]:
        return arch.to_dict()

    def zoo(self) -> Mapping[str, ZooEntry[TreeCellArch]]:
        return ZOO

    def graph(self, arch: TreeCellArch) -> tuple[ArchitectureGraph, ...]:
        """The tree as Fig. 5 draws it: x_t and h_{t-1} into every leaf, children into their
        parent, c_{t-1} into the injected node, the root out as h_t and c_t out of its node."""
        nodes = [GraphNode("x", "x_{t}", "input"), GraphNode("h", "h_{t-1}", "input"),
                 GraphNode("c", "c_{t-1}", "input")]
        nodes += [GraphNode(f"n{i}", f"{i}: {comb}, {act}", "intermediate") for i, (comb, act) in enumerate(arch.nodes)]
        # h_t is the cell's one output; c_t, which the next step reads, is drawn as an inner value
        nodes += [GraphNode("h_out", "h_{t}", "output"), GraphNode("c_out", "c_{t}", "intermediate")]
        edges = [GraphEdge(src, f"n{i}") for i in range(arch.base) for src in ("x", "h")]
        edges += [GraphEdge(f"n{child}", f"n{parent}") for parent, pair in tree_children(len(arch.nodes)).items()
                  for child in pair]
        cell_out, cell_in = arch.cell_indices
        edges += [GraphEdge("c", f"n{cell_in}", f"inject {arch.inject[0]}, {arch.inject[1]}"),
                  GraphEdge(f"n{len(arch.nodes) - 1}", "h_out"), GraphEdge(f"n{cell_out}", "c_out", "pre-activation")]
        return (ArchitectureGraph("recurrent", tuple(nodes), tuple(edges)),)
