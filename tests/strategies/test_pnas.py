"""PNAS: expansion, encoding, the predictor ensemble, the progressive search under a cheap
synthetic objective (exact budget, levels, failures), and one real run through the command
line."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from helpers import CPU, failing_candidates, run_cli, store_rows, store_trials
from scipy.stats import spearmanr

from nasbench.spaces.cell.space import SAMPLED_OPERATIONS
from nasbench.strategies import get_strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.pnas import (
    Pnas,
    cell_genotype,
    encode,
    expansions,
    fit_predictor,
    level_sizes,
)

FAVOURED = "sep_conv_3x3"


def synthetic_accuracy(genotype) -> float:
    """A deterministic stand-in for candidate training: the share of edges using
    ``FAVOURED``, mapped into [0.1, 0.9]."""
    edges = genotype.normal
    return 0.1 + 0.8 * sum(op == FAVOURED for op, _ in edges) / len(edges)


def random_cell(rng: random.Random, blocks: int):
    cell = ()
    for _ in range(blocks):
        cell = rng.choice(expansions(cell))
    return cell


def synthetic_context(space, protocol, data, candidates: int, seed: int = 0, calls: list | None = None, **kwargs):
    protocol = dataclasses.replace(protocol, search=dataclasses.replace(protocol.search, candidates=candidates))
    context = SearchContext(space=space, protocol=protocol, seed=seed, data=data, device=CPU, show_progress=False,
                            **kwargs)

    def train(arch, index):
        if calls is not None:
            calls.append(index)
        return synthetic_accuracy(arch)

    context.train_candidate = train
    return context


def outcome(trials):
    return [(t.index, t.arch, t.val_acc, t.error) for t in trials]


def blocks_of(trial) -> int:
    return len(trial.arch["normal"]) // 2


# -- the space of blocks -----------------------------------------------------------------

def test_expansion_counts_match_a_hand_count():
    ops = len(SAMPLED_OPERATIONS)
    assert ops == 7 and "none" not in SAMPLED_OPERATIONS
    # b=1: the only pair of distinct inputs is (c_{k-2}, c_{k-1}), with 7 x 7 operation pairs
    one_block = expansions(())
    assert len(one_block) == 1 * 7 * 7 == 49
    assert {(a, b) for (_, a), (_, b) in one_block} == {(0, 1)}
    # b=2: the new node picks 2 distinct inputs of {c_{k-2}, c_{k-1}, n2}: 3 pairs
    two_blocks = expansions(one_block[0])
    assert len(two_blocks) == 3 * 7 * 7 == 147
    assert {(a, b) for (_, a), (_, b) in (cell[2:] for cell in two_blocks)} == {(0, 1), (0, 2), (1, 2)}
    assert all(cell[:2] == one_block[0] for cell in two_blocks)
    # b=3 and b=4: C(4, 2) = 6 and C(5, 2) = 10 input pairs
    assert len(expansions(two_blocks[0])) == 6 * 49 and len(expansions(expansions(two_blocks[0])[0])) == 10 * 49
    assert len(set(two_blocks)) == len(two_blocks)


@pytest.mark.parametrize("candidates, sizes", [
    (8, [2, 2, 2, 2]),      # proxy: K = 8 // 4
    (24, [6, 6, 6, 6]),     # full
    (10, [2, 2, 2, 4]),     # the remainder trains at the final level
    (2, [1, 1]),            # smoke: fewer candidates than nodes, one cell per level
    (1, [1]),
    (300, [49, 75, 75, 101]),  # level 1 has only 49 cells
])
def test_level_sizes_spend_the_budget(candidates, sizes):
    assert level_sizes(candidates) == sizes and sum(sizes) == candidates


@pytest.mark.parametrize("blocks", [1, 2, 3, 4])
def test_cells_of_every_level_build_networks(cell_space, smoke, blocks):
    """The cell space's genotypes and networks take cells of 1 to 4 nodes; PNAS uses one
    cell as normal and reduction cell."""
    genotype = cell_genotype(random_cell(random.Random(blocks), blocks))
    assert genotype.nodes == blocks and genotype.reduce == genotype.normal
    assert genotype.normal_concat == genotype.reduce_concat == tuple(range(2, blocks + 2))
    assert cell_space.from_dict(json.loads(genotype.to_json())) == genotype
    model = cell_space.build(genotype, smoke.candidate.network)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


# -- the predictor -----------------------------------------------------------------------

def test_encoding_averages_block_tokens():
    cell = (("sep_conv_3x3", 0), ("skip_connect", 1), ("skip_connect", 0), ("sep_conv_3x3", 2))
    features = encode([cell], blocks=4)[0]
    inputs, ops = 5, 7
    first_input, second_input = features[:inputs], features[inputs:2 * inputs]
    first_op, second_op = features[2 * inputs:2 * inputs + ops], features[2 * inputs + ops:]
    assert first_input.tolist() == [1.0, 0, 0, 0, 0]
    assert second_input.tolist() == [0, 0.5, 0.5, 0, 0]
    sep, skip = SAMPLED_OPERATIONS.index("sep_conv_3x3"), SAMPLED_OPERATIONS.index("skip_connect")
    assert first_op[sep] == first_op[skip] == second_op[sep] == second_op[skip] == 0.5
    assert features.sum() == 4  # each slot's frequencies sum to 1


def test_predictor_learns_a_synthetic_objective():
    rng = random.Random(0)
    train = [random_cell(rng, rng.randint(1, 4)) for _ in range(50)]
    held_out = [random_cell(rng, 4) for _ in range(200)]
    predictor = fit_predictor(train, [synthetic_accuracy(cell_genotype(c)) for c in train], blocks=4, seed=1)
    predicted = predictor.predict(encode(held_out, 4))
    truth = [synthetic_accuracy(cell_genotype(c)) for c in held_out]
    assert spearmanr(predicted.numpy(), truth).correlation > 0.8
    assert ((0 < predicted) & (predicted < 1)).all()


def test_predictor_fit_is_determined_by_its_seed():
    rng = random.Random(0)
    cells = [random_cell(rng, 2) for _ in range(7)]
    accuracies = [rng.random() for _ in cells]
    scored = encode([random_cell(rng, 3) for _ in range(20)], 4)
    first, again, other = (fit_predictor(cells, accuracies, 4, seed).predict(scored) for seed in (3, 3, 4))
    assert torch.equal(first, again) and not torch.equal(first, other)


# -- the search, under a synthetic objective ---------------------------------------------

@pytest.fixture(scope="module")
def searched(cell_space, tiny, tiny_data):
    """PNAS with 8 candidates (B = 4, K = 2) on the synthetic objective, with its checkpoints."""
    checkpoints, calls = [], []
    strategy = Pnas(synthetic_context(cell_space, tiny, tiny_data, candidates=8, seed=5, calls=calls,
                                      on_checkpoint=checkpoints.append))
    result = strategy.run()
    return strategy, result, checkpoints, calls


def test_search_trains_exactly_the_budget_level_by_level(searched):
    strategy, result, checkpoints, calls = searched
    assert calls == list(range(8)) and [t.index for t in strategy.trials] == list(range(8))
    assert [blocks_of(t) for t in strategy.trials] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert len(checkpoints) == 8 and all(c.tensors == {} for c in checkpoints)
    for trial in strategy.trials:
        assert trial.arch["reduce"] == trial.arch["normal"] and trial.error is None
    for trial in strategy.trials[2:]:  # every expansion grows a cell trained at the level before
        parents = [t.arch["normal"] for t in strategy.trials if blocks_of(t) == blocks_of(trial) - 1]
        assert trial.arch["normal"][:-2] in parents


def test_search_returns_the_best_final_level_cell(searched, cell_space):
    strategy, result, _, _ = searched
    final = [t for t in strategy.trials if blocks_of(t) == 4]
    best = max(final, key=lambda t: (t.val_acc, -t.index))
    assert result.arch == cell_space.from_dict(best.arch) and result.arch.nodes == 4
    assert result.val_acc == best.val_acc
    assert result.details == {"blocks": 4, "cells_per_level": [2, 2, 2, 2]}


@pytest.mark.slow
def test_predictor_steers_the_search(cell_space, tiny, tiny_data):
    """A random 4-block cell scores 0.1 + 0.8 / 7 = 0.21 in expectation; guided by the
    predictor, the final level trains cells rich in the favoured operation (over seeds:
    with 2 cells per level, one seed may draw no favoured operation at level 1)."""
    final = []
    for seed in range(4):
        strategy = Pnas(synthetic_context(cell_space, tiny, tiny_data, candidates=8, seed=seed))
        strategy.run()
        final += [t.val_acc for t in strategy.trials if blocks_of(t) == 4]
    assert sum(final) / len(final) > 0.4


def test_seeds_search_differently(searched, cell_space, tiny, tiny_data):
    other = Pnas(synthetic_context(cell_space, tiny, tiny_data, candidates=8, seed=6))
    other.run()
    assert [t.arch for t in other.trials[:2]] != [t.arch for t in searched[0].trials[:2]]


def test_failed_cells_are_not_expanded(cell_space, tiny, tiny_data):
    context = synthetic_context(cell_space, tiny, tiny_data, candidates=8)
    failing_candidates(context, RuntimeError("out of memory"), {0})
    strategy = Pnas(context)
    strategy.run()
    failed, kept = strategy.trials[0], strategy.trials[1]
    assert failed.error == "RuntimeError: out of memory" and kept.val_acc is not None
    assert all(t.arch["normal"][:2] == kept.arch["normal"] for t in strategy.trials[2:4])


def test_a_level_without_any_trained_cell_stops_the_search(cell_space, tiny, tiny_data):
    context = synthetic_context(cell_space, tiny, tiny_data, candidates=8)
    failing_candidates(context, ValueError("bad shapes"))
    strategy = Pnas(context)
    with pytest.raises(RuntimeError, match="^pnas: every cell of level 1 failed: ValueError: bad shapes$"):
        strategy.run()
    assert len(strategy.trials) == 2


def test_registered():
    assert get_strategy("pnas") is Pnas and Pnas.strategy_class == "SMBO"


# -- for real: the command line on the smoke protocol ------------------------------------

def test_smoke_run_through_the_command_line(tmp_path, data_path, smoke):
    store = tmp_path / "results.sqlite"
    result = run_cli("run", "--method", "pnas", "--protocol", "smoke", "--seeds", "0", "--store", store, "--json",
                     "--data", data_path, "--no-progress")
    assert result.code == 0, result.err
    [record] = result.json_lines()
    assert record["method"] == "pnas" and record["strategy"] == "SMBO" and record["status"] == "finished"
    assert 0 <= record["test_acc"] <= 1 and record["params"] > 0
    assert record["details"] == {"blocks": 2, "cells_per_level": [1, 1]}  # smoke: 2 candidates
    [row] = store_rows(store)
    trials = store_trials(store, row["id"])
    assert smoke.search.candidates == 2 and [t["idx"] for t in trials] == [0, 1]
    first, second = (json.loads(t["arch_json"])["normal"] for t in trials)
    assert len(first) == 2 and second[:2] == first
    assert record["genotype"]["normal"] == second == record["genotype"]["reduce"]
    assert record["val_acc"] == trials[1]["val_acc"]
