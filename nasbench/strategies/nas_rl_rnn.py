"""NAS-RL's recurrent-cell search (Zoph & Le, "Neural Architecture Search with Reinforcement
Learning", ICLR 2017, Sect. 3.4 and 4.2): the controller writes a tree cell of the
``nasrl-rnn`` space token by token; every child language model is trained from scratch and
its validation perplexity rewards the controller by REINFORCE.

Settings: the controller of the image search (Sect. 4.1: a two-layer LSTM of 35 units,
parameters uniform in [-0.08, 0.08], the same moving-average baseline), with what Sect. 4.2
changes for Penn Treebank: Adam at 5e-4 instead of 6e-4, and the reward c / ppl^2 with
c = 80. The paper's asynchronous replicas (m = 1 child each, an update per 10 gradients)
become ``[search.nas_rl]``'s ``children_per_update`` children per update. Children train by
the protocol's candidate stage (``[language_model]`` ``candidate_epochs``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasbench.spaces.nasrl_rnn.arch import TreeCellArch
from nasbench.spaces.nasrl_rnn.space import CHOICES, NasRlRnnSpace
from nasbench.strategies.child_training_rl import ChildTrainingRl
from nasbench.strategies.controller import Decisions, PolicyGradient, Sample
from nasbench.strategies.nas_rl import (
    BASELINE_DECAY,
    HIDDEN,
    INIT_RANGE,
    LSTM_LAYERS,
    NasRl,
    NasRlBudget,
)
from nasbench.types import Trial

CONTROLLER_LR = 5e-4
"""Sect. 4.2: the PTB controller's learning rate, "slightly smaller" than CIFAR-10's 6e-4."""
REWARD_CONSTANT = 80.0
"""Sect. 4.2: the reward is c / (validation perplexity)^2, c = 80."""


class TreeController(nn.Module):
    """NAS-RL's controller for a tree cell (Sect. 3.4, Fig. 5): per tree node, leaves first,
    a combination method then an activation; then the cell inject's combination and
    activation; then the two cell indices (``cell_out``, ``cell_in``), each a softmax over
    the nodes below the root. One softmax head and one embedding per token kind; each
    choice's embedding is the next step's input, as in the image controller. The order is
    :meth:`NasRlRnnSpace.sample`'s, so a decision sequence reads as that space's draw."""

    def __init__(self, space: NasRlRnnSpace, hidden: int = HIDDEN):
        super().__init__()
        self.size = 2 * space.settings.nasrl_base - 1
        """Nodes of the tree (2B - 1 for B leaves)."""
        self.choices: dict[str, tuple[Any, ...]] = {**CHOICES, "cell_index": tuple(range(self.size - 1))}
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(LSTM_LAYERS))
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.embeddings = nn.ModuleDict({t: nn.Embedding(len(v), hidden) for t, v in self.choices.items()})
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, len(v)) for t, v in self.choices.items()})
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)

    @property
    def tokens(self) -> tuple[str, ...]:
        """The token kind of each decision, in order."""
        pair = ("combination", "activation")
        return pair * (self.size + 1) + ("cell_index", "cell_index")

    def decision_count(self) -> int:
        """2 per node and 2 for the inject, then 2 cell indices: 2 (2B - 1) + 2 + 2."""
        return len(self.tokens)

    def forward(self, generator: torch.Generator | None = None, decisions: tuple[int, ...] | None = None) -> Sample:
        """Sample a cell from ``generator``, or score the given ``decisions`` (an earlier
        sample's) under the current policy."""
        if decisions is not None and len(decisions) != self.decision_count():
            raise ValueError(f"{len(decisions)} decisions; a tree of {self.size} nodes takes {self.decision_count()}")
        decide = Decisions(generator, decisions, self.start)
        states: list[Any] = [None] * len(self.cells)
        inputs = self.start
        values = []
        for token in self.tokens:
            for i, cell in enumerate(self.cells):
                states[i] = cell(inputs, states[i])
                inputs = states[i][0]
            choice = decide.categorical(self.heads[token](inputs).view(-1))
            values.append(self.choices[token][choice])
            inputs = self.embeddings[token].weight[choice].unsqueeze(0)
        pairs = tuple(zip(values[:-2:2], values[1:-2:2]))
        arch = TreeCellArch(nodes=pairs[:-1], inject=pairs[-1], cell_indices=(values[-2], values[-1]))
        return Sample(arch, tuple(decide.taken), decide.log_prob, decide.entropy)


class RecurrentNasRl(ChildTrainingRl):
    """NAS-RL on the ``nasrl-rnn`` space (what :class:`NasRl` runs for language models).
    It reads ``[search.nas_rl]`` for ``children_per_update`` only: the tree has a fixed
    size, so the image search's growing depth (``start_layers``) has nothing to grow. It
    derives from :class:`ChildTrainingRl` rather than :class:`NasRl`, whose constructor
    reads the image layout's ``max_layers``; it reuses NasRl's update."""

    name = "nas-rl"
    summary = "NAS-RL: LSTM controller + REINFORCE, tree cells of NAS-RL's recurrent space trained from scratch"
    spaces = ("nasrl-rnn",)
    protocol_section = "nas_rl"
    settings_class = NasRlBudget

    def build_controller(self) -> TreeController:
        return TreeController(self.context.space)

    def build_policy(self, controller: TreeController) -> PolicyGradient:
        # entropy weight 0 and the baseline as the image search (Sect. 4.2: "almost identical")
        return PolicyGradient(controller, lr=CONTROLLER_LR, entropy_weight=0.0, baseline_decay=BASELINE_DECAY)

    def reward(self, trial: Trial) -> float:
        """c / ppl^2 (Sect. 4.2)."""
        return REWARD_CONSTANT / trial.val_perplexity ** 2

    policy_update = NasRl.policy_update
