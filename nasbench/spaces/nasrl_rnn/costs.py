"""The tree cell's cost decomposition, as :class:`~nasbench.spaces.nasrl_rnn.cell.TreeCell`
computes one time step: the input projection ``x W_x`` (once over the window), the recurrent
projection ``h_{t-1} W_h``, every tree node's combination and activation, and the cell inject
(a combination and activation of the injected node's output with c_{t-1}: the same computation
as a node, so the same part). Its keys are torch-free; :mod:`nasbench.spaces.nasrl_rnn.parts`
builds their modules."""
from __future__ import annotations

from nasbench.spaces.language_model import ACTIVATIONS, projection_key
from nasbench.spaces.nasrl_rnn.arch import COMBINATIONS, TreeCellArch
from nasbench.types import NetworkConfig, PartKey


def node_key(units: int, steps: int, combination: str, activation: str) -> PartKey:
    return PartKey("op", f"{combination}_{activation}", units, units, steps, 1, 2)


def projections(units: int, base: int, steps: int) -> list[PartKey]:
    """The input projection and the recurrent one, to ``base`` leaves."""
    return [projection_key(name, units, base * units, steps) for name in ("input", "recurrent")]


def cell_parts(arch: TreeCellArch, config: NetworkConfig) -> list[PartKey]:
    """Every part of ``arch``'s cell over ``config.cells`` time steps at ``config.channels``
    units, one per occurrence."""
    h, steps = config.channels, config.cells
    return projections(h, arch.base, steps) + [node_key(h, steps, *node) for node in (*arch.nodes, arch.inject)]


def all_parts(config: NetworkConfig, bases: set[int]) -> list[PartKey]:
    """Every part of a cell over any of ``bases`` leaves."""
    h, steps = config.channels, config.cells
    parts = [key for base in sorted(bases) for key in projections(h, base, steps)]
    return parts + [node_key(h, steps, comb, act) for comb in COMBINATIONS for act in ACTIVATIONS]
