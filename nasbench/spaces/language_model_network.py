"""The language model around a recurrent cell (embedding, the cell unrolled over time, tied
decoder, the AWD-LSTM dropouts DARTS and ENAS train with) and the cell alone over a window,
which recurrent cost tables time: the modules :class:`~nasbench.spaces.language_model.RecurrentSpace`
builds, kept apart from its description so that describing a space loads no torch.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.spaces.language_model import Dropouts

ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda x: x}
"""What each of :data:`~nasbench.spaces.language_model.ACTIVATIONS` computes."""
INIT_RANGE = 0.04
"""Every weight uniform in +-0.04: DARTS rnn/model.py:11; ENAS ptb_enas_child.py:507-512 for
more than 400 units."""


class RecurrentCell(nn.Module):
    """A cell stepped over time: ``project`` maps a whole window of inputs at once, ``step``
    advances the state by one time step. The state is a tuple of (batch, hidden) tensors,
    the first of which is the output h_t."""

    state_count: ClassVar[int] = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size

    def project(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, projected: torch.Tensor, state: tuple[torch.Tensor, ...],
             h_mask: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


def uniform_parameter(*shape: int) -> nn.Parameter:
    """A weight uniform in +-:data:`INIT_RANGE` (no allocation on the meta device)."""
    return nn.Parameter(torch.empty(*shape).uniform_(-INIT_RANGE, INIT_RANGE))


def _mask(like: torch.Tensor, shape: tuple[int, ...], p: float) -> torch.Tensor:
    """A dropout mask (kept entries 1/(1-p)), drawn from torch's global generator."""
    return like.new_empty(shape).bernoulli_(1 - p).div_(1 - p)


class LanguageModel(nn.Module):
    """Word embedding, the cell over the window, locked dropout, decoder tied to the
    embedding (DARTS rnn/model.py RNNModel; ENAS decodes with w_emb too, without a bias).
    ``forward(tokens, state)`` takes (time, batch) ids and returns log-probabilities
    (time, batch, vocabulary), the last state and the cell's raw outputs (for the slowness
    term)."""

    def __init__(self, cell: RecurrentCell, vocab_size: int, dropouts: Dropouts):
        super().__init__()
        self.cell, self.dropouts = cell, dropouts
        self.encoder = nn.Embedding(vocab_size, cell.input_size)
        self.decoder = nn.Linear(cell.hidden_size, vocab_size)
        self.decoder.weight = self.encoder.weight
        nn.init.uniform_(self.encoder.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.zeros_(self.decoder.bias)

    def init_state(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        weight = self.encoder.weight
        return tuple(weight.new_zeros(batch_size, self.cell.hidden_size) for _ in range(self.cell.state_count))

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, ...]):
        d, (steps, batch) = self.dropouts, tokens.shape
        weight = self.encoder.weight
        if self.training and d.embedding:
            weight = weight * _mask(weight, (weight.shape[0], 1), d.embedding)
        x = F.embedding(tokens, weight)
        h_mask = None
        if self.training:
            x = x * _mask(x, (1, batch, x.shape[2]), d.input) if d.input else x
            x = x * _mask(x, (1, batch, x.shape[2]), d.x) if d.x else x
            h_mask = _mask(x, (batch, self.cell.hidden_size), d.hidden) if d.hidden else None
        projected = self.cell.project(x)
        outputs = []
        for t in range(steps):
            state = self.cell.step(projected[t], state, h_mask)
            outputs.append(state[0])
        raw = torch.stack(outputs)
        dropped = raw * _mask(raw, (1, batch, raw.shape[2]), d.output) if self.training and d.output else raw
        return F.log_softmax(self.decoder(dropped), dim=-1), state, raw


class CellWindow(nn.Module):
    """What a recurrent cost table's whole network is: ``cell`` over ``steps`` time steps in
    eval mode, its input projection of the window at once, then each step (as
    :class:`LanguageModel` runs it), without the embedding lookup and the decoder, whose cost
    does not depend on the cell. Its memory access cost is its parts' (``mac_elements``)."""

    def __init__(self, cell: RecurrentCell, steps: int, mac_elements: int):
        super().__init__()
        self.cell, self.steps, self.mac_elements = cell, steps, mac_elements

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> torch.Tensor:
        projected = self.cell.project(x)
        for t in range(self.steps):
            state = self.cell.step(projected[t], state, None)
        return state[0]

    def functional_mac(self, args: tuple, output: torch.Tensor) -> int:
        return self.mac_elements
