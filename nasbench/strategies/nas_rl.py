"""NAS-RL (Zoph & Le, "Neural Architecture Search with Reinforcement Learning", ICLR 2017):
an LSTM controller writes a chain of convolutional layers token by token; every child is
trained from scratch and its validation accuracy, cubed, rewards the controller by REINFORCE.

Settings (Sect. 4.1): a two-layer LSTM of 35 units, Adam at 6e-4, parameters uniform in
[-0.08, 0.08]; m = 8 children per controller update (``[search.nas_rl]``); child depth from
6 layers growing by 2 at even intervals of the budget; reward the validation accuracy cubed
(the paper: the best of the last 5 epochs, cubed; here the candidate stage's accuracy at its
end, the protocol's one score per candidate). The baseline is an exponential moving average
of the rewards; the paper gives no decay, so it takes 0.95, the authors' value in NASNet
(Zoph et al., CVPR 2018, Appendix A.2). Children train by the protocol's candidate stage
(the paper: 50 epochs of Nesterov SGD), one after another.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasbench.errors import ConfigError
from nasbench.settings import require
from nasbench.spaces.nasrl_macro.space import (
    FILTER_SIZES,
    ConvLayer,
    LayerChain,
    NasRlSpace,
)
from nasbench.strategies.child_training_rl import ChildTrainingRl
from nasbench.strategies.context import SearchContext
from nasbench.strategies.controller import Decisions, PolicyGradient, Sample
from nasbench.types import Trial

HIDDEN = 35
LSTM_LAYERS = 2
INIT_RANGE = 0.08
CONTROLLER_LR = 6e-4
BASELINE_DECAY = 0.95
REWARD_POWER = 3
LAYER_INCREMENT = 2


class ChainController(nn.Module):
    """NAS-RL's controller (Sect. 3.1 and 3.3, Fig. 2 and 4). Per layer: first its anchor
    point, where one sigmoid per earlier layer j, ``sigmoid(v' tanh(W_prev h_j + W_curr h_i))``,
    decides whether layer j is an input; then one softmax per predicted token (filter height,
    filter width, strides where the layout offers more than one, filter count), each
    choice's embedding being the next step's input. After the anchor, the next input is the
    mean of the chosen inputs' anchor states (the paper leaves it open; ENAS' macro
    controller does the same), or the start input when the layer takes the image."""

    def __init__(self, space: NasRlSpace, hidden: int = HIDDEN):
        super().__init__()
        layout = space.layout
        candidates = {"filter_height": FILTER_SIZES, "filter_width": FILTER_SIZES,
                      "stride_height": layout.strides, "stride_width": layout.strides,
                      "filters": layout.filter_counts}
        self.choices = candidates
        self.tokens = tuple(name for name, values in candidates.items() if len(values) > 1)
        self.cells = nn.ModuleList(nn.LSTMCell(hidden, hidden) for _ in range(LSTM_LAYERS))
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.embeddings = nn.ModuleDict({t: nn.Embedding(len(candidates[t]), hidden) for t in self.tokens})
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, len(candidates[t])) for t in self.tokens})
        self.attn_prev = nn.Linear(hidden, hidden, bias=False)
        self.attn_curr = nn.Linear(hidden, hidden, bias=False)
        self.attn_v = nn.Linear(hidden, 1, bias=False)
        for p in self.parameters():
            nn.init.uniform_(p, -INIT_RANGE, INIT_RANGE)
        self.depth = space.layout.max_layers
        """Layers of the architectures it samples (NAS-RL's schedule grows it during the search)."""

    def _step(self, inputs: torch.Tensor, states: list[tuple[torch.Tensor, torch.Tensor] | None]) -> torch.Tensor:
        """One step of the stacked LSTM (``states`` updated in place); the top layer's output."""
        for i, cell in enumerate(self.cells):
            states[i] = cell(inputs, states[i])
            inputs = states[i][0]
        return inputs

    def decision_count(self, depth: int) -> int:
        """Decisions in a ``depth``-layer architecture: one per earlier layer and token per layer."""
        return depth * (depth - 1) // 2 + depth * len(self.tokens)

    def forward(self, generator: torch.Generator | None = None, decisions: tuple[int, ...] | None = None) -> Sample:
        """Sample an architecture of :attr:`depth` layers from ``generator``, or score the
        given ``decisions`` (an earlier sample's, of any depth) under the current policy."""
        decide = Decisions(generator, decisions, self.start)
        depth = self.depth
        if decisions is not None:
            depth = next((d for d in range(1, len(decisions) + 1) if self.decision_count(d) == len(decisions)), None)
            if depth is None:
                raise ValueError(f"{len(decisions)} decisions make no whole architecture")
        states: list[Any] = [None] * len(self.cells)
        anchors: list[torch.Tensor] = []
        keys: list[torch.Tensor] = []
        inputs = self.start
        layers = []
        for index in range(depth):
            anchor = self._step(inputs, states)
            sources: tuple[int, ...] = ()
            if index > 0:
                chosen_inputs = decide.bernoulli(self.attn_v(torch.tanh(torch.cat(keys) + self.attn_curr(anchor))).view(-1))
                sources = tuple(j for j, bit in enumerate(chosen_inputs.tolist()) if bit)
            anchors.append(anchor)
            keys.append(self.attn_prev(anchor))
            inputs = torch.stack([anchors[j] for j in sources]).mean(0) if sources else self.start
            chosen = {}
            for token in self.tokens:
                choice = decide.categorical(self.heads[token](self._step(inputs, states)).view(-1))
                chosen[token] = self.choices[token][choice]
                inputs = self.embeddings[token].weight[choice].unsqueeze(0)
            fixed = {name: values[0] for name, values in self.choices.items() if name not in chosen}
            layers.append(ConvLayer(**chosen, **fixed, inputs=sources))
        return Sample(LayerChain(tuple(layers)), tuple(decide.taken), decide.log_prob, decide.entropy)


def depth_schedule(index: int, candidates: int, start_layers: int, max_layers: int) -> int:
    """Depth of child ``index`` of ``candidates``: ``start_layers``, growing by 2 at even
    intervals until ``max_layers`` (the paper: 6 layers, +2 every 1,600 of 12,800 samples)."""
    levels = (max_layers - start_layers) // LAYER_INCREMENT + 1
    return start_layers + LAYER_INCREMENT * (index * levels // candidates)


@dataclass(frozen=True)
class NasRlBudget:
    """NAS-RL's controller schedule (Zoph & Le, ICLR 2017, Sect. 4.1): one policy update per
    ``children_per_update`` trained children (the paper's m = 8 per controller replica), and
    child depth starting at ``start_layers`` (the paper: 6) and growing by 2 at even
    intervals of the candidate budget until the space's ``max_layers`` (the paper: every
    1,600 of 12,800 samples, 6 to 20 layers)."""

    children_per_update: int
    start_layers: int

    def check(self, where: str) -> None:
        require(self.children_per_update >= 1 and self.start_layers >= 1, where,
                 "children_per_update and start_layers must be >= 1")


class NasRl(ChildTrainingRl):
    """NAS-RL: REINFORCE on an LSTM controller, every child trained from scratch."""

    name = "nas-rl"
    summary = "NAS-RL: LSTM controller + REINFORCE, children of NAS-RL's layer chain trained from scratch"
    spaces = ("nasrl-macro", "nasrl-rnn")
    task_implementations = {"language-model": "nas_rl_rnn:RecurrentNasRl"}
    protocol_section = "nas_rl"
    settings_class = NasRlBudget

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.max_layers = context.space.layout.max_layers
        if self.settings.start_layers > self.max_layers:
            raise ConfigError(f"[search.nas_rl] start_layers {self.settings.start_layers} exceeds the space's "
                              f"max_layers {self.max_layers}; lower it or raise [nasrl_macro] max_layers")

    def build_controller(self) -> ChainController:
        return ChainController(self.context.space)

    def build_policy(self, controller: ChainController) -> PolicyGradient:
        return PolicyGradient(controller, lr=CONTROLLER_LR, entropy_weight=0.0, baseline_decay=BASELINE_DECAY)

    def reward(self, trial: Trial) -> float:
        return trial.val_acc ** REWARD_POWER

    def before_sample(self, index: int) -> None:
        self.controller.depth = depth_schedule(index, self.budget(), self.settings.start_layers, self.max_layers)

    def policy_update(self, children: list[dict[str, Any]]) -> None:
        """REINFORCE over ``children``, their decisions scored again (the policy has not
        changed since it sampled them)."""
        self.policy.update_scored([(self.controller(decisions=tuple(c["decisions"])), c["reward"]) for c in children])
