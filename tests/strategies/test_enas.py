"""ENAS: the learning-rate restarts, the two phases of an epoch, the controller's reward and
the derivation, on the cell space and on ENAS' macro space, and `nasbench run` on both."""
from __future__ import annotations

import copy
import itertools
import json
import math

import pytest
import torch
from helpers import (
    cell_choice_counts,
    context,
    run_cli,
    snapshot,
    store_rows,
    with_supernet,
)
from torch import nn
from torch.nn import functional as F

from nasbench.spaces import get_space
from nasbench.spaces.enas_macro.supernet import MacroSupernet
from nasbench.strategies.controller import ENTROPY_WEIGHT
from nasbench.strategies.enas import Enas, cosine_with_restarts
from nasbench.strategies.macro_controller import MacroController
from nasbench.strategies.supernet_search import Batch


@pytest.fixture(scope="module")
def searching(tiny):
    """Two epochs of four batches of 8 images on a 4-channel, 3-cell supernet."""
    return with_supernet(tiny, epochs=2, channels=4, batch_size=8)


def test_learning_rate_restarts_after_10_then_20_epochs():
    lr = [cosine_with_restarts(0.05, 0.001, epoch, 10, 2) for epoch in range(31)]
    assert lr[0] == lr[10] == lr[30] == 0.05
    assert lr[5] == pytest.approx(0.0255) and lr[20] == pytest.approx(0.0255)
    assert all(a > b for a, b in zip(lr[:9], lr[1:10]))


def first_epoch(strategy: Enas) -> dict:
    """One step (an epoch), checking that it moved some shared weights and every controller
    parameter; its history record."""
    supernet, controller = snapshot(strategy.supernet), snapshot(strategy.controller)
    strategy.step()
    assert any(not torch.equal(v, dict(strategy.supernet.named_parameters())[k]) for k, v in supernet.items())
    assert all(not torch.equal(v, dict(strategy.controller.named_parameters())[k]) for k, v in controller.items())
    return strategy.history[0]


def test_an_epoch_trains_shared_weights_then_the_controller(cell_space, searching, tiny_data):
    strategy = Enas(context(cell_space, searching, tiny_data))
    record = first_epoch(strategy)
    settings = Enas.read_settings(searching)
    assert len(record["rewards"]) == len(record["entropies"]) == settings.controller_steps
    assert all(0 <= r <= 1 + ENTROPY_WEIGHT * sum(math.log(n) for n in cell_choice_counts()) for r in record["rewards"])
    assert record["baseline"] == strategy.policy.baseline != 0
    assert record["lr"] == 0.05 and math.isfinite(record["val_loss"])


@pytest.mark.parametrize("space_name, batch_statistics", [("cell", True), ("enas-macro", False)])
def test_the_reward_scores_as_the_official_code_and_leaves_the_running_statistics(
        space_name, batch_statistics, tiny, searching, tiny_data):
    """The official code scores a micro sample with batch norm on the batch's own statistics
    (training mode, micro_child.py:243-244, 804) and a macro sample on the running ones
    (general_child.py:691). With running statistics no batch has, the two modes predict
    differently; labelled with the expected mode's predictions, the batch scores 1 (the other
    mode's accuracy is below), the loss is that mode's, and no buffer of the supernet moved."""
    strategy = Enas(context(get_space(space_name, tiny), searching, tiny_data))
    supernet = strategy.supernet
    torch.manual_seed(0)
    for norm in (m for m in supernet.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.running_mean.uniform_(-2, 2)
        norm.running_var.uniform_(0.01, 0.1)
    images = next(strategy.validation_batches(torch.Generator().manual_seed(0))).images
    peek = torch.Generator()
    peek.set_state(strategy.controller_generator.get_state())
    with torch.no_grad():
        path = strategy.path(strategy.controller(peek).arch)  # what the update below samples
        expected, other = (copy.deepcopy(supernet).train(mode)(images, path, True)
                           for mode in (batch_statistics, not batch_statistics))
    labels = expected.argmax(1)
    assert (other.argmax(1) == labels).float().mean() < 1
    buffers = {name: b.clone() for name, b in supernet.named_buffers()}
    update = strategy.controller_step(itertools.repeat(Batch(images, labels)), samples=1)
    assert update["reward"] == 1.0 + ENTROPY_WEIGHT * update["entropy"]
    assert update["val_loss"] == pytest.approx(F.cross_entropy(expected, labels).item())
    assert all(torch.equal(b, buffers[name]) for name, b in supernet.named_buffers())
    assert supernet.training and all(m.track_running_stats for m in supernet.modules() if isinstance(m, nn.BatchNorm2d))


def test_the_result_is_the_best_of_the_sampled_architectures(cell_space, searching, tiny_data):
    strategy = Enas(context(cell_space, searching, tiny_data))
    result = strategy.run()
    candidates = result.details["derive_candidates"]
    assert len(candidates) == Enas.read_settings(searching).derive_samples
    best = max(candidates, key=lambda c: c["val_acc"])
    assert result.val_acc == best["val_acc"]
    assert result.arch == cell_space.from_dict(best["arch"])
    assert [e["epoch"] for e in result.details["controller_epochs"]] == [1, 2]
    assert strategy.result() == result  # deterministic: derived from the run's seed


def test_run_stores_enas_as_rl_with_its_reward_curve(smoke_store):
    rows = [row for row in store_rows(smoke_store.path) if row["method"] == "enas"]
    assert len(rows) == 2 and {row["seed"] for row in rows} == {0, 1}
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "RL"
        assert row["test_acc"] is not None and row["params"] > 0
        epochs = json.loads(row["details_json"])["controller_epochs"]
        assert epochs and all(len(e["rewards"]) == 2 for e in epochs)


# -- on ENAS' macro space ------------------------------------------------------------------

@pytest.fixture(scope="module")
def macro_space(tiny):
    return get_space("enas-macro", tiny)


def test_enas_searches_the_macro_space_and_derives_the_best_sample(macro_space, searching, tiny_data):
    strategy = Enas(context(macro_space, searching, tiny_data))
    assert isinstance(strategy.supernet, MacroSupernet) and isinstance(strategy.controller, MacroController)
    record = first_epoch(strategy)
    settings = Enas.read_settings(searching)
    assert len(record["rewards"]) == len(record["skip_shares"]) == settings.controller_steps
    assert all(0 <= r <= 1 + ENTROPY_WEIGHT * (3 * math.log(6) + 3 * math.log(2)) for r in record["rewards"])
    assert all(set(share) == {"skips"} and 0 <= share["skips"] <= 1 for share in record["skip_shares"])
    result = strategy.run()
    candidates = result.details["derive_candidates"]
    assert len(candidates) == settings.derive_samples
    best = max(candidates, key=lambda c: c["val_acc"])
    assert result.val_acc == best["val_acc"] and result.arch == macro_space.from_dict(best["arch"])
    assert strategy.result() == result


def test_run_searches_the_macro_space_and_final_trains(tmp_path, data_path, smoke):
    store = tmp_path / "macro.sqlite"
    result = run_cli("run", "--method", "enas", "--space", "enas-macro", "--protocol", "smoke", "--seeds", "0",
                     "--store", store, "--json", "--data", data_path, "--no-progress")
    assert result.code == 0, result.err
    (row,) = store_rows(store)
    assert row["status"] == "finished" and row["space"] == "enas-macro" and row["variant"] == "space=enas-macro"
    assert row["test_acc"] is not None and row["params"] > 0
    arch = get_space("enas-macro", smoke).from_dict(json.loads(row["genotype_json"]))
    details = json.loads(row["details_json"])
    assert arch.to_dict() in [c["arch"] for c in details["derive_candidates"]]
    assert [len(e["rewards"]) for e in details["controller_epochs"]] == [Enas.read_settings(smoke).controller_steps]
