"""Parts of recurrent cells for cost tables, shared by ``enas-rnn`` and ``nasrl-rnn``.

A part is what a cell computes at one node over the table's time steps (one, or a BPTT
window), so that a window's parts keep their weights once; the input projection maps the
whole window at once, as the cell does. Its :class:`~nasbench.types.PartKey` (made by the
spaces' torch-free ``costs`` modules) reuses the image fields: ``c_in``/``c_out`` the units
in and out, ``size`` the time steps, ``stride`` 1, ``arity`` its inputs. Kind ``op`` marks
the nodes whose computation the architecture chooses (an activation, a combination), so the
per-operation predictor scales them by name.

Each part states its memory access cost (ShuffleNet V2's definition, per sequence at batch
1, see nasbench/hardware/mac.py): a matrix product reads its input and weight and writes its
output; an element-wise operation reads each input and writes its output; an identity
activation touches nothing; stacking reads and writes every element.
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.spaces.language_model_network import uniform_parameter
from nasbench.types import PartKey


def elementwise_mac(units: int, inputs: int = 1) -> int:
    return (inputs + 1) * units


def activation_mac(name: str, units: int) -> int:
    return 0 if name == "identity" else elementwise_mac(units)


class RecurrentPart(nn.Module):
    """A part run for ``steps`` time steps, each step's output fed to the next as its last
    input (as the recurrence feeds it: the steps cannot be merged), with its memory access
    cost fixed by its key: ``mac_per_step`` each step."""

    def __init__(self, steps: int, mac_per_step: int):
        super().__init__()
        self.steps, self.mac_elements = steps, steps * mac_per_step

    def step(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def feed(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (*inputs[:-1], output)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        for _ in range(self.steps):
            output = self.step(*inputs)
            inputs = self.feed(inputs, output)
        return output

    def functional_mac(self, args: tuple, output: torch.Tensor) -> int:
        return self.mac_elements


class Projection(RecurrentPart):
    """``x @ W`` without a bias: a cell's ``input`` projection, once over the window (x of shape
    (time, batch, c_in)), or NAS-RL's ``recurrent`` projection of h_{t-1}, at every step."""

    def __init__(self, key: PartKey):
        window = key.name == "input"
        rows = key.size if window else 1
        super().__init__(1 if window else key.size, rows * (key.c_in + key.c_out) + key.c_in * key.c_out)
        self.weight = uniform_parameter(key.c_in, key.c_out)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight

    def feed(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (output[..., :inputs[0].shape[-1]],)
