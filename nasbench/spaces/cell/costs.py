"""The cell space's cost decomposition: which parts make up a genotype's evaluation
network, every part such networks can contain, and the layout of the supernet's
architecture weights over those parts (for expected, differentiable costs). Only
:func:`build_part` and :func:`genotype_weights` load torch, so that parts are listed without it."""
from __future__ import annotations

from typing import TYPE_CHECKING

from nasbench.errors import ConfigError
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.plan import (
    IMAGE_SIZE,
    STEM_MULTIPLIER,
    CellSpec,
    plan_network,
)
from nasbench.types import CostLayout, NetworkConfig, PartKey

if TYPE_CHECKING:
    import torch
    from torch import nn

SEARCH_NODES = 4


def supernet_edges(nodes: int = SEARCH_NODES) -> tuple[tuple[int, int], ...]:
    """(node, source) of every edge of a fully connected cell, in DARTS' order: node 2's
    edges from c_{k-2} and c_{k-1}, then node 3's from c_{k-2}, c_{k-1} and n2, ..."""
    return tuple((node, source) for node in range(2, nodes + 2) for source in range(node))


def _cell_parts(spec: CellSpec, edges, concat) -> list[PartKey]:
    parts = [
        PartKey("preprocess", "factorized_reduce" if spec.reduction_prev else "relu_conv_bn_1x1",
                spec.c_prev_prev, spec.c, spec.size_prev_prev, 2 if spec.reduction_prev else 1),
        PartKey("preprocess", "relu_conv_bn_1x1", spec.c_prev, spec.c, spec.size, 1),
    ]
    if edges is None:
        return parts + [PartKey("cell", "gdas_fixed_reduction", spec.c, 4 * spec.c, spec.size, 2, 2)]
    parts += [_op_part(spec, op, source) for op, source in edges]
    parts += [PartKey("combine", "add", spec.c, spec.c, spec.size_out, 1, 2)] * (len(edges) // 2)
    parts.append(PartKey("combine", "concat", spec.c, len(concat) * spec.c, spec.size_out, 1, len(concat)))
    return parts


def _op_part(spec: CellSpec, op: str, source: int) -> PartKey:
    stride = spec.edge_stride(source)
    return PartKey("op", op, spec.c, spec.c, spec.size if source < 2 else spec.size_out, stride)


def _fixed_ends(specs: tuple[CellSpec, ...], config: NetworkConfig) -> list[PartKey]:
    stem = PartKey("stem", "conv_bn_3x3", 3, STEM_MULTIPLIER * config.channels, IMAGE_SIZE, 1)
    head = PartKey("head", "pool_linear", specs[-1].c_out, config.num_classes, specs[-1].size_out, 1)
    return [stem, head]


def genotype_parts(genotype: Genotype, config: NetworkConfig) -> list[PartKey]:
    """Every part of ``genotype``'s evaluation network (inference: no auxiliary head),
    one entry per occurrence; their costs add up to the network's."""
    specs = plan_network(genotype, config.channels, config.cells)
    parts = _fixed_ends(specs, config)
    for spec in specs:
        parts += _cell_parts(spec, spec.edges, spec.concat)
    return parts


def search_genotype_template() -> Genotype:
    """Any genotype of the search space: all of them share the cells' channel and
    resolution plan (4 nodes, all concatenated)."""
    edges = tuple(("skip_connect", source) for node in range(2, SEARCH_NODES + 2) for source in (0, 1))
    concat = tuple(range(2, SEARCH_NODES + 2))
    return Genotype(edges, concat, edges, concat)


def cost_layout(config: NetworkConfig) -> CostLayout:
    """Fixed parts and, per cell type, the part of every (edge, operation) choice."""
    specs = plan_network(search_genotype_template(), config.channels, config.cells)
    nodes = SEARCH_NODES
    fixed = _fixed_ends(specs, config)
    choices: dict[str, list] = {"normal": [], "reduce": []}
    for spec in specs:
        fixed += _cell_parts(spec, (), spec.concat)  # preprocessing and concatenation
        fixed += [PartKey("combine", "add", spec.c, spec.c, spec.size_out, 1, 2)] * nodes
        choices["reduce" if spec.reduction else "normal"].append(
            tuple(tuple(_op_part(spec, op, source) for op in SEARCH_OPERATIONS) for _, source in supernet_edges(nodes)))
    edges = supernet_edges(nodes)
    node_edges = tuple(tuple(e for e, (n, _) in enumerate(edges) if n == node) for node in range(2, nodes + 2))
    return CostLayout(tuple(fixed), {group: tuple(cells) for group, cells in choices.items()}, nodes=node_edges,
                      inputs_per_node=2, free_op=SEARCH_OPERATIONS.index("none"))


def genotype_weights(genotype: Genotype) -> dict[str, torch.Tensor]:
    """The genotype as architecture weights over :func:`cost_layout`: per cell type a
    (14, 8) tensor counting how often each (edge, operation) is chosen (one-hot rows)."""
    import torch

    edge_index = {edge: i for i, edge in enumerate(supernet_edges())}
    weights = {}
    all_nodes = set(range(2, SEARCH_NODES + 2))
    for group, edges, concat in genotype.cells():
        if (edges is None or len(edges) != 2 * SEARCH_NODES or set(concat) != all_nodes
                or any(op not in SEARCH_OPERATIONS for op, _ in edges)):
            raise ConfigError(f"the {group} cell is not in the search space (4 nodes, all concatenated, the 8 DARTS "
                              "operations); use its exact cost, the sum of its parts")
        w = torch.zeros(len(edge_index), len(SEARCH_OPERATIONS), dtype=torch.float64)
        for position, (op, source) in enumerate(edges):
            w[edge_index[(position // 2 + 2, source)], SEARCH_OPERATIONS.index(op)] += 1
        weights[group] = w
    return weights


def all_parts(config: NetworkConfig, zoo: list[Genotype]) -> list[PartKey]:
    """Every part a search-space network or a zoo genotype's network can contain."""
    layout = cost_layout(config)
    parts = set(layout.fixed)
    for cells in layout.choices.values():
        parts.update(part for cell in cells for edge in cell for part in edge)
    for genotype in zoo:
        try:
            parts.update(genotype_parts(genotype, config))
        except ConfigError:
            continue  # e.g. GDAS' fixed cell at a width its groups cannot divide
    return sorted(parts)


def build_part(key: PartKey) -> nn.Module:
    """A module computing ``key`` exactly as it runs inside the network."""
    from nasbench.spaces.cell.network import (
        ClassifierHead,
        FixedReductionBody,
        make_preprocess,
        make_stem,
    )
    from nasbench.spaces.cell.ops import Concat, NodeSum, make_operation

    if key.kind == "stem":
        return make_stem(key.c_out)
    if key.kind == "preprocess":
        return make_preprocess(key.c_in, key.c_out, reduce=key.name == "factorized_reduce")
    if key.kind == "op":
        return make_operation(key.name, key.c_in, key.stride)
    if key.kind == "combine":
        return NodeSum() if key.name == "add" else Concat()
    if key.kind == "cell":
        return FixedReductionBody(key.c_in)
    if key.kind == "head":
        return ClassifierHead(key.c_in, key.c_out)
    raise ConfigError(f"the cell space has no part of kind {key.kind!r}")
