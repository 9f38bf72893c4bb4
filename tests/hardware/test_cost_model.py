"""The cost model: the expected (differentiable) cost under one-hot weights against the exact
cost, its gradient, and its refusals (a missing group, an unknown metric)."""
from __future__ import annotations

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
