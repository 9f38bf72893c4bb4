"""NAS-RL's recurrent cell module (the architecture is
:class:`~nasbench.spaces.nasrl_rnn.arch.TreeCellArch`, which describes it)."""
from __future__ import annotations

from typing import Callable

import torch

from nasbench.spaces.language_model_network import (
    ACTIVATION_FUNCTIONS,
    RecurrentCell,
    uniform_parameter,
)
from nasbench.spaces.nasrl_rnn.arch import TreeCellArch, tree_children

COMBINATION_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": torch.add, "elem_mult": torch.mul}
"""What each of :data:`~nasbench.spaces.nasrl_rnn.arch.COMBINATIONS` computes."""


class TreeCell(RecurrentCell):
    """The cell of ``arch``; its state is (h, c). The leaves' weights are two matrices
    holding a block per leaf (TF's NASCell ``kernel`` and ``recurrent_kernel``, no biases)."""

    state_count = 2

    def __init__(self, arch: TreeCellArch, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.arch = arch
        self.w_x = uniform_parameter(input_size, arch.base * hidden_size)
        self.w_h = uniform_parameter(hidden_size, arch.base * hidden_size)
        self._children = tree_children(len(arch.nodes))

    def project(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs @ self.w_x

    def step(self, projected, state, h_mask):
        h_prev, c_prev = state
        recurrent = (h_prev if h_mask is None else h_prev * h_mask) @ self.w_h
        pairs = zip(projected.chunk(self.arch.base, dim=-1), recurrent.chunk(self.arch.base, dim=-1))
        cell_out, cell_in = self.arch.cell_indices
        outputs, c_new = [], None
        for index, (comb, act) in enumerate(self.arch.nodes):
            a, b = next(pairs) if index < self.arch.base else (outputs[i] for i in self._children[index])
            pre = COMBINATION_FUNCTIONS[comb](a, b)
            out = ACTIVATION_FUNCTIONS[act](pre)
            if index == cell_in:
                inject_comb, inject_act = self.arch.inject
                out = ACTIVATION_FUNCTIONS[inject_act](COMBINATION_FUNCTIONS[inject_comb](out, c_prev))
            if index == cell_out:
                c_new = pre
            outputs.append(out)
        return outputs[-1], c_new
