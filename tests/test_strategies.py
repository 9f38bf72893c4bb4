"""Strategies: random search, failures, checkpoint/restore, the registry."""
from __future__ import annotations

import json
import random

import pytest
import torch

from nasbench.baselines_data import published_row
from nasbench.errors import DataError, UnknownNameError
from nasbench.spaces import SPACES
from nasbench.strategies import STRATEGIES, get_strategy
from nasbench.strategies.base import STRATEGY_CLASSES, SearchContext, Trial, derive_seed
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch

CPU = torch.device("cpu")


def context(space, protocol, data, seed=0, **kwargs) -> SearchContext:
    return SearchContext(space=space, protocol=protocol, seed=seed, data=data, device=CPU, show_progress=False,
                         **kwargs)


def outcome(trials):
    """A trial without its wall time, which is the only thing allowed to differ between runs."""
    return [(t.index, t.arch, t.val_acc, t.error) for t in trials]


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
    real = ctx.train_candidate
    calls = []

    def flaky(arch, index):
        calls.append(index)
        if index == 1:
            raise RuntimeError("out of memory on candidate 1")
        return real(arch, index)

    ctx.train_candidate = flaky
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

    def broken(arch, index):
        raise DataError("the data went away")

    ctx.train_candidate = broken
    with pytest.raises(DataError, match="the data went away"):
        RandomSearch(ctx).run()


def test_all_candidates_failing_is_an_error(cell_space, tiny, tiny_data):
    ctx = context(cell_space, tiny, tiny_data)

    def broken(arch, index):
        raise ValueError("bad shapes")

    ctx.train_candidate = broken
    strategy = RandomSearch(ctx)
    with pytest.raises(RuntimeError, match="random: every candidate failed: ValueError: bad shapes"):
        strategy.run()
    assert len(strategy.trials) == 3 and all(t.error for t in strategy.trials)


@pytest.mark.parametrize("stop_after", [1, 2])
def test_restore_continues_exactly(cell_space, tiny, tiny_data, uninterrupted, stop_after):
    first = RandomSearch(context(cell_space, tiny, tiny_data, seed=3))
    for _ in range(stop_after):
        first.step()
    state = json.loads(json.dumps(first.state_dict()))  # what the store keeps
    assert len(state["trials"]) == stop_after

    calls = []
    ctx = context(cell_space, tiny, tiny_data, seed=3)
    real = ctx.train_candidate
    ctx.train_candidate = lambda arch, index: calls.append(index) or real(arch, index)
    restored = RandomSearch(ctx)
    restored.load_state_dict(state)
    assert restored.steps_done() == stop_after
    result = restored.run()
    assert calls == list(range(stop_after, 3))  # earlier candidates are not trained again
    strategy, expected, _, _ = uninterrupted
    assert result == expected
    assert outcome(restored.trials) == outcome(strategy.trials)


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


def test_derive_seed():
    assert derive_seed(0, "candidate", 1) == derive_seed(0, "candidate", 1)
    seeds = {derive_seed(s, purpose, i) for s in range(3) for purpose in ("candidate", "final") for i in range(5)}
    assert len(seeds) == 30 and all(0 <= s < 2 ** 31 for s in seeds)


def test_registry():
    assert sorted(STRATEGIES) == ["darts", "darts-2nd", "enas", "evolution", "fbnet", "gdas", "metaqnn", "nas-rl",
                                  "nasnet", "pc-darts", "pnas", "proxylessnas", "random", "random-arch", "random-ws",
                                  "snas"]
    assert get_strategy("random") is RandomSearch and get_strategy("random-arch") is RandomArchitecture
    with pytest.raises(UnknownNameError) as info:
        get_strategy("amoebanet")
    assert str(info.value) == ("unknown method 'amoebanet'; known: darts, darts-2nd, enas, evolution, fbnet, gdas, "
                               "metaqnn, nas-rl, nasnet, pc-darts, pnas, proxylessnas, random, random-arch, random-ws, "
                               "snas")
    for name, cls in STRATEGIES.items():
        assert cls.name == name and cls.strategy_class in STRATEGY_CLASSES and cls.summary
        assert cls.spaces and set(cls.spaces) <= set(SPACES)  # a method may search a space of its own (metaqnn)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_published_rows_exist(name):
    for method, variant in STRATEGIES[name].published:
        row = published_row(method, variant)
        assert row["method"] == method and row["variant"] == variant
        assert row["strategy"] == STRATEGIES[name].strategy_class


def test_random_search_published_figures():
    row = published_row(*RandomSearch.published[0])
    assert (row["test_error"], row["params_m"], row["search_cost_gpu_days"]) == (3.29, 3.2, 4)
