"""NASNet (Zoph, Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable
Image Recognition", CVPR 2018): an LSTM controller writes the normal and the reduction cell
of the NASNet space, 5 decisions per block; every child is trained from scratch and its
validation accuracy rewards the controller through Proximal Policy Optimization.

Settings (Appendix A.2-A.3): a one-layer LSTM of 100 units, 2 x 5B softmax predictions;
PPO with learning rate 3.5e-4; an entropy bonus ("entropy penalty ... to encourage
exploration") of weight 1e-5; the baseline an exponential moving average of previous
rewards with weight 0.95; parameters uniform in [-0.1, 0.1]; updates on minibatches of 20
architectures (``[search.nasnet]``). The reward is the child's validation accuracy (A.2:
"the gradient is scaled by the validation accuracy"). Children train by the protocol's
candidate stage (the paper: 20 epochs, N = 2), one after another. The found cells train by
the shared final recipe, whose drop path probability rises linearly over training: NASNet's
ScheduledDropPath (Appendix A.5), applied inside the NASNet space's networks.

On the shared cell space (``--space cell``), where ENAS' micro search and the gradient
methods also search, the same controller and PPO write cell-space genotypes: the cell
space's blocks (nodes) always add their two edges and read two distinct states, so a block
has four decisions, not five, and the ops are the seven DARTS ones without ``none``
(:data:`NASNET_CONTROLLERS`). That is ENAS' micro controller with NASNet's plain logits.
Children there train by the protocol's candidate stage like random search's, so the two
compare on equal terms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from nasbench.settings import require
from nasbench.spaces.nasnet.arch import (
    BLOCKS,
    CELL_TYPES,
    COMBINATIONS,
    OPERATIONS,
    NasnetArch,
)
from nasbench.strategies.child_training_rl import ChildTrainingRl
from nasbench.strategies.controller import (
    AnchorController,
    CellController,
    Decisions,
    Sample,
)
from nasbench.types import Trial

HIDDEN = 100
CONTROLLER_LR = 3.5e-4
ENTROPY_WEIGHT = 1e-5
BASELINE_DECAY = 0.95
PPO_CLIP = 0.2
"""The clipping range of PPO's surrogate objective (Schulman et al., 2017, the value of their
experiments); NASNet does not give its own."""
PPO_EPOCHS = 10
"""Passes over a minibatch per update (Schulman et al., 2017, their MuJoCo setting); NASNet
does not give its own."""


class NasnetController(AnchorController):
    """NASNet's controller (Fig. 3, Appendix A.2). Per cell type, normal first, one LSTM
    state running through both, and per block its five decisions in the paper's order: two
    inputs, each by attention over the anchors of the cell inputs and the earlier blocks (a
    state may be taken twice), an operation for each, and the combination; then one step
    makes the block's anchor. Each choice feeds the next step: an input its anchor (zero for
    the cell inputs), an operation or combination its embedding. Logits are plain: NASNet
    has no temperature or tanh squashing."""

    def __init__(self, hidden: int = HIDDEN):
        super().__init__(len(OPERATIONS), hidden)
        self.combine_embedding = torch.nn.Embedding(len(COMBINATIONS), hidden)
        self.combine_logits = torch.nn.Linear(hidden, len(COMBINATIONS), bias=False)
        self.reset_parameters()

    def forward(self, generator: torch.Generator | None = None, decisions: tuple[int, ...] | None = None) -> Sample:
        """Sample an architecture from ``generator``, or score the given ``decisions``."""
        decide = Decisions(generator, decisions, self.start)
        state = None
        inputs = self.start
        for _ in CELL_TYPES:
            anchors, keys, state = self.cell_input_anchors(inputs, state)
            for _ in range(BLOCKS):
                for _ in range(2):
                    state = self.lstm(inputs, state)
                    inputs = anchors[decide.categorical(self.attention(keys, state[0]))]
                for _ in range(2):
                    state = self.lstm(inputs, state)
                    inputs = self.op_embedding.weight[decide.categorical(self.op_logits(state[0]).view(-1))][None]
                state = self.lstm(inputs, state)
                inputs = self.combine_embedding.weight[decide.categorical(self.combine_logits(state[0]).view(-1))][None]
                state = self.lstm(inputs, state)  # the block's anchor
                anchors.append(state[0])
                keys.append(self.attn_anchor(state[0]))
                inputs = self.start
        return Sample(NasnetArch.from_decisions(decide.taken), tuple(decide.taken), decide.log_prob, decide.entropy)


class ProximalPolicy:
    """PPO (Schulman et al., 2017) for a controller, as NASNet trains its: each architecture
    is one action whose probability is the product of its decisions'; the advantage is its
    reward minus the baseline; the loss is the clipped surrogate ``-min(r A, clip(r, 1 - e,
    1 + e) A)`` of the ratio ``r`` of its probability now to when it was sampled, minus the
    entropy bonus, averaged over the minibatch and descended by Adam for :data:`PPO_EPOCHS`
    passes. The baseline, an exponential moving average of the rewards before each one,
    starts at the first reward."""

    def __init__(self, controller: torch.nn.Module, lr: float = CONTROLLER_LR, entropy_weight: float = ENTROPY_WEIGHT,
                 baseline_decay: float = BASELINE_DECAY, clip: float = PPO_CLIP, epochs: int = PPO_EPOCHS):
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.entropy_weight, self.baseline_decay, self.clip, self.epochs = entropy_weight, baseline_decay, clip, epochs
        self.baseline: float | None = None

    def advantages(self, rewards: list[float]) -> torch.Tensor:
        """Each reward minus the moving average of the rewards before it (then updated)."""
        advantages = []
        for reward in rewards:
            self.baseline = reward if self.baseline is None else self.baseline
            advantages.append(reward - self.baseline)
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward
        return torch.tensor(advantages)

    def update(self, children: list[dict[str, Any]]) -> None:
        """PPO on ``children``: their ``decisions``, sampling ``log_prob`` and ``reward``."""
        advantages = self.advantages([c["reward"] for c in children])
        old_log_probs = torch.tensor([c["log_prob"] for c in children])
        for _ in range(self.epochs):
            self.optimizer.zero_grad(set_to_none=True)
            samples = [self.controller(decisions=tuple(c["decisions"])) for c in children]
            ratio = torch.exp(torch.stack([s.log_prob for s in samples]) - old_log_probs)
            surrogate = torch.minimum(ratio * advantages, ratio.clamp(1 - self.clip, 1 + self.clip) * advantages)
            entropy = torch.stack([s.entropy for s in samples])
            (-(surrogate + self.entropy_weight * entropy).mean()).backward()
            self.optimizer.step()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]


NASNET_CONTROLLERS: dict[str, Callable[[], AnchorController]] = {
    "nasnet": NasnetController,
    "cell": lambda: CellController(HIDDEN, temperature=1.0, tanh_constant=None),
}
"""NASNet's controller for each space it searches, its own first."""


@dataclass(frozen=True)
class NasnetBudget:
    """NASNet's controller schedule (Zoph et al., CVPR 2018, Appendix A.3): one PPO update
    per ``children_per_update`` trained children (the paper: minibatches of 20 architectures)."""

    children_per_update: int

    def check(self, where: str) -> None:
        require(self.children_per_update >= 1, where, "children_per_update must be >= 1")


class Nasnet(ChildTrainingRl):
    """NASNet: PPO on an LSTM controller writing NASNet cells, every child trained from scratch."""

    name = "nasnet"
    summary = "NASNet: LSTM controller + PPO, children of the NASNet (or the shared) cell space trained from scratch"
    spaces = ("nasnet", "cell")  # NASNET_CONTROLLERS' keys (a literal: the registry reads it from this source)
    protocol_section = "nasnet"
    settings_class = NasnetBudget

    def build_controller(self) -> AnchorController:
        return NASNET_CONTROLLERS[self.context.space.name]()

    def build_policy(self, controller: AnchorController) -> ProximalPolicy:
        return ProximalPolicy(controller)

    def reward(self, trial: Trial) -> float:
        return trial.val_acc

    def policy_update(self, children: list[dict[str, Any]]) -> None:
        self.policy.update(children)
