"""The highway cell's cost decomposition, as :class:`~nasbench.spaces.recurrent_cell.cell.HighwayCell`
computes one time step: the input projection ``x W0_x`` (once over the window), node 0
(``h_{t-1} W0_h`` added to the projected x_t, then the highway step with its activation), every
later node (``s W_i``, then its highway step) and the average of the output nodes. Its keys are
torch-free; :mod:`nasbench.spaces.recurrent_cell.parts` builds their modules."""
from __future__ import annotations

from typing import Iterable

from nasbench.spaces.language_model import ACTIVATIONS, projection_key
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.types import NetworkConfig, PartKey


def cell_parts(arch: RecurrentCellArch, config: NetworkConfig) -> list[PartKey]:
    """Every part of ``arch``'s cell over ``config.cells`` time steps at ``config.channels``
    units, one per occurrence."""
    h, steps = config.channels, config.cells
    parts = [projection_key("input", h, 2 * h, steps), PartKey("first", arch.first, h, h, steps, 1, 2)]
    parts += [PartKey("op", activation, h, h, steps, 1) for activation, _ in arch.nodes]
    return parts + [average_key(h, steps, len(arch.concat))]


def average_key(units: int, steps: int, nodes: int) -> PartKey:
    return PartKey("average", "mean", units, units, steps, 1, nodes)


def all_parts(config: NetworkConfig, firsts: Iterable[str], averaged: Iterable[int]) -> list[PartKey]:
    """Every part a cell can contain: node 0 with each activation in ``firsts``, the later
    nodes with each activation, and the average of each number of nodes in ``averaged``."""
    h, steps = config.channels, config.cells
    parts = [projection_key("input", h, 2 * h, steps)]
    parts += [PartKey("first", act, h, h, steps, 1, 2) for act in sorted(set(firsts))]
    parts += [PartKey("op", act, h, h, steps, 1) for act in ACTIVATIONS]
    return parts + [average_key(h, steps, n) for n in sorted(set(averaged))]
