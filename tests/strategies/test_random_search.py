"""Random search and the random architecture: the budget, the best trial, failed candidates,
and the state as JSON."""
from __future__ import annotations

import json
import random

import pytest
from helpers import context, failing_candidates, outcome

from nasbench.errors import DataError
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch
from nasbench.types import Trial


@pytest.fixture(scope="module")
def uninterrupted(cell_space, tiny, tiny_data):
    """A complete random search on the tiny protocol (3 candidates), with its callbacks' records."""
    trials, checkpoints = [], []
    strategy = RandomSearch(context(cell_space, tiny, tiny_data, seed=3, on_trial=trials.append,
                                    on_checkpoint=checkpoints.append))
    result = strategy.run()
    return strategy, result, trials, checkpoints


def test_random_search_evaluates_exactly_the_budget(uninterrupted, cell_space, tiny, tiny_data):
    strategy, result, trials, checkpoints = uninterrupted
    assert tiny.search.candidates == 3
    assert len(strategy.trials) == 3 and [t.index for t in strategy.trials] == [0, 1, 2]
    assert trials == strategy.trials  # every trial was reported to the store callback
    assert len(checkpoints) == 3 and [len(c.state["trials"]) for c in checkpoints] == [1, 2, 3]
    assert all(c.tensors == {} for c in checkpoints)  # a black-box search keeps no tensors
    assert strategy.status == "finished" and strategy.finished()
    # the candidates are the space's draws from random.Random(seed), in order
    rng = random.Random(3)
    expected = [cell_space.sample(rng) for _ in range(3)]
    assert [cell_space.from_dict(t.arch) for t in strategy.trials] == expected
    n_val = len(tiny_data.search_val)
    for t in strategy.trials:
        assert t.error is None and 0 <= t.val_acc <= 1 and t.seconds > 0
        assert round(t.val_acc * n_val) == pytest.approx(t.val_acc * n_val)


def test_random_search_returns_the_best_trial(uninterrupted, cell_space):
    strategy, result, _, _ = uninterrupted
    accs = [t.val_acc for t in strategy.trials]
    best = accs.index(max(accs))  # the first of equally good candidates
    assert result.val_acc == max(accs)
    assert result.arch == cell_space.from_dict(strategy.trials[best].arch)


def test_candidate_scores_are_repeatable(uninterrupted, cell_space, tiny, tiny_data):
    strategy, _, _, _ = uninterrupted
    ctx = context(cell_space, tiny, tiny_data, seed=3)
    trial = strategy.trials[1]
    assert ctx.train_candidate(cell_space.from_dict(trial.arch), 1) == trial.val_acc


def test_result_is_the_best_scored_trial_earliest_of_ties(cell_space, tiny, tiny_data):
    strategy = RandomSearch(context(cell_space, tiny, tiny_data))
    rng = random.Random(0)
    archs = [cell_space.sample(rng) for _ in range(5)]
    scores = [(0.2, None), (0.5, None), (None, "RuntimeError: boom"), (0.5, None), (0.1, None)]
    strategy.trials = [Trial(i, cell_space.to_dict(a), acc, 1.0, err) for i, (a, (acc, err)) in enumerate(zip(archs, scores))]
    assert strategy.best_trial().index == 1
    result = strategy.result()
    assert result.arch == archs[1] and result.val_acc == 0.5


def test_a_failing_candidate_becomes_a_trial(monkeypatch, cell_space, tiny, tiny_data, uninterrupted):
    ctx = context(cell_space, tiny, tiny_data, seed=3)
    calls = []
    failing_candidates(ctx, RuntimeError("out of memory on candidate 1"), {1}, calls)
    strategy = RandomSearch(ctx)
    result = strategy.run()
    assert calls == [0, 1, 2]
    failed = strategy.trials[1]
    assert failed.val_acc is None and failed.error == "RuntimeError: out of memory on candidate 1"
    clean = uninterrupted[0].trials
    assert outcome([strategy.trials[0], strategy.trials[2]]) == outcome([clean[0], clean[2]])
    best = max((t for t in strategy.trials if t.val_acc is not None), key=lambda t: (t.val_acc, -t.index))
    assert result.val_acc == best.val_acc and result.arch == cell_space.from_dict(best.arch)


def test_a_user_error_in_a_candidate_stops_the_search(cell_space, tiny, tiny_data):
    ctx = context(cell_space, tiny, tiny_data)
    failing_candidates(ctx, DataError("the data went away"))
    with pytest.raises(DataError, match="the data went away"):
        RandomSearch(ctx).run()


def test_all_candidates_failing_is_an_error(cell_space, tiny, tiny_data):
    ctx = context(cell_space, tiny, tiny_data)
    failing_candidates(ctx, ValueError("bad shapes"))
    strategy = RandomSearch(ctx)
    with pytest.raises(RuntimeError, match="random: every candidate failed: ValueError: bad shapes"):
        strategy.run()
    assert len(strategy.trials) == 3 and all(t.error for t in strategy.trials)


def test_state_is_json_and_round_trips(uninterrupted, cell_space, tiny, tiny_data):
    strategy = uninterrupted[0]
    state = strategy.state_dict()
    text = json.dumps(state)
    fresh = RandomSearch(context(cell_space, tiny, tiny_data, seed=3))
    fresh.load_state_dict(json.loads(text))
    assert fresh.state_dict() == json.loads(text)
    assert fresh.rng.getstate() == strategy.rng.getstate()
    assert fresh.trials == strategy.trials and fresh.status == "finished"


def test_random_architecture(cell_space, tiny, tiny_data):
    strategy = RandomArchitecture(context(cell_space, tiny, tiny_data, seed=3))
    assert strategy.budget() == 1 and not strategy.finished()
    state_before = json.loads(json.dumps(strategy.state_dict()))
    result = strategy.run()
    assert result.val_acc is None
    assert result.arch == cell_space.sample(random.Random(3))
    assert strategy.trials == []  # nothing is trained during its "search"
    restored = RandomArchitecture(context(cell_space, tiny, tiny_data, seed=3))
    restored.load_state_dict(json.loads(json.dumps(strategy.state_dict())))
    assert restored.finished() and restored.result() == result
    unstarted = RandomArchitecture(context(cell_space, tiny, tiny_data, seed=3))
    unstarted.load_state_dict(state_before)
    assert unstarted.run() == result
