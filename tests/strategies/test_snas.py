"""SNAS: the Gumbel-softmax samples and their temperature, the single-level step, drop path
in the search network, a tight resource constraint (the paper's per-edge term, the hinge)
deriving a cheaper architecture, and `nasbench run` on the smoke protocol."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import (
    context,
    flops_constraint,
    random_batch,
    snapshot,
    store_rows,
    with_supernet,
)

from nasbench.hardware.constraint import Constraint
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.supernet import DropPath
from nasbench.strategies.snas import (
    SEARCH_DROP_PATH,
    TEMPERATURE_MIN,
    TEMPERATURE_START,
    Snas,
)


@pytest.fixture(scope="module")
def searching(tiny):
    """Four epochs of four batches of 8 images on a 2-channel supernet."""
    return with_supernet(tiny, epochs=4, channels=2, batch_size=8)


def test_temperature_falls_linearly_to_its_minimum(cell_space, searching, tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    temperatures = []
    for epoch in range(4):
        strategy.epochs_done = epoch
        temperatures.append(strategy.temperature())
    step = (TEMPERATURE_START - TEMPERATURE_MIN) / 4
    assert temperatures == pytest.approx([TEMPERATURE_START - step * (e + 1) for e in range(4)])
    assert temperatures[-1] == pytest.approx(TEMPERATURE_MIN)


def test_samples_at_low_temperature_average_to_the_softmax(cell_space, searching, tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    strategy.epochs_done = 3  # the last epoch: temperature 0.03, samples close to one-hot
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5, 2.0, -2.0, 0.0, 1.5])
    with torch.no_grad():
        for alpha in strategy.supernet.alphas.values():
            alpha.copy_(logits.expand_as(alpha))
        samples = torch.cat([torch.cat(list(strategy.search_weights().values())) for _ in range(300)])
    assert samples.shape == (300 * 28, 8)
    assert torch.allclose(samples.sum(-1), torch.ones(len(samples)))
    assert torch.allclose(samples.mean(0), logits.softmax(-1), atol=0.015)
    assert not torch.allclose(samples[0], samples[1])  # fresh noise per edge


def test_one_step_trains_weights_and_architecture_on_the_training_batch(cell_space, searching, tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    generator = torch.Generator().manual_seed(0)
    train, val = random_batch(generator), random_batch(generator)
    before = snapshot(strategy.supernet)
    val_loss, train_loss = strategy.search_step(train, val, lr=0.025)
    after = snapshot(strategy.supernet)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert {"alphas.normal", "alphas.reduce"} <= changed and len(changed) > 2
    assert torch.isfinite(val_loss) and torch.isfinite(train_loss)


def test_the_search_network_drops_every_edge_from_the_searchs_generator_in_training_only(cell_space, searching,
                                                                                        tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    supernet, drop = strategy.supernet, strategy.supernet.drop
    assert drop.prob == SEARCH_DROP_PATH == 0.3 and drop.generator is strategy.generator
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    weights = {g: w.detach() for g, w in strategy.edge_weights().items()}
    with torch.no_grad():
        supernet.eval()
        assert torch.equal(supernet(images, weights), supernet(images, weights))
        supernet.train()
        state = strategy.generator.get_state()
        first = supernet(images, weights)
        assert not torch.equal(strategy.generator.get_state(), state)  # the masks came from the search's generator
        strategy.generator.set_state(state)
        assert torch.equal(supernet(images, weights), first) and not torch.equal(supernet(images, weights), first)


def test_drop_path_zeroes_whole_samples_and_rescales_the_rest():
    drop = DropPath(0.3, torch.Generator().manual_seed(1))
    out = drop(torch.ones(4000, 2, 3, 3))
    kept = out.flatten(1).amax(-1) > 0
    assert torch.all((out[kept] == 1 / 0.7)) and torch.all(out[~kept] == 0)
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.03)


@pytest.mark.slow
def test_a_tight_constraint_derives_a_cheaper_architecture(cell_space, searching, tiny_data):
    """SNAS' own per-edge term, searched for real (the hinge form's loss is pinned by hand in
    tests/hardware/test_constraint.py)."""
    def derived(constraint: Constraint | None) -> Genotype:
        return Snas(context(cell_space, searching, tiny_data, seed=3, constraint=constraint)).run().arch

    tight = flops_constraint(cell_space, searching, None, 1.0, "per-edge-log")
    free, constrained = derived(None), derived(tight)
    assert tight.cost_model.cost(constrained) < tight.cost_model.cost(free)


# -- through the command line -------------------------------------------------------------

def test_smoke_runs_snas(smoke_store):
    rows = [r for r in store_rows(smoke_store.path) if r["method"] == "snas"]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "GO" and row["variant"] == ""
        (epoch,) = json.loads(row["details_json"])["epochs"]
        assert json.loads(row["genotype_json"]) == epoch["genotype"]
        assert epoch["temperature"] == pytest.approx(TEMPERATURE_MIN)
