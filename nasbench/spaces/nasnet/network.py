"""The network of a NASNet-space architecture, in the cell space's CIFAR layout.

The layout is :class:`~nasbench.spaces.cell.network.CifarNetwork` (the paper's Fig. 2
CIFAR stack: a 3x3 stem, N normal cells, a reduction cell, N normal cells, a reduction
cell, N normal cells; here ``cells`` in all, reductions at 1/3 and 2/3 of the depth,
doubling the filters), with the cell space's stem, auxiliary head and classifier. Inside a
cell (Appendix A.4): each cell input is brought to the cell's ``C`` filters by a 1x1
convolution, or by a factorized reduction where it comes from before a reduction (the
cell space's preprocessing, as NASNet's official code does); in a reduction cell the
operations on the cell inputs stride 2; a ``concat`` block has ``2C`` channels, and a 1x1
convolution brings it back to ``C`` where a later block reads it (in the cell's output,
where no shape must match, it keeps its ``2C``).

Drop path: every operation's output inside a block (never an identity's) is dropped with
the network's ``drop_path_prob``, which the shared trainer
(:func:`nasbench.training.train_network`) sets each epoch to ``drop_path * epoch / epochs``:
a probability rising linearly over training, which is NASNet's ScheduledDropPath (Appendix
A.5). Two differences from the official code, which the paper does not describe: it raises
the probability per step rather than per epoch, and also scales it by the cell's depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasbench.spaces.cell.network import (
    CifarNetwork,
    apply_operation,
    cell_preprocessing,
)
from nasbench.spaces.cell.ops import Concat, NodeSum, ReLUConvBN
from nasbench.spaces.cell.plan import STEM_MULTIPLIER, reduction_positions
from nasbench.spaces.nasnet.arch import CellArch, NasnetArch
from nasbench.spaces.nasnet.ops import make_operation


def block_width(combine: str) -> int:
    """A block's channels in units of the cell's ``C``: a concatenation doubles them."""
    return 2 if combine == "concat" else 1


@dataclass(frozen=True)
class NasnetCellSpec:
    """Where a cell sits and what it sees."""

    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    c: int
    """Channels of every operation of the cell."""
    cell: CellArch

    @property
    def c_out(self) -> int:
        return self.c * sum(block_width(self.cell.blocks[state - 2].combine) for state in self.cell.concat)


def plan_cells(arch: NasnetArch, channels: int, cells: int) -> tuple[NasnetCellSpec, ...]:
    """The cells of ``arch``'s network, in order (the cell space's stem width and reduction positions)."""
    c_prev_prev = c_prev = STEM_MULTIPLIER * channels
    c, reduction_prev = channels, False
    reductions = reduction_positions(cells)
    specs = []
    for i in range(cells):
        reduction = i in reductions
        c = 2 * c if reduction else c
        spec = NasnetCellSpec(reduction, reduction_prev, c_prev_prev, c_prev, c, arch.reduce if reduction else arch.normal)
        specs.append(spec)
        c_prev_prev, c_prev, reduction_prev = c_prev, spec.c_out, reduction
    return tuple(specs)


class NasnetCell(nn.Module):
    """One cell: each block applies an operation to each of its two inputs and adds or
    concatenates the results; the output concatenates the blocks no block reads."""

    def __init__(self, spec: NasnetCellSpec):
        super().__init__()
        c, blocks = spec.c, spec.cell.blocks
        self.preprocess0, self.preprocess1 = cell_preprocessing(spec.c_prev_prev, spec.c_prev, c, spec.reduction_prev)
        self.sources = tuple(block.inputs for block in blocks)
        self.combines = tuple(block.combine for block in blocks)
        self.concat = spec.cell.concat
        self.ops = nn.ModuleList(
            make_operation(op, c, 2 if spec.reduction and source < 2 else 1)
            for block in blocks for op, source in zip(block.ops, block.inputs)
        )
        read = spec.cell.read_states
        self.to_block_width = nn.ModuleList(
            ReLUConvBN(2 * c, c, 1, 1, 0) if block.combine == "concat" and state in read else nn.Identity()
            for state, block in enumerate(blocks, start=2)
        )
        self.node_sum = NodeSum()
        self.concatenate = Concat()

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for position, (sources, combine) in enumerate(zip(self.sources, self.combines)):
            a, b = (apply_operation(self.ops[2 * position + k], states[source], drop_prob, self.training)
                    for k, source in enumerate(sources))
            h = self.node_sum(a, b) if combine == "add" else self.concatenate(a, b)
            states.append(self.to_block_width[position](h))
        return self.concatenate(*(states[i] for i in self.concat))


class NasnetNetwork(CifarNetwork):
    """An architecture's network (``forward``, ``forward_train``, ``drop_path_prob`` as in
    :class:`~nasbench.spaces.cell.network.CifarNetwork`)."""

    def __init__(self, arch: NasnetArch, channels: int, cells: int, num_classes: int = 10, auxiliary: bool = False):
        super().__init__(channels, plan_cells(arch, channels, cells), NasnetCell, num_classes, auxiliary)
        self.arch = arch
