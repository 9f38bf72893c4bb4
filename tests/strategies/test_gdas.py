"""GDAS: the straight-through Gumbel-max samples (one-hot forward, Gumbel-softmax backward),
only the sampled operations running, the temperature schedule, the bilevel step, and
`nasbench run` on the smoke protocol."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from helpers import context, random_batch, snapshot, store_rows, with_supernet

from nasbench.spaces.cell.ops import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import NONE
from nasbench.strategies.gdas import (
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    Gdas,
    straight_through_gumbel,
)
from nasbench.strategies.snas import gumbel_noise


@pytest.fixture(scope="module")
def searching(tiny):
    """Four epochs of four batches of 8 images on a 4-channel, 3-cell supernet."""
    return with_supernet(tiny, epochs=4, channels=4, batch_size=8)


def test_samples_are_one_hot_forward_and_gumbel_softmax_backward():
    """The sample's value is the one-hot argmax of alpha + G; its gradient is exactly that of
    softmax((alpha + G) / t), checked against the softmax Jacobian written out."""
    alpha = torch.randn(14, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_()
    t = 0.7
    sample = straight_through_gumbel(alpha, t, torch.Generator().manual_seed(1))
    noise = gumbel_noise(alpha, torch.Generator().manual_seed(1))  # the same draw

    chosen = (alpha + noise).argmax(dim=-1)
    assert torch.equal(sample.detach(), torch.nn.functional.one_hot(chosen, 8).double())  # exactly 0 and 1

    upstream = torch.randn(14, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (grad,) = torch.autograd.grad((sample * upstream).sum(), alpha)
    soft = ((alpha + noise) / t).softmax(dim=-1).detach()
    expected = soft * (upstream - (soft * upstream).sum(dim=-1, keepdim=True)) / t  # d/d alpha of <upstream, soft>
    assert torch.allclose(grad, expected, rtol=1e-12, atol=1e-15)
    assert torch.count_nonzero(grad) == grad.numel()  # every operation's alpha learns, not just the sampled one's


def test_hard_samples_follow_softmax_alpha_at_any_temperature():
    """Gumbel-max draws operation k with probability softmax(alpha)_k; the temperature only
    shapes the gradient."""
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5, 2.0, -2.0, 0.0, 1.5])
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = torch.cat([straight_through_gumbel(logits.expand(14, 8), TEMPERATURE_MAX, generator)
                           for _ in range(300)])
    assert torch.allclose(draws.mean(0), logits.softmax(-1), atol=0.015)


def test_temperature_falls_linearly_from_10_to_0_1(cell_space, searching, tiny_data):
    strategy = Gdas(context(cell_space, searching, tiny_data))
    temperatures = []
    for epoch in range(4):
        strategy.epochs_done = epoch
        temperatures.append(strategy.temperature())
    assert temperatures[0] == TEMPERATURE_MAX == 10 and temperatures[-1] == TEMPERATURE_MIN == 0.1
    assert temperatures == pytest.approx([10 - 9.9 * e / 3 for e in range(4)])
    single = Gdas(context(cell_space, with_supernet(searching, epochs=1), tiny_data))
    assert single.temperature() == TEMPERATURE_MIN


def test_a_search_step_runs_only_the_sampled_operations(cell_space, searching, tiny_data, monkeypatch):
    """Every operation that runs in the architecture and the weight step is the sampled one of
    its edge (never `none`, which is no computation), once per sample."""
    strategy = Gdas(context(cell_space, searching, tiny_data))
    samples = []
    draw = strategy.search_weights

    def recorded_draw():
        samples.append(draw())
        return samples[-1]

    monkeypatch.setattr(strategy, "search_weights", recorded_draw)
    calls = Counter()
    for i, cell in enumerate(strategy.supernet.cells):
        for e, edge in enumerate(cell.edges):
            for name, op in edge.ops.items():
                op.register_forward_hook(lambda m, inputs, out, key=(i, e, name): calls.update([key]))
    generator = torch.Generator().manual_seed(0)
    strategy.search_step(random_batch(generator), random_batch(generator), lr=0.025)

    assert len(samples) == 2  # one for the architecture step, a fresh one for the weight step
    expected = Counter()
    for sample in samples:
        for i, cell in enumerate(strategy.supernet.cells):
            rows = sample[cell.group].detach()
            assert torch.equal(rows.sum(-1), torch.ones(14)) and set(rows.unique().tolist()) == {0.0, 1.0}
            expected.update((i, e, SEARCH_OPERATIONS[k]) for e, k in enumerate(rows.argmax(-1).tolist()) if k != NONE)
    assert calls == expected and sum(calls.values()) > 0


def test_the_architecture_step_moves_only_the_alphas(cell_space, searching, tiny_data):
    strategy = Gdas(context(cell_space, searching, tiny_data))
    generator = torch.Generator().manual_seed(1)
    train, val = random_batch(generator), random_batch(generator)
    before = snapshot(strategy.supernet)
    strategy.architecture_step(train, val, lr=0.025)
    after = snapshot(strategy.supernet)
    assert {name for name in before if not torch.equal(before[name], after[name])} == {"alphas.normal", "alphas.reduce"}
    strategy.weight_step(train)
    stepped = snapshot(strategy.supernet)
    moved = {name for name in after if not torch.equal(after[name], stepped[name])}
    assert moved and moved.isdisjoint({"alphas.normal", "alphas.reduce"})
    assert strategy.weight_optimizer.defaults["nesterov"]  # the official code's SGD


# -- through the command line -------------------------------------------------------------

def test_smoke_runs_gdas(smoke_store):
    rows = [r for r in store_rows(smoke_store.path) if r["method"] == "gdas"]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "GO" and row["variant"] == ""
        assert 0 <= row["test_acc"] <= 1 and row["params"] > 0 and row["search_seconds"] > 0
        (epoch,) = json.loads(row["details_json"])["epochs"]
        assert json.loads(row["genotype_json"]) == epoch["genotype"]
        assert epoch["temperature"] == TEMPERATURE_MIN
        assert all(sum(r) == pytest.approx(1, rel=1e-5) for r in epoch["weights"]["normal"])
