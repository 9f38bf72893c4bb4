"""MetaQNN (Baker, Gupta, Naik & Raskar, "Designing Neural Network Architectures using
Reinforcement Learning", ICLR 2017, Sect. 3-4 and Appendix A): tabular Q-learning over the
MetaQNN space's states (:mod:`nasbench.spaces.metaqnn.space`).

The agent writes an architecture layer by layer, epsilon-greedily on its Q-values (ties
among the best drawn uniformly, as the official code does); the candidate stage trains
it, and its search-validation accuracy is the reward of the walk's last transition, every
other transition's reward being 0. After each model the agent draws
:data:`REPLAY_SAMPLES` walks uniformly from its replay memory, with replacement, and
updates the Q-values along each from the termination back to the start (Sect. 3, eq. 3,
and the Appendix's algorithm):

    Q(s_T, a_T) <- (1 - alpha) Q(s_T, a_T) + alpha r
    Q(s_i, a_i) <- (1 - alpha) Q(s_i, a_i) + alpha gamma max_a Q(s_{i+1}, a)

Epsilon falls along the paper's Table 2 (:data:`EPSILON_SCHEDULE`), scaled to the
protocol's ``search.candidates`` (:func:`epsilon_schedule`). The schedule counts models
trained: a walk that writes an architecture trained before is not trained again; its
stored accuracy joins the replay memory once more, the agent replays as after a new model,
and walks again (the official code's ``q_server.py``). A failed candidate is not trained
again either, and never joins the memory: it has no accuracy to learn from. The
result is the trained candidate of the best search-validation accuracy (the paper takes
its top models to final training).

The agent's states are the paper's: the last layer with its depth and representation
bin, not the layers before it. Sequences that meet in a state share the values after it,
so the agent learns, per state, which action led to the best replayed accuracies from
there; a reward that depends on the layers before a shared state is beyond its states.

Resuming: the state is the Q-table, the replay memory (indices of trials), the random
state and the trials, whose count is the position in the epsilon schedule.

With the proxy's short candidate training, accuracies stay below the initial Q-value 0.5,
so a tried action's value falls below an untried one's and the greedy choice prefers
untried layers. The paper's initial value is kept all the same (the official code advises
one near an average model's accuracy, "better to undershoot").
"""
from __future__ import annotations

import bisect
import itertools
import json
import random

from nasbench.errors import ConfigError
from nasbench.spaces.metaqnn.arch import Action, LayerSequence, action_name
from nasbench.spaces.metaqnn.space import AgentState, MetaqnnSpace
from nasbench.strategies.base import Strategy
from nasbench.types import SearchResult, Trial

Q_INIT = 0.5
"""Every Q-value's start (Sect. 4.2: 0.5)."""
LEARNING_RATE = 0.01
"""The Q-learning rate alpha (Sect. 4.2)."""
DISCOUNT = 1.0
"""The discount gamma (Sect. 4.2): the final accuracy counts fully at every step."""
REPLAY_SAMPLES = 100
"""Walks replayed from the memory after each model (Sect. 4.2: 100; the official server's
``number_q_updates_per_train``)."""
EPSILON_SCHEDULE = ((1.0, 1500), (0.9, 100), (0.8, 100), (0.7, 100), (0.6, 150), (0.5, 150), (0.4, 150),
                    (0.3, 150), (0.2, 150), (0.1, 150))
"""(epsilon, models trained at it) of the paper's Table 2: 2700 models, more than half random."""


def epsilon_schedule(candidates: int) -> list[float]:
    """The epsilon of each of ``candidates`` models: model ``j`` takes the epsilon the paper
    used for the model at the same relative position, (j + 1/2) / candidates of the way
    through Table 2's 2700 models. So every epsilon's share of the models is the paper's
    within one model, the schedule is the paper's at 2700 candidates, and it only falls
    (the smoke protocol's 2 candidates: 1.0, then 0.5; the proxy's 8: four at 1.0, then
    0.9, 0.6, 0.4, 0.2)."""
    total = sum(models for _, models in EPSILON_SCHEDULE)
    # integers throughout: j takes the first stage whose end lies beyond its position
    ends = [2 * candidates * end for end in itertools.accumulate(models for _, models in EPSILON_SCHEDULE)]
    return [EPSILON_SCHEDULE[bisect.bisect_right(ends, (2 * j + 1) * total)][0] for j in range(candidates)]


class QLearner:
    """The agent's Q-table over a space's states and its epsilon-greedy walks. ``values``
    maps a state's key to its action names' Q-values; only values that were updated are
    stored, every other one is :data:`Q_INIT`."""

    def __init__(self, space: MetaqnnSpace):
        self.space = space
        self.values: dict[str, dict[str, float]] = {}

    def q_values(self, state: AgentState, actions: tuple[Action, ...]) -> list[float]:
        row = self.values.get(state.key(), {})
        return [row.get(action_name(action), Q_INIT) for action in actions]

    def walk(self, rng: random.Random, epsilon: float) -> LayerSequence:
        """An architecture: at each state a uniformly random action with probability
        ``epsilon``, else one of the highest Q-value, uniformly among ties."""
        def choose(state: AgentState, actions: tuple[Action, ...]) -> Action:
            if rng.random() < epsilon:
                return rng.choice(actions)
            values = self.q_values(state, actions)
            best = max(values)
            return rng.choice([action for action, value in zip(actions, values) if value == best])

        return self.space.walk(choose)

    def update(self, arch: LayerSequence, reward: float) -> None:
        """One Q-learning pass along ``arch``'s walk, from its termination back to the start."""
        target = reward
        for state, action in reversed(self.space.trajectory(arch)):
            row = self.values.setdefault(state.key(), {})
            name = action_name(action)
            value = row.get(name, Q_INIT)
            row[name] = value + LEARNING_RATE * (target - value)
            target = DISCOUNT * max(self.q_values(state, self.space.actions(state)))


class MetaQnn(Strategy):
    """MetaQNN's Q-learning agent, one new trained model per step."""

    name = "metaqnn"
    strategy_class = "RL"
    summary = "MetaQNN: tabular Q-learning writes layer sequences, epsilon-greedy with experience replay"
    spaces = ("metaqnn",)
    state_fields = ("q_values", "memory")

    def __init__(self, context):
        super().__init__(context)
        architectures = context.space.architectures()
        if architectures < self.budget():
            raise ConfigError(f"metaqnn: the protocol's [metaqnn] layout allows {architectures} architectures, fewer "
                              f"than search.candidates = {self.budget()}; allow more layers or sizes, or fewer "
                              f"candidates")
        self.learner = QLearner(context.space)
        self.epsilons = epsilon_schedule(self.budget())
        self.memory: list[int] = []
        """The replay memory: indices into ``trials`` of trained models, once per time a walk wrote one."""

    @property
    def q_values(self) -> dict[str, dict[str, float]]:
        return self.learner.values

    @q_values.setter
    def q_values(self, values: dict[str, dict[str, float]]) -> None:
        self.learner.values = values

    def budget(self) -> int:
        return self.context.protocol.search.candidates

    def step(self) -> None:
        epsilon = self.epsilons[len(self.trials)]
        known = {json.dumps(t.arch, sort_keys=True): t for t in self.trials}
        while True:  # ends: every walk has a positive probability (epsilon >= 0.1), and a new one is left
            arch = self.learner.walk(self.rng, epsilon)
            trained = known.get(json.dumps(self.context.space.to_dict(arch), sort_keys=True))
            if trained is None:
                self._remember(self.evaluate(arch))
                return
            self._remember(trained)

    def _remember(self, trial: Trial) -> None:
        """Add a trained model to the replay memory, then replay :data:`REPLAY_SAMPLES` walks
        of the memory (a failed one adds nothing, and nothing is replayed until the memory
        holds a model)."""
        if trial.val_acc is not None:
            self.memory.append(trial.index)
        if not self.memory:
            return
        for _ in range(REPLAY_SAMPLES):
            replayed = self.trials[self.rng.choice(self.memory)]
            self.learner.update(self.context.space.from_dict(replayed.arch), replayed.val_acc)

    def result(self) -> SearchResult:
        best = self.best_trial()
        schedule = [[epsilon, len(list(models))] for epsilon, models in itertools.groupby(self.epsilons)]
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc,
                            {"epsilon_schedule": schedule, "replay_memory": len(self.memory)})
