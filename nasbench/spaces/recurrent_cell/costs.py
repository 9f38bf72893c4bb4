"""The highway cell's cost decomposition, as :class:`HighwayCell` computes one time step:
the input projection ``x W0_x`` (once over the window), node 0 (``h_{t-1} W0_h`` added to the
projected x_t, then the highway step with its activation), every later node (``s W_i``, then
its highway step) and the average of the output nodes."""
from __future__ import annotations

from typing import Iterable

import torch

from nasbench.errors import ConfigError
from nasbench.spaces.language_model import ACTIVATIONS, uniform_parameter
from nasbench.spaces.recurrent_cell.cell import RecurrentCellArch, highway
from nasbench.spaces.recurrent_parts import (
    Projection,
    RecurrentPart,
    activation_mac,
    elementwise_mac,
    projection_key,
)
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


class HighwayNode(RecurrentPart):
    """A node's ``s W`` (for node 0 added to its projected x_t) and its highway step."""

    def __init__(self, key: PartKey):
        h, first = key.c_in, key.kind == "first"
        highway_mac = 2 * elementwise_mac(h) + activation_mac(key.name, h) + 3 * elementwise_mac(h, 2)
        super().__init__(key.size, 3 * h + 2 * h * h + highway_mac + (elementwise_mac(2 * h, 2) if first else 0))
        self.activation = key.name
        self.weight = uniform_parameter(h, 2 * h)

    def step(self, *inputs: torch.Tensor) -> torch.Tensor:
        s = inputs[-1]
        ch = s @ self.weight if len(inputs) == 1 else inputs[0] + s @ self.weight
        return highway(s, ch, self.activation)


class Average(RecurrentPart):
    """The mean of the output nodes (stacked, as the cell does even for one)."""

    def __init__(self, key: PartKey):
        super().__init__(key.size, 2 * key.arity * key.c_in + elementwise_mac(key.c_in, key.arity))

    def step(self, *states: torch.Tensor) -> torch.Tensor:
        return torch.stack(states).mean(0)


def build_part(key: PartKey) -> RecurrentPart:
    if key.kind == "projection":
        return Projection(key)
    if key.kind in ("first", "op"):
        return HighwayNode(key)
    if key.kind == "average":
        return Average(key)
    raise ConfigError(f"the enas-rnn space has no part of kind {key.kind!r}")
