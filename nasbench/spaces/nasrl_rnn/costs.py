"""The tree cell's cost decomposition, as :class:`TreeCell` computes one time step: the input
projection ``x W_x`` (once over the window), the recurrent projection ``h_{t-1} W_h``, every
tree node's combination and activation, and the cell inject (a combination and activation of
the injected node's output with c_{t-1}: the same computation as a node, so the same part)."""
from __future__ import annotations

import torch

from nasbench.errors import ConfigError
from nasbench.spaces.language_model import ACTIVATIONS
from nasbench.spaces.nasrl_rnn.cell import COMBINATIONS, TreeCellArch
from nasbench.spaces.recurrent_parts import (
    Projection,
    RecurrentPart,
    activation_mac,
    elementwise_mac,
    projection_key,
)
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


class TreeNode(RecurrentPart):
    """``activation(combination(a, b))``."""

    def __init__(self, key: PartKey):
        combination, activation = next((c, key.name[len(c) + 1:]) for c in COMBINATIONS if key.name.startswith(f"{c}_"))
        super().__init__(key.size, elementwise_mac(key.c_in, 2) + activation_mac(activation, key.c_in))
        self.combine, self.activate = COMBINATIONS[combination], ACTIVATIONS[activation]

    def step(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.activate(self.combine(a, b))


def build_part(key: PartKey) -> RecurrentPart:
    if key.kind == "projection":
        return Projection(key)
    if key.kind == "op":
        return TreeNode(key)
    raise ConfigError(f"the nasrl-rnn space has no part of kind {key.kind!r}")
