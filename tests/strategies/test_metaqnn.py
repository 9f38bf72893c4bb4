"""MetaQNN's Q-learning agent: the update rule (equation 3), convergence on a synthetic reward, the
budget the layout allows, the scaled epsilon schedule of table 2, failed candidates kept out of
the replay memory, and a smoke run through the CLI."""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
from collections import Counter

import pytest
import torch
from helpers import (
    failing_candidates,
    run_cli,
    store_rows,
    store_trials,
    with_candidates,
)

from nasbench.errors import ConfigError
from nasbench.hardware.counting import count_params
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.metaqnn.arch import (
    GAP,
    SOFTMAX,
    Conv,
    FullyConnected,
    LayerSequence,
    Pool,
)
from nasbench.spaces.metaqnn.space import MetaqnnLayout, MetaqnnSpace
from nasbench.strategies.context import SearchContext
from nasbench.strategies.metaqnn import (
    EPSILON_SCHEDULE,
    LEARNING_RATE,
    Q_INIT,
    MetaQnn,
    QLearner,
    epsilon_schedule,
)

WIDE = MetaqnnLayout(max_layers=8, conv_filters=(4, 8), fc_neurons=(16, 8))


@pytest.fixture(scope="module")
def wide():
    return MetaqnnSpace(WIDE)


# -- the Q-learning agent ----------------------------------------------------------------

def test_an_update_follows_equation_3_from_the_termination_back(wide):
    agent = QLearner(wide)
    arch = LayerSequence((Conv(8, 3), Pool(2, 2)), GAP)
    agent.update(arch, 0.9)
    (s0, _), (s1, _), (s2, _) = wide.trajectory(arch)
    last = Q_INIT + LEARNING_RATE * (0.9 - Q_INIT)
    assert agent.values[s2.key()] == {"GAP": pytest.approx(last)}
    # gamma = 1: each earlier value moves towards the best value of the state after it
    middle = Q_INIT + LEARNING_RATE * (last - Q_INIT)
    assert agent.values[s1.key()] == {"P(2,2)": pytest.approx(middle)}
    assert agent.values[s0.key()] == {"C(8,3,1)": pytest.approx(Q_INIT + LEARNING_RATE * (middle - Q_INIT))}
    assert s1.key() == "1 C(8,3,1) R8 FC0" and s2.key() == "2 P(2,2) R8 FC0"
    agent.update(arch, 0.0)  # GAP falls below the untried SM, whose 0.5 is now the best after P(2,2)
    assert agent.values[s2.key()] == {"GAP": pytest.approx(last - LEARNING_RATE * last)} and last * 0.99 < Q_INIT
    assert agent.values[s1.key()]["P(2,2)"] == pytest.approx(middle + LEARNING_RATE * (Q_INIT - middle))


class TinyImages(MetaqnnSpace):
    """The space on 3x3 images: only 1x1 convolutions and no pooling are allowed there, so
    with one filter count every state has a single way in. (On 32x32 images sequences meet in
    shared states, e.g. any convolution followed by P(2,2), and the agent's states, the paper's,
    cannot tell what came before.)"""

    input_size = 3


TINY = MetaqnnLayout(max_layers=10, conv_filters=(8,), fc_neurons=(16, 8))


FAVOURED = LayerSequence((Conv(8, 1), Conv(8, 1), FullyConnected(16)), SOFTMAX)


class Favouring(SearchContext):
    """Candidates scored instantly: the share of the favoured sequence's actions (its layers,
    then its termination) a sequence starts with; 1 for the favoured one only."""

    def train_candidate(self, arch, index):
        pairs = zip(arch.actions(), FAVOURED.actions())
        return sum(1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1], pairs)) / len(FAVOURED.actions())


class Hashed(SearchContext):
    """Candidates scored instantly by a hash of the architecture, in [0.1, 0.6)."""

    def train_candidate(self, arch, index):
        return 0.1 + int(hashlib.sha256(str(arch).encode()).hexdigest()[:8], 16) / 2 ** 32 / 2


def synthetic(context_cls, space, smoke, seed, candidates, layout):
    protocol = with_candidates(smoke, candidates).with_section("metaqnn", layout)
    return context_cls(space=space, protocol=protocol, seed=seed, data=None, device=torch.device("cpu"),
                       show_progress=False)


def test_the_agent_converges_to_a_favoured_sequence(smoke):
    """30 models of the 69 sequences, 17 of them random (epsilon = 1); every one of seeds 0-9 converges."""
    strategy = MetaQnn(synthetic(Favouring, TinyImages(TINY), smoke, 0, candidates=30, layout=TINY))
    result = strategy.run()
    assert result.arch == FAVOURED and result.val_acc == 1.0
    for walk_seed in range(5):  # the greedy walk (epsilon = 0) writes it, whatever breaks ties
        assert strategy.learner.walk(random.Random(walk_seed), 0.0) == FAVOURED
    # the greedy phase kept rewriting it: it is the memory's most replayed model
    (favoured,) = [t.index for t in strategy.trials if t.val_acc == 1.0]
    assert Counter(strategy.memory).most_common(1)[0][0] == favoured


def test_a_budget_beyond_the_layouts_architectures_is_refused(smoke):
    layout = dataclasses.replace(TINY, max_layers=4)
    space = TinyImages(layout)
    walks = {str(space.sample(rng)) for rng in map(random.Random, range(5000))}
    assert space.architectures() == len(walks) == 27  # what uniform walks find, all of them
    assert MetaQnn(synthetic(Favouring, space, smoke, 0, candidates=27, layout=layout)).budget() == 27
    with pytest.raises(ConfigError, match=r"layout allows 27 architectures, fewer than search.candidates = 28"):
        MetaQnn(synthetic(Favouring, space, smoke, 0, candidates=28, layout=layout))
    assert get_space("metaqnn", load_protocol("full")).architectures() > 10 ** 12


def test_the_epsilon_schedule_keeps_table_2s_shares():
    total = sum(models for _, models in EPSILON_SCHEDULE)
    assert total == 2700
    assert epsilon_schedule(2700) == [eps for eps, models in EPSILON_SCHEDULE for _ in range(models)]
    assert epsilon_schedule(2) == [1.0, 0.5]
    assert epsilon_schedule(8) == [1.0, 1.0, 1.0, 1.0, 0.9, 0.6, 0.4, 0.2]
    for candidates in range(1, 400):
        schedule = epsilon_schedule(candidates)
        assert len(schedule) == candidates and schedule[0] == 1.0
        assert schedule == sorted(schedule, reverse=True)
        for eps, models in EPSILON_SCHEDULE:
            assert abs(schedule.count(eps) - candidates * models / total) < 1


def test_a_failed_candidate_is_stored_and_stays_out_of_the_replay_memory(smoke):
    context = synthetic(Hashed, get_space("metaqnn", smoke), smoke, 0, candidates=4, layout=MetaqnnSpace.read_layout(smoke))
    failing_candidates(context, RuntimeError("out of memory on candidate 1"), {1})
    strategy = MetaQnn(context)
    result = strategy.run()
    assert strategy.trials[1].val_acc is None and strategy.trials[1].error == "RuntimeError: out of memory on candidate 1"
    assert 1 not in strategy.memory and set(strategy.memory) == {0, 2, 3}
    assert result.val_acc == max(t.val_acc for t in strategy.trials if t.val_acc is not None)


# -- a run through the CLI ---------------------------------------------------------------

def test_a_smoke_run_through_the_cli_stores_an_rl_row(tmp_path, data_path, smoke):
    store = tmp_path / "store.sqlite"
    result = run_cli("run", "--method", "metaqnn", "--protocol", "smoke", "--seeds", "0", "--store", store,
                     "--data", data_path, "--json", "--no-progress")
    assert result.code == 0, result.err
    (row,) = store_rows(store)
    assert (row["method"], row["strategy_class"], row["space"], row["status"]) == ("metaqnn", "RL", "metaqnn", "finished")
    space = get_space("metaqnn", smoke)
    arch = space.from_dict(json.loads(row["genotype_json"]))
    trials = store_trials(store, row["id"])
    assert len(trials) == smoke.search.candidates and all(t["error"] is None for t in trials)
    assert row["val_acc"] == max(t["val_acc"] for t in trials)
    assert arch in [space.from_dict(json.loads(t["arch_json"])) for t in trials]
    assert row["params"] == count_params(space.build(arch, smoke.final.network)) and 0 <= row["test_acc"] <= 1
    details = json.loads(row["details_json"])
    assert details["epsilon_schedule"] == [[1.0, 1], [0.5, 1]]
