"""ProxylessNAS on the FBNet layer-wise space and on the cell space: the binarised gradient, one
sampled block per layer in a weight step, the sampled pair in an architecture step, the latency
term's gradient through the sampled pairs only and its mul-log form in ms (against the official
formulas by hand), the update schedule, exact resumption under a constraint, and a tighter
target giving a cheaper architecture."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import context, flops_constraint, random_batch, stored, with_supernet

from nasbench.errors import NasbenchError
from nasbench.hardware.constraint import Constraint
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.space import LAYERS_GROUP
from nasbench.strategies.proxylessnas import (
    ARCH_UPDATE_EVERY,
    ProxylessNas,
    binarised_gradient,
)
from nasbench.training import TrainingDiverged

FIXED_MS = 1.0
TARGET_MS = 1.5


class KnownLatency:
    """A latency cost model with known costs (ms): ``FIXED_MS + sum(weights * costs)``, so
    that the official formulas can be evaluated by hand."""

    metric = "latency_ms"

    def __init__(self, layers: int, scale: float = 1.0, fixed: float = FIXED_MS):
        blocks = torch.arange(len(BLOCK_NAMES), dtype=torch.float64)
        self.costs = scale * (0.05 + 0.02 * blocks + 0.01 * torch.arange(layers, dtype=torch.float64)[:, None])
        self.fixed = fixed

    def expected(self, weights):
        w = weights[LAYERS_GROUP]
        return self.fixed + (w * self.costs.to(w.dtype)).sum()


def known_latency(fbnet_space, form: str, weight: float, exponent: float = 1.0, target: float = TARGET_MS, **costs):
    return Constraint("latency_ms", target, weight, KnownLatency(len(fbnet_space.specs), **costs), form, exponent)


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


# -- the latency term (official 'two' mode) -------------------------------------------------

@pytest.mark.parametrize("form, weight, exponent", [("add-linear", 0.1, 1.0), ("mul-log", 0.2, 0.3)])
def test_the_latency_gradient_reaches_only_the_sampled_pairs_as_the_official_formula_gives(
        form, weight, exponent, fbnet_space, fbnet_searching, tiny_data):
    """With the cross-entropy a constant (its gradient zero), alpha's gradient is the latency
    term's alone: zero off the sampled pairs, whose alphas stay as they were, and on each
    pair the derivative of the official loss (nas_manager.py L82-91) through the expected
    latency over the pair-renormalised probabilities q (mix_op.py L179-187,
    super_proxyless.py L221-231): ``factor * q_k (LAT_k - sum_j q_j LAT_j)``, latency in ms."""
    constraint = known_latency(fbnet_space, form, weight, exponent)
    strategy = ProxylessNas(context(fbnet_space, fbnet_searching, tiny_data, constraint=constraint))
    ce = 2.0
    strategy.criterion = lambda logits, labels: torch.tensor(ce)
    alpha = strategy.supernet.alpha
    with torch.no_grad():
        alpha.copy_(torch.randn(alpha.shape, generator=torch.Generator().manual_seed(1)))
    before = alpha.detach().clone()
    pairs = []
    strategy.supernet.register_forward_pre_hook(lambda module, args: pairs.append(args[3][LAYERS_GROUP]))
    strategy.architecture_step(random_batch(torch.Generator().manual_seed(0), size=32))
    pair = torch.tensor(pairs[0])
    sampled = torch.zeros_like(before, dtype=torch.bool).scatter_(1, pair, True)
    assert torch.equal(alpha.detach()[~sampled], before[~sampled])
    assert not alpha.grad[~sampled].any()
    q = before.double().gather(1, pair).softmax(-1)
    lat = constraint.cost_model.costs.gather(1, pair)
    expected = FIXED_MS + (q * lat).sum()
    if form == "add-linear":
        factor = weight / TARGET_MS
    else:
        ratio = torch.log(expected) / math.log(TARGET_MS)
        factor = ce * weight * exponent * ratio ** (exponent - 1) / (expected * math.log(TARGET_MS))
    by_hand = factor * q * (lat - (q * lat).sum(-1, keepdim=True))
    assert torch.allclose(alpha.grad.gather(1, pair).double(), by_hand, rtol=1e-4, atol=1e-10)
    assert (by_hand.abs() > 1e-6).all()


def test_proxylessnas_mul_log_takes_latency_in_ms(fbnet_space, fbnet_searching, tiny_data):
    """``CE * alpha * (log E / log T) ** beta`` with E and T in ms, as the official table
    and its 80 ms target (imagenet_arch_search.py L21-24), not microseconds."""
    constraint = known_latency(fbnet_space, "mul-log", 0.2, 0.3)
    strategy = ProxylessNas(context(fbnet_space, fbnet_searching, tiny_data, constraint=constraint))
    weights = {LAYERS_GROUP: torch.full((len(fbnet_space.specs), len(BLOCK_NAMES)), 1 / len(BLOCK_NAMES),
                                        dtype=torch.float64)}
    expected = constraint.cost_model.expected(weights).item()
    value = strategy.constrained(torch.tensor(2.3, dtype=torch.float64), weights).item()
    assert value == pytest.approx(2.3 * 0.2 * (math.log(expected) / math.log(TARGET_MS)) ** 0.3, rel=1e-12)


def test_proxylessnas_mul_log_refuses_a_target_and_stops_at_a_latency_of_at_most_1_ms(fbnet_space, fbnet_searching,
                                                                                     tiny_data):
    """Its log is not positive there: the official form is undefined (NaN), so it is refused."""
    with pytest.raises(NasbenchError, match="above 1 ms"):
        ProxylessNas(context(fbnet_space, fbnet_searching, tiny_data,
                             constraint=known_latency(fbnet_space, "mul-log", 0.2, 0.3, target=0.9)))
    cheap = known_latency(fbnet_space, "mul-log", 0.2, 0.3, scale=0.01, fixed=0.1)
    strategy = ProxylessNas(context(fbnet_space, fbnet_searching, tiny_data, constraint=cheap))
    with pytest.raises(TrainingDiverged, match="add-linear"):
        strategy.architecture_step(random_batch(torch.Generator().manual_seed(0), size=32))


def test_a_constrained_proxylessnas_search_resumes_exactly(fbnet_space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=4, batch_size=4)  # warm-up 1 epoch, then architecture steps
    constraint = known_latency(fbnet_space, "mul-log", 0.2, 0.3)
    whole = ProxylessNas(context(fbnet_space, protocol, tiny_data, constraint=constraint))
    start = whole.supernet.alpha.detach().clone()
    whole.step()
    whole.step()
    checkpoint = stored(whole.checkpoint())
    whole.step()
    resumed = ProxylessNas(context(fbnet_space, protocol, tiny_data, constraint=constraint))
    resumed.restore(checkpoint)
    resumed.step()
    assert not torch.equal(whole.supernet.alpha, start)
    assert torch.equal(resumed.supernet.alpha, whole.supernet.alpha) and resumed.history == whole.history
    final = whole.checkpoint()
    assert resumed.checkpoint().state == final.state
    assert torch.equal(resumed.tensor_state()["generator"], final.tensors["generator"])
