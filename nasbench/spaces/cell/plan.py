"""The plan of DARTS' CIFAR layout: where the reduction cells sit and each cell's channels and
resolution. Pure arithmetic, kept apart from the network's modules so that cost parts are
enumerated without torch."""
from __future__ import annotations

from dataclasses import dataclass

from nasbench.spaces.cell.genotype import CellEdges, Genotype

STEM_MULTIPLIER = 3
IMAGE_SIZE = 32
FIXED_REDUCTION_BRANCHES = 4
"""GDAS' fixed reduction cell concatenates four branches: per input a convolution and a max-pool."""


def reduction_positions(cells: int) -> tuple[int, int]:
    """Indices of the reduction cells: at 1/3 and 2/3 of the depth."""
    return cells // 3, 2 * cells // 3


@dataclass(frozen=True)
class CellSpec:
    """Where a cell sits and what it sees: the single source of the network's channel
    and resolution bookkeeping, shared by the builder and the cost decomposition."""

    index: int
    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    c: int
    """Channels of every node of the cell."""
    size: int
    """Spatial size of ``c_{k-1}`` (and of ``c_{k-2}`` after preprocessing)."""
    edges: CellEdges | None
    """The genotype's edges for this cell; None for GDAS' fixed reduction cell."""
    concat: tuple[int, ...]

    @property
    def multiplier(self) -> int:
        return FIXED_REDUCTION_BRANCHES if self.edges is None else len(self.concat)

    @property
    def c_out(self) -> int:
        return self.multiplier * self.c

    @property
    def size_out(self) -> int:
        return self.size // 2 if self.reduction else self.size

    @property
    def size_prev_prev(self) -> int:
        """Spatial size of ``c_{k-2}`` before preprocessing."""
        return 2 * self.size if self.reduction_prev else self.size

    def edge_stride(self, source: int) -> int:
        return 2 if self.reduction and source < 2 else 1


def plan_network(genotype: Genotype, channels: int, cells: int) -> tuple[CellSpec, ...]:
    """The cells of ``genotype``'s network, in order."""
    c_curr = STEM_MULTIPLIER * channels
    c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
    size, reduction_prev = IMAGE_SIZE, False
    reductions = reduction_positions(cells)
    specs = []
    for i in range(cells):
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        edges, concat = (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
        spec = CellSpec(i, reduction, reduction_prev, c_prev_prev, c_prev, c_curr, size, edges, concat)
        specs.append(spec)
        c_prev_prev, c_prev = c_prev, spec.c_out
        size, reduction_prev = spec.size_out, reduction
    return tuple(specs)
