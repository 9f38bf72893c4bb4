"""Random search with weight sharing: the uniform single paths it trains on, that a step
trains only the sampled path, the scoring stage and its choice, the method's protocol
section, and a smoke run through `nasbench run`."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest
import torch
from helpers import (
    context,
    random_batch,
    run_cli,
    snapshot,
    store_rows,
    with_section,
    with_supernet,
)

from nasbench.errors import ConfigError
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import EDGES, NODE_EDGES, NONE, path_weights
from nasbench.strategies.random_ws import (
    RANDOM_WS_WEIGHTS,
    RandomWeightSharing,
    shared_weight_accuracy,
)


def with_scoring(protocol, samples: int, finalists: int):
    return with_section(protocol, "search.random_ws", samples=samples, finalists=finalists)


@pytest.fixture(scope="module")
def searching(tiny):
    """One epoch of four batches of 8 images on a 2-channel supernet, then 4 scored paths and 2 finalists."""
    return with_scoring(with_supernet(tiny, epochs=1, channels=2, batch_size=8), samples=4, finalists=2)


def test_single_paths_are_uniform_architectures_of_the_space(cell_space, searching, tiny_data):
    strategy = RandomWeightSharing(context(cell_space, searching, tiny_data))
    operations, inputs = Counter(), Counter()
    draws = 300
    for _ in range(draws):
        for weights in strategy.search_weights().values():
            assert weights.shape == (len(EDGES), len(SEARCH_OPERATIONS)) and weights.dtype == torch.float32
            assert set(weights.unique().tolist()) == {0.0, 1.0} and weights[:, NONE].sum() == 0
            assert set(weights.sum(dim=1).tolist()) <= {0.0, 1.0}  # one operation per chosen edge
            for node, incoming in enumerate(NODE_EDGES, start=2):
                chosen = [e for e in incoming if weights[e].sum() == 1]
                assert len(chosen) == 2  # two distinct inputs per node
                inputs[node, tuple(EDGES[e][1] for e in chosen)] += 1
            operations.update(SEARCH_OPERATIONS[k] for k in weights.argmax(dim=1)[weights.sum(dim=1) == 1].tolist())
    assert set(operations) == set(SEARCH_OPERATIONS) - {"none"}
    expected = 2 * draws * 8 / 7
    assert all(abs(count - expected) < 0.15 * expected for count in operations.values())
    for node, pairs in ((2, 1), (3, 3), (4, 6), (5, 10)):  # node n picks 2 of its n earlier states
        counts = [count for (n, _), count in inputs.items() if n == node]
        assert len(counts) == pairs and all(abs(count - 2 * draws / pairs) < 0.3 * 2 * draws / pairs for count in counts)


def test_path_weights_are_the_genotype(cell_space):
    genotype = cell_space.sample(random.Random(3))
    weights = path_weights(genotype, torch.device("cpu"))
    for group, edges, _ in genotype.cells():
        expected = {(position // 2 + 2, source, op) for position, (op, source) in enumerate(edges)}
        got = {(*EDGES[e], SEARCH_OPERATIONS[k]) for e, k in weights[group].nonzero().tolist()}
        assert got == expected


def test_a_step_trains_only_the_sampled_path(cell_space, searching, tiny_data):
    strategy = RandomWeightSharing(context(cell_space, searching, tiny_data))
    generator = torch.Generator().manual_seed(0)
    train, val = random_batch(generator, size=32), random_batch(generator, size=32)
    strategy.rng.seed(0)
    path = strategy.search_weights()
    strategy.rng.seed(0)  # the step draws the same path
    before = snapshot(strategy.supernet)
    val_loss, train_loss = strategy.search_step(train, val, lr=0.025)
    changed = {name for name, p in snapshot(strategy.supernet).items() if not torch.equal(before[name], p)}
    on_path = {f"cells.{i}.edges.{e}.ops.{SEARCH_OPERATIONS[k]}."
               for i, cell in enumerate(strategy.supernet.cells) for e, k in path[cell.group].nonzero().tolist()}
    trained_ops = {name for name in changed if ".ops." in name}
    assert trained_ops and all(any(name.startswith(prefix) for prefix in on_path) for name in trained_ops)
    assert not any(name.startswith("alphas.") for name in changed) and strategy.arch_optimizer is None
    assert torch.isfinite(val_loss) and torch.isfinite(train_loss)
    assert strategy.weight_recipe == RANDOM_WS_WEIGHTS and RANDOM_WS_WEIGHTS.grad_clip == 1.0


@pytest.fixture(scope="module")
def searched(cell_space, searching, tiny_data):
    strategy = RandomWeightSharing(context(cell_space, searching, tiny_data, seed=2))
    return strategy, strategy.run()


def test_the_best_finalist_on_all_of_search_validation_is_chosen(cell_space, searched, tiny_data):
    strategy, result = searched
    details = result.details
    assert [r["epoch"] for r in details["supernet_epochs"]] == [1]
    assert [s["index"] for s in details["scores"]] == [0, 1, 2, 3]
    ranked = sorted(details["scores"], key=lambda s: (-s["val_acc"], s["index"]))
    assert [f["index"] for f in details["finalists"]] == [s["index"] for s in ranked[:2]]
    for finalist in details["finalists"]:  # scored with the shared weights on all of search-val, in eval mode
        genotype = cell_space.from_dict(details["scores"][finalist["index"]]["arch"])
        assert finalist["val_acc"] == shared_weight_accuracy(
            strategy.supernet, path_weights(genotype, torch.device("cpu")), tiny_data.search_val)
    best = max(details["finalists"], key=lambda f: (f["val_acc"], -f["index"]))
    assert result.val_acc == best["val_acc"]
    assert cell_space.to_dict(result.arch) == details["scores"][best["index"]]["arch"]
    assert details["score_images"] == len(tiny_data.search_val)  # 10 batches of 8 > the 32 images there


def test_the_method_needs_its_protocol_section(cell_space, searching, tiny_data):
    without = searching.with_section("search.random_ws", None)
    with pytest.raises(ConfigError, match=r"has no \[search.random_ws\] section \(samples, finalists\)"):
        RandomWeightSharing(context(cell_space, without, tiny_data))


# -- through the command line -------------------------------------------------------------

def test_a_smoke_run_searches_final_trains_and_is_stored(tmp_path, data_path, smoke):
    def run():
        return run_cli("run", "--method", "random-ws", "--protocol", "smoke", "--store", tmp_path / "s.sqlite",
                       "--json", "--data", data_path, "--no-progress")

    result = run()
    assert result.code == 0, result.err
    (record,) = result.json_lines()
    (row,) = store_rows(tmp_path / "s.sqlite")
    assert row["status"] == "finished" and row["strategy_class"] == "RS" and row["method"] == "random-ws"
    assert 0 <= row["test_acc"] <= 1 and row["params"] > 0 and row["search_seconds"] > 0
    assert json.loads(row["protocol_json"])["search"]["random_ws"] == {"samples": 3, "finalists": 2}
    details = json.loads(row["details_json"])
    assert len(details["supernet_epochs"]) == smoke.search.supernet.epochs
    assert len(details["scores"]) == 3 and len(details["finalists"]) == 2
    best = max(details["finalists"], key=lambda f: (f["val_acc"], -f["index"]))
    assert row["val_acc"] == best["val_acc"] and record["val_acc"] == best["val_acc"]
    assert json.loads(row["genotype_json"]) == details["scores"][best["index"]]["arch"]
    again = run()
    assert again.code == 0 and again.json_lines()[0]["cached"] is True
