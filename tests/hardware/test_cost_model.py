"""The cost model: the expected (differentiable) cost under one-hot weights against the exact
cost, its gradient, and its refusals (a missing group, an unknown metric)."""
from __future__ import annotations

import math
import random

import pytest
import torch

from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel


def test_expected_cost_with_one_hot_weights_equals_the_exact_cost(cell_space, cell_counts):
    rng = random.Random(3)
    for metric in ("params", "flops", "mac_bytes"):
        model = CostModel(cell_counts, cell_space, metric)
        for _ in range(5):
            genotype = cell_space.sample(rng)
            expected = model.expected(cell_space.arch_weights(genotype))
            assert expected.item() == pytest.approx(model.cost(genotype), rel=1e-12)


def test_expected_cost_is_differentiable_and_passes_gradcheck(cell_space, cell_counts):
    model = CostModel(cell_counts, cell_space, "flops")
    torch.manual_seed(0)
    alphas = {g: torch.randn(14, 8, dtype=torch.float64, requires_grad=True) for g in ("normal", "reduce")}

    def cost(normal, reduce):
        return model.expected({"normal": normal.softmax(-1), "reduce": reduce.softmax(-1)})

    assert torch.autograd.gradcheck(cost, (alphas["normal"], alphas["reduce"]))
    cost(alphas["normal"], alphas["reduce"]).backward()
    sep5, pool = 5, 1  # SEARCH_OPERATIONS order: none, max_pool, avg_pool, skip, sep3, sep5, dil3, dil5
    weights = alphas["normal"].softmax(-1).detach()
    # raising sep_conv_5x5's logit costs FLOPs, raising max pooling's saves them
    assert (alphas["normal"].grad[:, sep5] > 0).all()
    assert (alphas["normal"].grad[:, pool] < 0).all()
    assert weights.sum().item() == pytest.approx(14)


def test_expected_cost_needs_every_group(cell_space, cell_counts):
    with pytest.raises(NasbenchError, match="reduce"):
        CostModel(cell_counts, cell_space, "flops").expected({"normal": torch.zeros(14, 8)})


def test_unknown_metric_is_refused(cell_space, cell_counts):
    with pytest.raises(NasbenchError, match="unknown cost metric 'energy'"):
        CostModel(cell_counts, cell_space, "energy")


# -- the edges a derived cell keeps, and SNAS' per-edge term --------------------------------

def by_hand(model, weights, scale=1.0, log=True):
    """SNAS' per-edge log term (``log=True``) or the expected cost's choice part, from the
    layout one edge at a time: an edge's share of its node is k * m_e / sum(m) (k = 2 inputs
    kept, m its mass without ``none``), its cost the weights without ``none`` over m_e."""
    layout = model.space.cost_layout(model.config)
    total = 0.0
    for group, positions in layout.choices.items():
        w = weights[group]
        ops = [o for o in range(w.shape[1]) if o != layout.free_op]
        per_position = []
        for cell in positions:
            cell_total = 0.0
            for node in layout.nodes:
                mass = {e: sum(w[e, o] for o in ops) for e in node}
                for e in node:
                    share = min(2, len(node)) * mass[e] / sum(mass.values())
                    cost = sum(w[e, o] * model.part_cost(cell[e][o]) for o in ops)
                    cell_total = cell_total + (share * torch.log(torch.clamp(cost / mass[e] * scale, min=1.0))
                                               if log else share * cost / mass[e])
            per_position.append(cell_total)
        total = total + (sum(per_position) / len(per_position) if log else sum(per_position))
    return total


def random_weights(seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {g: torch.randn(14, 8, generator=generator, dtype=torch.float64).softmax(-1).requires_grad_()
            for g in ("normal", "reduce")}


@pytest.mark.parametrize("metric", ["params", "flops", "mac_elements"])
def test_snas_per_edge_log_term_and_its_gradient_equal_the_hand_computed_ones(cell_space, cell_counts, metric):
    model = CostModel(cell_counts, cell_space, metric)
    weights = random_weights(1)
    ours, hand = model.per_edge_log(weights), by_hand(model, weights)
    assert ours.item() == pytest.approx(hand.item(), rel=1e-12) and ours.item() > 0
    for group in weights:
        (grad,) = torch.autograd.grad(ours, weights[group], retain_graph=True)
        (hand_grad,) = torch.autograd.grad(hand, weights[group], retain_graph=True)
        assert torch.allclose(grad, hand_grad, rtol=1e-9, atol=1e-15)
        assert (grad[:, 1:].abs().sum(-1) > 0).all()  # a pull on every edge, not on the network's total alone


def test_expected_cost_counts_the_derived_networks_edges_so_none_is_no_way_out(cell_space, cell_counts):
    model = CostModel(cell_counts, cell_space, "flops")
    weights = random_weights(2)
    fixed_and_offset = model.expected({g: torch.zeros(14, 8, dtype=torch.float64) for g in weights}).item()
    assert model.expected(weights).item() == pytest.approx(fixed_and_offset + by_hand(model, weights, log=False).item())
    mostly_none = {g: torch.cat([torch.full((14, 1), 0.99, dtype=torch.float64), w.detach()[:, 1:] * 0.01 /
                                 w.detach()[:, 1:].sum(-1, keepdim=True)], dim=1) for g, w in weights.items()}
    without_none = {g: w.detach()[:, 1:] / w.detach()[:, 1:].sum(-1, keepdim=True) for g, w in weights.items()}
    without_none = {g: torch.cat([torch.zeros(14, 1, dtype=torch.float64), w], dim=1) for g, w in without_none.items()}
    # a none-heavy supernet costs what its derived network would, not the fixed parts alone
    assert model.expected(mostly_none).item() == pytest.approx(model.expected(without_none).item(), rel=1e-12)
    assert model.expected(mostly_none).item() > 1.5 * fixed_and_offset


def test_snas_term_on_a_derived_genotype_is_the_sum_of_its_edges_logs(cell_space, cell_counts):
    model = CostModel(cell_counts, cell_space, "params")
    genotype = cell_space.sample(random.Random(5))
    layout = cell_space.cost_layout(model.config)
    edges = {group: [(op, source) for op, source in cell] for group, cell, _ in genotype.cells()}
    from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS
    from nasbench.spaces.cell.supernet import EDGES
    expected = 0.0
    for group, positions in layout.choices.items():
        logs = [sum(math.log(max(1.0, model.part_cost(cell[EDGES.index((2 + i // 2, source))][SEARCH_OPERATIONS.index(op)])))
                    for i, (op, source) in enumerate(edges[group])) for cell in positions]
        expected += sum(logs) / len(logs)
    assert model.per_edge_log(cell_space.arch_weights(genotype)).item() == pytest.approx(expected, rel=1e-12)
