"""ENAS' and DARTS' recurrent cell module (the architecture is
:class:`~nasbench.spaces.recurrent_cell.arch.RecurrentCellArch`, which describes it)."""
from __future__ import annotations

import torch

from nasbench.spaces.language_model_network import (
    ACTIVATION_FUNCTIONS,
    RecurrentCell,
    uniform_parameter,
)
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch


class HighwayCell(RecurrentCell):
    """The cell of ``arch``: W0 maps [x_t, h_{t-1}] to node 0's (c, h), each W_i maps node i's
    input to its (c, h) (DARTS rnn/model.py:25-28; ENAS ptb_enas_child.py:539-546). No biases."""

    def __init__(self, arch: RecurrentCellArch, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size)
        self.arch = arch
        self.w0 = uniform_parameter(input_size + hidden_size, 2 * hidden_size)
        self.ws = torch.nn.ParameterList(uniform_parameter(hidden_size, 2 * hidden_size) for _ in arch.nodes)
        self._concat = list(arch.concat)

    def project(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs @ self.w0[:self.input_size]

    def step(self, projected, state, h_mask):
        (h_prev,) = state
        masked = h_prev if h_mask is None else h_prev * h_mask
        states = [highway(h_prev, projected + masked @ self.w0[self.input_size:], self.arch.first)]
        for (activation, source), w in zip(self.arch.nodes, self.ws):
            s = states[source]
            states.append(highway(s, (s if h_mask is None else s * h_mask) @ w, activation))
        return (torch.stack([states[i] for i in self._concat]).mean(0),)


def highway(s: torch.Tensor, ch: torch.Tensor, activation: str) -> torch.Tensor:
    """A node's output from its input ``s`` and its ``s W`` (c and h side by side)."""
    c, h = ch.chunk(2, dim=-1)
    return s + torch.sigmoid(c) * (ACTIVATION_FUNCTIONS[activation](h) - s)
