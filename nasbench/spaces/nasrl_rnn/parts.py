"""The tree cell's parts as modules (:mod:`nasbench.spaces.nasrl_rnn.costs` keys them)."""
from __future__ import annotations

import torch

from nasbench.errors import ConfigError
from nasbench.spaces.language_model_network import ACTIVATION_FUNCTIONS
from nasbench.spaces.nasrl_rnn.arch import COMBINATIONS
from nasbench.spaces.nasrl_rnn.cell import COMBINATION_FUNCTIONS
from nasbench.spaces.recurrent_parts import (
    Projection,
    RecurrentPart,
    activation_mac,
    elementwise_mac,
)
from nasbench.types import PartKey


class TreeNode(RecurrentPart):
    """``activation(combination(a, b))``."""

    def __init__(self, key: PartKey):
        combination, activation = next((c, key.name[len(c) + 1:]) for c in COMBINATIONS if key.name.startswith(f"{c}_"))
        super().__init__(key.size, elementwise_mac(key.c_in, 2) + activation_mac(activation, key.c_in))
        self.combine, self.activate = COMBINATION_FUNCTIONS[combination], ACTIVATION_FUNCTIONS[activation]

    def step(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.activate(self.combine(a, b))


def build_part(key: PartKey) -> RecurrentPart:
    if key.kind == "projection":
        return Projection(key)
    if key.kind == "op":
        return TreeNode(key)
    raise ConfigError(f"the nasrl-rnn space has no part of kind {key.kind!r}")
