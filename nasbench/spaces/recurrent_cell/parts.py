"""The highway cell's parts as modules (:mod:`nasbench.spaces.recurrent_cell.costs` keys them)."""
from __future__ import annotations

import torch

from nasbench.errors import ConfigError
from nasbench.spaces.language_model_network import uniform_parameter
from nasbench.spaces.recurrent_cell.cell import highway
from nasbench.spaces.recurrent_parts import (
    Projection,
    RecurrentPart,
    activation_mac,
    elementwise_mac,
)
from nasbench.types import PartKey


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
