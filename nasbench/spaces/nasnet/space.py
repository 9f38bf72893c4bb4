"""The NASNet search space (Zoph, Vasudevan, Shlens & Le, "Learning Transferable
Architectures for Scalable Image Recognition", CVPR 2018, Sect. 3)."""
from __future__ import annotations

import dataclasses
import random
from functools import cache
from typing import TYPE_CHECKING, Any, Mapping

from nasbench.errors import ConfigError
from nasbench.spaces.base import SearchSpace, ZooEntry
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.space import CellSpace
from nasbench.spaces.nasnet.arch import (
    BLOCKS,
    CELL_TYPES,
    COMBINATIONS,
    DECISION_NAMES,
    OPERATIONS,
    Block,
    CellArch,
    NasnetArch,
    state_name,
)
from nasbench.types import ArchitectureGraph, GraphEdge, GraphNode, NetworkConfig

if TYPE_CHECKING:
    from torch import nn

PAPER_CIFAR_NETWORK = NetworkConfig(channels=32, cells=20, auxiliary=True)
"""NASNet-A "6 @ 768" on CIFAR-10 (Table 1): N = 6 normal cells per stage, so 3N + 2 = 20
cells with the two reduction cells, and F = 32 filters in the first stage (768, the
penultimate layer's filters, is 6 concatenated states x 4 x F in the official code's
CIFAR configuration, which also sets the 3F-filter stem and the auxiliary head)."""


class NasnetSpace(SearchSpace[NasnetArch]):
    name = "nasnet"
    description = (  # a literal: the registry reads it from this source (BLOCKS and OPERATIONS, checked by a test)
        "NASNet space: normal and reduction cells of 5 blocks, each two inputs (a repeat allowed), "
        "one of 13 NASNet operations on each, combined by add or concat; networks in the "
        "cell space's CIFAR layout"
    )

    def sample(self, rng: random.Random) -> NasnetArch:
        """Every decision uniformly and independently (the paper's random-search baseline,
        Sect. 4.4 "Efficiency of architecture search methods", draws the controller's
        decisions from a uniform distribution instead of its softmax)."""
        blocks = []
        for _ in CELL_TYPES:
            for block in range(BLOCKS):
                inputs = (rng.randrange(block + 2), rng.randrange(block + 2))
                ops = (rng.choice(OPERATIONS), rng.choice(OPERATIONS))
                blocks.append(Block(inputs, ops, rng.choice(COMBINATIONS)))
        return NasnetArch(CellArch(tuple(blocks[:BLOCKS])), CellArch(tuple(blocks[BLOCKS:])))

    def mutate(self, arch: NasnetArch, rng: random.Random) -> NasnetArch:
        """AmoebaNet's mutations (Real et al., AAAI 2019, Sect. 2.2) on blocks: pick a cell
        and a block uniformly, then one of the block's five decisions uniformly and give it
        another value: an input (hidden-state mutation) or an operation (op mutation), each
        2 in 5 and so equally likely, as in AmoebaNet, or the combination (1 in 5). AmoebaNet's
        space always adds; without the combination flip, evolution could never change a
        combination its random first population drew, and part of this space would be
        unreachable by mutation. Inputs may repeat here, so every input has another value."""
        kind = rng.choice(CELL_TYPES)
        cell: CellArch = getattr(arch, kind)
        position = rng.randrange(BLOCKS)
        block = cell.blocks[position]
        decision = rng.choice(DECISION_NAMES)
        side = 0 if decision.endswith("_a") else 1
        if decision.startswith("input"):
            inputs = list(block.inputs)
            inputs[side] = rng.choice([s for s in range(position + 2) if s != inputs[side]])
            block = dataclasses.replace(block, inputs=tuple(inputs))
        elif decision.startswith("op"):
            ops = list(block.ops)
            ops[side] = rng.choice([op for op in OPERATIONS if op != ops[side]])
            block = dataclasses.replace(block, ops=tuple(ops))
        else:
            block = dataclasses.replace(block, combine=next(c for c in COMBINATIONS if c != block.combine))
        blocks = list(cell.blocks)
        blocks[position] = block
        return dataclasses.replace(arch, **{kind: CellArch(tuple(blocks))})

    def skip_share(self, arch: NasnetArch) -> dict[str, float]:
        """Per cell type, the share of identities among the cell's 2B operations."""
        return {kind: sum(op == "skip_connect" for block in cell.blocks for op in block.ops) / (2 * BLOCKS)
                for kind, cell in arch.cells()}

    def build(self, arch: NasnetArch, config: NetworkConfig) -> nn.Module:
        from nasbench.spaces.nasnet.network import NasnetNetwork

        return NasnetNetwork(arch, config.channels, config.cells, config.num_classes, config.auxiliary)

    def from_dict(self, data: Any, where: str = "architecture") -> NasnetArch:
        return NasnetArch.from_dict(data, where)

    def to_dict(self, arch: NasnetArch) -> dict[str, Any]:
        return arch.to_dict()

    def zoo(self) -> Mapping[str, ZooEntry[NasnetArch]]:
        return _zoo()

    def graph(self, arch: NasnetArch) -> tuple[ArchitectureGraph, ...]:
        """Per cell, as Fig. 4 of the paper: the inputs h_(i-1) and h_i, a node per block named
        by how it combines its two edges, each edge carrying its operation, and the output
        h_(i+1) concatenating the blocks no block reads."""
        return tuple(_cell_graph(kind, cell) for kind, cell in arch.cells())


def _cell_graph(group: str, cell: CellArch) -> ArchitectureGraph:
    nodes = [GraphNode(f"s{state}", state_name(state), "input") for state in (0, 1)]
    nodes += [GraphNode(f"s{position + 2}", f"n{position + 2}: {block.combine}", "intermediate")
              for position, block in enumerate(cell.blocks)]
    edges = [GraphEdge(f"s{source}", f"s{position + 2}", op) for position, block in enumerate(cell.blocks)
             for op, source in zip(block.ops, block.inputs)]
    edges += [GraphEdge(f"s{state}", "out") for state in cell.concat]
    return ArchitectureGraph(group, (*nodes, GraphNode("out", "h_(i+1)", "output")), tuple(edges))


def from_genotype(genotype: Genotype, where: str = "genotype") -> NasnetArch:
    """A cell-space genotype as a NASNet-space architecture: each node is a block that adds
    its two edges. Only a genotype whose concat lists are the nodes no node reads, and
    whose operations are NASNet's, has such a form."""
    cells = {}
    for kind, edges, concat in genotype.cells():
        if edges is None or len(edges) != 2 * BLOCKS:
            raise ConfigError(f"{where}: the {kind} cell needs {BLOCKS} searched nodes to be a NASNet cell")
        cell = CellArch(tuple(Block((a[1], b[1]), (a[0], b[0]), "add") for a, b in zip(edges[::2], edges[1::2])))
        if tuple(sorted(concat)) != cell.concat:
            raise ConfigError(f"{where}: the {kind} cell concatenates {list(concat)}, but a NASNet cell concatenates "
                              f"the nodes no node reads, {list(cell.concat)}")
        cells[kind] = cell
    return NasnetArch(**cells)


@cache
def _zoo() -> Mapping[str, ZooEntry[NasnetArch]]:
    darts_form = CellSpace().zoo()["NASNet"]
    nasnet_a = from_genotype(darts_form.arch, where="the cell space's NASNet genotype")
    return {"NASNet-A": ZooEntry(
        "NASNet-A", nasnet_a, 3.3,
        source="Zoph et al., CVPR 2018: cells from Fig. 4, params from Table 1 row 'NASNet-A (6 @ 768)' "
               "(3.3M, 3.41% error; 2.65% with cutout); converted from the cell space's NASNet genotype "
               f"({darts_form.source.split(';')[0]})",
        note="Every block adds (NASNet-A never concatenates); the paper's CIFAR size is PAPER_CIFAR_NETWORK "
             "(32 channels, 20 cells). NASNet's official code (tensorflow/models research/slim/nets/nasnet) "
             "concatenates two more states than Fig. 4 shows: h_(i-1) in the normal cell and the read block n3 "
             "in the reduction cell; this space follows the figure and the paper's rule.",
        params_note="3.062M at 6 @ 768 (32 channels, 20 cells; auxiliary head excluded), 7% under the published "
                    "3.3M, with 640 penultimate filters, not 768: the official code's extra concatenated states "
                    "(see the note) widen the cells' outputs from 5 to 6 (normal) and 3 to 4 (reduction) states, "
                    "and with them the 1x1 convolutions reading them. Rebuilt with those states concatenated, the "
                    "same network has 3.328M parameters and 768 penultimate filters, Table 1's figures.",
    )}
