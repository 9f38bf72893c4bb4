"""ProxylessNAS on the FBNet layer-wise space and on the cell space: the binarised gradient, one
sampled block per layer in a weight step, the sampled pair in an architecture step, the update
schedule, and a tighter target giving a cheaper architecture."""
from __future__ import annotations

import pytest
import torch
from helpers import context, flops_constraint, random_batch, with_supernet

from nasbench.spaces.fbnet.space import LAYERS_GROUP
from nasbench.strategies.proxylessnas import (
    ARCH_UPDATE_EVERY,
    ProxylessNas,
    binarised_gradient,
)


@pytest.fixture(scope="module")
def cell_searching(tiny):
    return with_supernet(tiny, epochs=2, channels=2, batch_size=8)


def test_binarised_gradient_is_the_papers_formula():
    gates = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    probs = torch.tensor([[0.25, 0.75], [0.6, 0.4]])
    expected = torch.tensor([[sum(gates[r, j] * probs[r, j] * (float(i == j) - probs[r, i]) for j in range(2))
                              for i in range(2)] for r in range(2)])
    assert torch.allclose(binarised_gradient(gates, probs), expected)


def test_a_proxylessnas_weight_step_runs_one_block_per_layer(fbnet_space, fbnet_searching, tiny_data):
    strategy = ProxylessNas(context(fbnet_space, fbnet_searching, tiny_data))
    gates = strategy.search_weights()[LAYERS_GROUP]
    assert torch.equal(gates.sum(-1), torch.ones(len(fbnet_space.specs))) and set(gates.unique().tolist()) == {0.0, 1.0}
    calls = []
    for layer in strategy.supernet.layers:
        for block in layer:
            block.register_forward_hook(lambda *_: calls.append(1))
    strategy.weight_step(random_batch(torch.Generator().manual_seed(0), size=32))
    assert len(calls) == len(fbnet_space.specs)


def test_a_proxylessnas_architecture_step_leaves_unsampled_probabilities_unchanged(fbnet_space, fbnet_searching, tiny_data):
    strategy = ProxylessNas(context(fbnet_space, fbnet_searching, tiny_data))
    before = strategy.supernet.alpha.detach().softmax(-1).clone()
    strategy.architecture_step(random_batch(torch.Generator().manual_seed(0), size=32))
    after = strategy.supernet.alpha.detach().softmax(-1)
    changed = (after - before).abs() > 1e-7
    assert changed.any()
    assert (changed.sum(-1) <= 2).all()  # only the sampled pair of each layer moves
    assert torch.allclose(after.sum(-1), torch.ones(len(fbnet_space.specs)))


def test_proxylessnas_updates_the_architecture_every_fifth_weight_step_after_warm_up(fbnet_space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=4, batch_size=4)  # 8 batches per epoch, warm-up 1 epoch
    strategy = ProxylessNas(context(fbnet_space, protocol, tiny_data))
    alpha = strategy.supernet.alpha.detach().clone()
    strategy.step()
    assert torch.equal(strategy.supernet.alpha, alpha) and strategy.weight_steps == 8
    steps = []
    original = strategy.architecture_step
    strategy.architecture_step = lambda batch: steps.append(strategy.weight_steps) or original(batch)
    strategy.step()
    assert steps == [s for s in range(8, 16) if s % ARCH_UPDATE_EVERY == 0]


def test_an_epoch_without_an_architecture_step_records_no_validation_loss(fbnet_space, tiny, tiny_data):
    """One weight step an epoch: only the first epoch's step is a 5th, so the second epoch
    scores no validation batch; that is no loss (None), not a diverged search (0 / 0)."""
    protocol = with_supernet(tiny, epochs=2, batch_size=32)
    strategy = ProxylessNas(context(fbnet_space, protocol, tiny_data))
    strategy.run()
    assert [record["val_loss"] is None for record in strategy.history] == [False, True]


@pytest.mark.slow
def test_a_tighter_target_gives_proxylessnas_a_cheaper_architecture(fbnet_space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=10, batch_size=2)  # 16 batches an epoch: 26 architecture steps
    costs = {}
    for target in (1e12, 1e5):
        constraint = flops_constraint(fbnet_space, protocol, target, weight=50.0, form="add-linear")
        result = ProxylessNas(context(fbnet_space, protocol, tiny_data, constraint=constraint)).run()
        costs[target] = constraint.cost_model.cost(result.arch)
    assert costs[1e5] < costs[1e12]


def test_proxylessnas_on_cells_moves_only_each_edges_sampled_pair(cell_space, cell_searching, tiny_data):
    strategy = ProxylessNas(context(cell_space, cell_searching, tiny_data))
    before = {g: a.detach().softmax(-1).clone() for g, a in strategy.supernet.alphas.items()}
    calls = []
    for cell in strategy.supernet.cells:
        for edge in cell.edges:
            for op in edge.ops.values():
                op.register_forward_hook(lambda *_: calls.append(1))
    strategy.architecture_step(random_batch(torch.Generator().manual_seed(0), size=32))
    assert 0 < len(calls) <= 2 * 14 * len(strategy.supernet.cells)  # at most the pair of every edge runs
    for group, alpha in strategy.supernet.alphas.items():
        changed = (alpha.detach().softmax(-1) - before[group]).abs() > 1e-7
        assert changed.any() and (changed.sum(-1) <= 2).all()
