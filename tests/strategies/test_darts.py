"""DARTS, first and second order: the bilevel steps, the second-order gradient against finite
differences, the search's records, `nasbench run` on the smoke protocol, and an interrupted
run resuming to the same result."""
from __future__ import annotations

import json
import math
import sqlite3

import pytest
import torch
from helpers import context, random_batch, run_cli, snapshot, store_rows, with_supernet

from nasbench.errors import NasbenchError
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.supernet import derive_genotype
from nasbench.store import tensors_from_bytes, tensors_to_bytes
from nasbench.strategies.darts import DARTS_WEIGHTS, Darts, DartsSecondOrder
from nasbench.strategies.supernet_search import Batch
from nasbench.types import Checkpoint

# -- the steps -------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [Darts, DartsSecondOrder])
def test_each_update_moves_only_its_own_parameters(cls, cell_space, tiny, tiny_data):
    strategy = cls(context(cell_space, with_supernet(tiny, channels=2), tiny_data))
    generator = torch.Generator().manual_seed(0)
    train, val = random_batch(generator), random_batch(generator)
    before = snapshot(strategy.supernet)
    strategy.architecture_step(train, val, lr=0.025)
    after_arch = snapshot(strategy.supernet)
    changed = {name for name in before if not torch.equal(before[name], after_arch[name])}
    assert changed == {"alphas.normal", "alphas.reduce"}
    strategy.weight_step(train)
    after_weights = snapshot(strategy.supernet)
    changed = {name for name in before if not torch.equal(after_arch[name], after_weights[name])}
    assert changed and changed.isdisjoint({"alphas.normal", "alphas.reduce"})


def test_first_order_gradient_is_the_validation_loss_gradient(cell_space, tiny, tiny_data):
    strategy = Darts(context(cell_space, with_supernet(tiny, channels=2), tiny_data))
    generator = torch.Generator().manual_seed(1)
    train, val = random_batch(generator), random_batch(generator)
    loss, grads = strategy.architecture_gradients(train, val, lr=0.025)
    alphas = strategy.supernet.arch_parameters()
    logits = strategy.supernet(val.images, {g: a.softmax(-1) for g, a in zip(("normal", "reduce"), alphas)})
    expected = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, val.labels), alphas)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, val.labels).item())
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, rtol=1e-5, atol=1e-9)


@pytest.fixture(scope="module")
def second_order(cell_space, tiny, tiny_data):
    """A tiny second-order search in float64, one weight step in (so SGD has momentum)."""
    strategy = DartsSecondOrder(context(cell_space, with_supernet(tiny, channels=2), tiny_data))
    strategy.supernet.double()
    generator = torch.Generator().manual_seed(2)
    strategy.weight_step(random_batch(generator, dtype=torch.float64))
    assert all(strategy.weight_optimizer.state[p]["momentum_buffer"] is not None
               for p in strategy.supernet.weight_parameters())
    return strategy, random_batch(generator, dtype=torch.float64), random_batch(generator, dtype=torch.float64)


def test_the_unrolled_weights_are_the_optimisers_next_step(second_order):
    """w' is exactly where SGD (momentum, weight decay, no clipping) would take the weights."""
    strategy, train, _ = second_order
    lr = 0.1
    unrolled = strategy.unrolled_weights(train, lr)
    saved = copy_state(strategy)
    try:
        for group in strategy.weight_optimizer.param_groups:
            group["lr"] = lr
        strategy.weight_optimizer.zero_grad()
        strategy.loss(train, {g: w.detach() for g, w in strategy.edge_weights().items()}).backward()
        strategy.weight_optimizer.step()
        for name, w in strategy.supernet.named_weight_parameters().items():
            assert torch.allclose(unrolled[name], w, rtol=1e-12, atol=1e-14), name
    finally:
        strategy.load_tensor_state(saved)


def copy_state(strategy):
    return tensors_from_bytes(tensors_to_bytes(strategy.tensor_state()))


def unrolled_validation_loss(strategy: DartsSecondOrder, train: Batch, val: Batch, lr: float) -> torch.Tensor:
    """L_val(w - lr * (momentum * buffer + grad_w L_train(w, alpha) + weight_decay * w), alpha):
    the objective whose gradient in alpha second-order DARTS approximates."""
    named = strategy.supernet.named_weight_parameters()
    grads = torch.autograd.grad(strategy.loss(train, strategy.edge_weights()), list(named.values()))
    unrolled = {}
    for (name, w), g in zip(named.items(), grads):
        buffer = strategy.weight_optimizer.state[w]["momentum_buffer"]
        unrolled[name] = w.detach() - lr * (DARTS_WEIGHTS.momentum * buffer + g + DARTS_WEIGHTS.weight_decay * w.detach())
    return strategy.loss(val, strategy.edge_weights(), unrolled)


@pytest.mark.slow
def test_second_order_gradient_matches_finite_differences(second_order, monkeypatch):
    """The gradient of the unrolled objective, checked along random directions. DARTS'
    difference step (weights moved by 0.01) crosses ReLU and max-pool kinks in a network
    this small, so the check takes a small one; the formula is what is under test."""
    strategy, train, val = second_order
    assert DartsSecondOrder.hvp_radius == 0.01
    monkeypatch.setattr(strategy, "hvp_radius", 1e-5)
    lr = 1.0  # a large xi makes the implicit (Hessian) term large enough to tell apart
    saved = copy_state(strategy)
    loss, grads = strategy.architecture_gradients(train, val, lr)
    alphas = strategy.supernet.arch_parameters()
    assert loss.item() == pytest.approx(unrolled_validation_loss(strategy, train, val, lr).item(), rel=1e-12)
    unrolled = strategy.unrolled_weights(train, lr)
    direct = torch.autograd.grad(strategy.loss(val, strategy.edge_weights(), unrolled), alphas)  # no implicit term

    generator = torch.Generator().manual_seed(3)
    h = 1e-6  # larger steps cross kinks here too
    for _ in range(3):
        direction = [torch.randn(a.shape, generator=generator, dtype=torch.float64) for a in alphas]
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                for a, d in zip(alphas, direction):
                    a.add_(sign * h * d)
            values.append(unrolled_validation_loss(strategy, train, val, lr).item())
            strategy.load_tensor_state(saved)
        numeric = (values[0] - values[1]) / (2 * h)
        second = sum((g * d).sum() for g, d in zip(grads, direction)).item()
        without_implicit = sum((g * d).sum() for g, d in zip(direct, direction)).item()
        error = abs(second - numeric)
        assert error <= 1e-6 * abs(numeric) + 1e-9, (second, numeric)
        assert error <= 1e-3 * abs(without_implicit - numeric), (second, without_implicit, numeric)


# -- a search ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_epochs(tiny):
    return with_supernet(tiny, epochs=2, channels=2)


@pytest.fixture(scope="module")
def searched(cell_space, two_epochs, tiny_data):
    """A complete two-epoch first-order search on the tiny protocol, with its checkpoints."""
    checkpoints = []
    strategy = Darts(context(cell_space, two_epochs, tiny_data, seed=4, on_checkpoint=checkpoints.append))
    result = strategy.run()
    return strategy, result, checkpoints


@pytest.mark.slow
def test_search_records_every_epoch(searched):
    strategy, result, checkpoints = searched
    assert strategy.finished() and strategy.steps_done() == 2
    history = result.details["epochs"]
    assert result.details["operations"] == list(SEARCH_OPERATIONS)
    assert [record["epoch"] for record in history] == [1, 2]
    assert history[0]["lr"] == DARTS_WEIGHTS.lr
    assert history[1]["lr"] == pytest.approx((DARTS_WEIGHTS.lr + DARTS_WEIGHTS.lr_min) / 2)
    for record in history:
        for group in ("normal", "reduce"):
            rows = record["weights"][group]
            assert len(rows) == 14 and all(len(row) == 8 and math.isclose(sum(row), 1, rel_tol=1e-5) for row in rows)
        genotype = Genotype.from_dict(record["genotype"])
        for group, edges in (("normal", genotype.normal), ("reduce", genotype.reduce)):
            assert record["skip_share"][group] == sum(op == "skip_connect" for op, _ in edges) / 8
        assert math.isfinite(record["train_loss"]) and math.isfinite(record["val_loss"])
        assert 0 <= record["supernet_val_acc"] <= 1
    assert history[0]["weights"] != history[1]["weights"]
    final = {g: a.softmax(-1) for g, a in strategy.supernet.alphas.items()}
    assert result.arch == derive_genotype(final) == Genotype.from_dict(history[-1]["genotype"])
    assert result.val_acc is None  # the supernet's accuracy did not choose the architecture
    assert [c.state["fields"]["epochs_done"] for c in checkpoints] == [1, 2]
    assert all(set(c.tensors) == {"supernet", "weight_optimizer", "arch_optimizer", "generator"}
               for c in checkpoints)


def test_a_checkpoint_without_its_tensors_is_refused(cell_space, two_epochs, tiny_data):
    strategy = Darts(context(cell_space, two_epochs, tiny_data, seed=4))
    with pytest.raises(NasbenchError, match="darts: the checkpoint to resume from has no tensors"):
        strategy.restore(Checkpoint(json.loads(json.dumps(strategy.state_dict()))))


@pytest.mark.slow
def test_seeds_give_different_searches(cell_space, two_epochs, tiny_data, searched):
    other = Darts(context(cell_space, with_supernet(two_epochs, epochs=1), tiny_data, seed=5))
    other.run()
    assert not torch.equal(other.supernet.alphas["normal"], searched[0].supernet.alphas["normal"])


# -- through the command line -------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_darts(smoke_store):
    return [r for r in store_rows(smoke_store.path) if r["method"] in ("darts", "darts-2nd")]


def test_smoke_runs_search_derive_final_train_and_store(smoke_darts, smoke, smoke_store):
    assert sorted((r["method"], r["seed"]) for r in smoke_darts) == [
        ("darts", 0), ("darts", 1), ("darts-2nd", 0), ("darts-2nd", 1)]
    for row in smoke_darts:
        assert row["status"] == "finished" and row["strategy_class"] == "GO" and row["error"] is None
        assert row["state_json"] is None and row["val_acc"] is None
        assert 0 <= row["test_acc"] <= 1 and row["params"] > 0 and row["search_seconds"] > 0
        details = json.loads(row["details_json"])
        (epoch,) = details["epochs"]  # the smoke protocol searches one epoch
        assert json.loads(row["genotype_json"]) == epoch["genotype"]
        assert len(epoch["weights"]["normal"]) == 14 and set(epoch["skip_share"]) == {"normal", "reduce"}
    records = [r for r in smoke_store.result.json_lines() if r["method"].startswith("darts")]
    assert all(r["strategy"] == "GO" and r["details"]["epochs"][0]["epoch"] == 1 for r in records)
    with sqlite3.connect(smoke_store.path) as conn:  # finished runs keep no checkpoint tensors
        assert conn.execute("SELECT COUNT(*) FROM checkpoint_tensors").fetchone() == (0,)


def test_the_two_orders_search_differently(smoke_darts):
    by_method = {(r["method"], r["seed"]): json.loads(r["details_json"])["epochs"][0]["weights"] for r in smoke_darts}
    assert by_method[("darts", 0)] != by_method[("darts-2nd", 0)]
    assert by_method[("darts", 0)] != by_method[("darts", 1)]


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch, data_path, two_epoch_protocol):
    def run(store):
        return run_cli("run", "--method", "darts", "--protocol", two_epoch_protocol, "--store", store, "--json",
                       "--data", data_path, "--no-progress")

    assert run(tmp_path / "whole.sqlite").code == 0
    (whole,) = store_rows(tmp_path / "whole.sqlite")

    real_step = Darts.step
    epochs = []

    def crash_in_second_epoch(self):
        epochs.append(self.epochs_done)
        if self.epochs_done == 1:
            raise KeyboardInterrupt
        real_step(self)

    store = tmp_path / "resumed.sqlite"
    monkeypatch.setattr(Darts, "step", crash_in_second_epoch)
    assert run(store).code == 130
    (stopped,) = store_rows(store)
    assert stopped["status"] == "interrupted" and json.loads(stopped["state_json"])["fields"]["epochs_done"] == 1
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT run_id FROM checkpoint_tensors").fetchall() == [(stopped["id"],)]

    epochs.clear()
    monkeypatch.setattr(Darts, "step", lambda self: epochs.append(self.epochs_done) or real_step(self))
    assert run(store).code == 0
    assert epochs == [1]  # the first epoch is not searched again
    (resumed,) = store_rows(store)
    assert resumed["id"] == stopped["id"] and resumed["status"] == "finished"
    for field in ("genotype_json", "details_json", "test_acc", "params", "flops"):
        assert resumed[field] == whole[field], field
