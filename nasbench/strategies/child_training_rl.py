"""What NAS-RL and NASNet share: a controller samples an architecture, the child network is
trained from scratch by the protocol's candidate stage, and after every batch of children
the controller takes one policy update on their rewards (Zoph & Le, ICLR 2017, Sect. 3.2;
Zoph et al., CVPR 2018, Appendix A.3).

The children of a batch wait in ``pending`` as their decisions, the log-probability the
controller gave them when it sampled them, and their reward, all JSON: a run stopped in the
middle of a batch resumes with them, and the update scores the decisions again under the
controller's current weights.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch
from torch import nn

from nasbench.strategies.base import Strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.controller import HoldsController
from nasbench.types import SearchResult, TensorState, Trial


class ChildTrainingRl(HoldsController, Strategy):
    """A controller trained by reinforcement learning on children trained from scratch.
    Subclasses build the controller and its policy optimiser, turn a trained child's
    validation metric into a reward, and take the update; the controller returns samples with ``arch``,
    ``decisions``, ``log_prob`` and ``entropy``."""

    strategy_class = "RL"
    state_fields = ("pending", "history")

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.settings = self.method_settings()
        self.init_controller(context.seed, self.build_controller, self.build_policy)
        self.pending: list[dict[str, Any]] = []
        """Children trained since the last update: decisions, sampling log-probability, entropy, reward."""
        self.history: list[dict[str, Any]] = []

    @abstractmethod
    def build_controller(self) -> nn.Module:
        """The controller, its weights drawn from torch's (seeded) generator."""

    @abstractmethod
    def build_policy(self, controller: nn.Module) -> Any:
        """The controller's optimiser, with ``baseline``, ``state_dict`` and ``load_state_dict``."""

    @abstractmethod
    def reward(self, trial: Trial) -> float:
        """A trained child's reward for its validation metric (accuracy or perplexity)."""

    @abstractmethod
    def policy_update(self, children: list[dict[str, Any]]) -> None:
        """One update of the controller on ``children`` (the pending ones)."""

    def before_sample(self, index: int) -> None:
        """Adjust the controller before it samples child ``index`` (e.g. NAS-RL's depth)."""

    def budget(self) -> int:
        return self.context.protocol.search.candidates

    def step(self) -> None:
        """The next children of the current batch, as many as ``context.workers`` trains at
        once (all sampled before any is trained: the policy does not change within a batch,
        so this is the order one at a time would give), then the update if the batch is full."""
        count = min(self.context.workers, self.settings.children_per_update - len(self.pending),
                    self.budget() - len(self.trials))
        samples = []
        for offset in range(count):
            self.before_sample(len(self.trials) + offset)
            with torch.no_grad():
                samples.append(self.controller(self.controller_generator))
        for sample, trial in zip(samples, self.evaluate_all([s.arch for s in samples])):
            if trial.score is not None:  # a child that failed to train gives no reward
                self.pending.append({"decisions": list(sample.decisions), "log_prob": sample.log_prob.item(),
                                     "entropy": sample.entropy.item(), "reward": self.reward(trial)})
        if len(self.pending) == self.settings.children_per_update or (self.finished() and self.pending):
            self.update_controller()

    def update_controller(self) -> None:
        """One policy update over the pending children; its record joins the reward curve."""
        self.policy_update(self.pending)
        count = len(self.pending)
        self.history.append({"epoch": len(self.history) + 1, "children": count,
                             "rewards": [sum(c["reward"] for c in self.pending) / count],
                             "entropies": [sum(c["entropy"] for c in self.pending) / count],
                             "baseline": self.policy.baseline})
        self.pending = []

    def result(self) -> SearchResult:
        """The child with the best validation score (the papers train their best children
        further; the shared final training does that here)."""
        best = self.best_trial()
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc, details={
            "controller_epochs": self.history, "child_trainings": len(self.trials)},
            val_perplexity=best.val_perplexity)

    def tensor_state(self) -> TensorState:
        return self.controller_tensors()

    def load_tensor_state(self, tensors: TensorState) -> None:
        self.load_controller_tensors(tensors)
