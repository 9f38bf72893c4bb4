"""ENAS' shared recurrent weights (Pham et al., ICML 2018, Sect. 2.1): one set of parameters
from which every cell of the ``enas-rnn`` space is a path.

Node 0 maps [x_t, h_{t-1}] to its (c, h) by W_0; node i (1..N) holds one matrix W_{i,j} per
earlier node j it may read (the paper: an independent matrix per pair of nodes, Sect. 2.1),
and a sampled cell's node i reading node j runs on W_{i,j} whatever its activation. The
embedding, decoder and dropouts around the cell are shared too (:func:`shared_language_model`).
Without batch norm a path computes exactly what a :class:`HighwayCell` with those weights does.

Two choices follow the official search code where the paper says nothing
(src/ptb/ptb_enas_child.py). ``per_activation=True`` keeps one matrix per pair *and
activation*, and per activation for node 0 (lines 335-344, 369-371, 521-531), as the code
does; the default is the paper's. ``batch_norm`` (the default) normalises every node's
(c, h) before its activations as the search cell does (lines 345-346, 378; ptb_ops.py:13-40:
learned scale and offset, epsilon 1, moving averages of decay 0.999 used in evaluation),
one norm per node whichever input and activation it has; the final cell has none
(``_rhn_fixed``, lines 266-330). Without it the shared weights' training diverged here (the
proxy protocol at 11 steps: NaN, or losses of 1e12, within three epochs for one of two
seeds): a relu or identity path can grow its state without bound, and the state is carried
into the next window's, different, path. The code also normalises the cell's output
(line 400); that norm is left out: under the protocol's recipe it slowed the shared
weights' training (same setting, training NLL 7.8-8.7 after three epochs instead of 6.9).
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.spaces.language_model import ACTIVATIONS, LanguageModelStage
from nasbench.spaces.language_model_network import (
    LanguageModel,
    RecurrentCell,
    uniform_parameter,
)
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.spaces.recurrent_cell.cell import highway

ACTIVATION_INDEX = {name: i for i, name in enumerate(ACTIVATIONS)}
NORM_EPSILON = 1.0
"""ptb_ops.py:13 (``epsilon=1.0``)."""
NORM_MOMENTUM = 0.001
"""1 - ptb_ops.py:13's ``decay=0.999`` (torch's momentum is the new value's weight)."""


class SharedHighwayCell(RecurrentCell):
    """The shared weights of every cell of ``steps`` nodes after node 0, running the path of
    the cell last given to :meth:`use`. ``node0`` has shape (banks, input + hidden, 2 hidden),
    ``edges[i - 1]`` (i, banks, hidden, 2 hidden) for node i: one bank, or one per activation
    with ``per_activation``. Weights uniform in +-INIT_RANGE as every recurrent weight here."""

    def __init__(self, input_size: int, hidden_size: int, steps: int, per_activation: bool = False,
                 batch_norm: bool = True):
        super().__init__(input_size, hidden_size)
        self.steps, self.per_activation = steps, per_activation
        banks = len(ACTIVATIONS) if per_activation else 1
        self.node0 = uniform_parameter(banks, input_size + hidden_size, 2 * hidden_size)
        self.edges = nn.ParameterList(uniform_parameter(i, banks, hidden_size, 2 * hidden_size)
                                      for i in range(1, steps + 1))
        self.node_norms = nn.ModuleList(
            nn.BatchNorm1d(2 * hidden_size, eps=NORM_EPSILON, momentum=NORM_MOMENTUM) if batch_norm else nn.Identity()
            for _ in range(steps + 1))
        self.arch: RecurrentCellArch | None = None
        self._path: tuple[torch.Tensor, list[torch.Tensor]] | None = None

    def use(self, arch: RecurrentCellArch) -> None:
        """Run ``arch``'s path from the next forward pass on."""
        arch.check()
        if len(arch.nodes) != self.steps:
            raise ValueError(f"the shared weights hold cells of {self.steps} nodes after node 0, "
                             f"not {len(arch.nodes)}")
        self.arch, self._concat = arch, list(arch.concat)

    def bank(self, activation: str) -> int:
        return ACTIVATION_INDEX[activation] if self.per_activation else 0

    def path_weights(self, arch: RecurrentCellArch) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """W_0 and, per node i reading node j, W_{i,j}: the weights ``arch`` trains."""
        w0 = self.node0[self.bank(arch.first)]
        ws = [self.edges[i][source, self.bank(activation)] for i, (activation, source) in enumerate(arch.nodes)]
        return w0, ws

    def project(self, inputs: torch.Tensor) -> torch.Tensor:
        """The window's x_t W_0; picks the path's weights for this forward pass (the language
        model projects once per window, then steps), as views in the pass' autograd mode."""
        if self.arch is None:
            raise RuntimeError("no cell to run: call use(arch) first")
        self._path = self.path_weights(self.arch)
        return inputs @ self._path[0][:self.input_size]

    def step(self, projected, state, h_mask):
        (h_prev,) = state
        w0, ws = self._path
        masked = h_prev if h_mask is None else h_prev * h_mask
        norms = self.node_norms
        states = [highway(h_prev, norms[0](projected + masked @ w0[self.input_size:]), self.arch.first)]
        for i, ((activation, source), w) in enumerate(zip(self.arch.nodes, ws), start=1):
            s = states[source]
            states.append(highway(s, norms[i]((s if h_mask is None else s * h_mask) @ w), activation))
        return (torch.stack([states[i] for i in self._concat]).mean(0),)


def shared_language_model(stage: LanguageModelStage, steps: int, vocab_size: int, per_activation: bool = False,
                          batch_norm: bool = True) -> LanguageModel:
    """The language model around the shared cell at ``stage``'s size and dropouts."""
    cell = SharedHighwayCell(stage.hidden_size, stage.hidden_size, steps, per_activation, batch_norm)
    return LanguageModel(cell, vocab_size, stage.dropouts)
