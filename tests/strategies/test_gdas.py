"""GDAS: the straight-through Gumbel-max samples (one-hot forward, Gumbel-softmax backward),
only the sampled operations running, the temperature schedule, the bilevel step, GDAS' own
search network and derivation (two operations may read one input), and `nasbench run` on
the smoke protocol."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from helpers import context, random_batch, snapshot, store_rows, with_supernet

from nasbench.spaces.cell.costs import genotype_parts, genotype_weights
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.network import EvalNetwork
from nasbench.spaces.cell.supernet import (
    GROUPS,
    NONE,
    POOLINGS,
    derive_genotype,
    path_weights,
)
from nasbench.strategies.gdas import (
    TEMPERATURE_MAX,
    TEMPERATURE_MIN,
    Gdas,
    derive_gdas_genotype,
    straight_through_gumbel,
)
from nasbench.strategies.snas import gumbel_noise
from nasbench.types import NetworkConfig


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


def test_gdas_searches_on_its_own_network(cell_space, searching, tiny_data):
    """No batch norm after pooling, an affine batch norm and a ReLU before the head, and the
    weight optimiser trains that batch norm."""
    supernet = Gdas(context(cell_space, searching, tiny_data)).supernet
    pools = [edge.ops[name] for cell in supernet.cells for edge in cell.edges for name in POOLINGS]
    assert pools and all(isinstance(op, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for op in pools)
    norm, relu = supernet.last_act
    assert isinstance(norm, torch.nn.BatchNorm2d) and norm.affine and isinstance(relu, torch.nn.ReLU)
    assert {id(norm.weight), id(norm.bias)} <= {id(p) for p in supernet.weight_parameters()}


# -- deriving the genotype ----------------------------------------------------------------

def op(name: str) -> int:
    return SEARCH_OPERATIONS.index(name)


@pytest.fixture(scope="module")
def hand_weights() -> dict[str, torch.Tensor]:
    """0.05 everywhere, but for a few (edge, operation) pairs of the normal cell."""
    weights = {g: torch.full((14, 8), 0.05) for g in GROUPS}
    normal = weights["normal"]
    normal[0, NONE] = 0.9                              # node 2, from c_{k-2}: `none`, ignored ...
    normal[0, op("sep_conv_3x3")] = 0.4                # ... then sep_conv_3x3 ...
    normal[0, op("skip_connect")] = 0.36               # ... and skip_connect, both above ...
    normal[1, op("max_pool_3x3")] = 0.35               # ... c_{k-1}'s best
    normal[2, op("sep_conv_5x5")] = 0.47               # node 3: the two best pairs on two edges
    normal[4, op("dil_conv_5x5")] = 0.5
    normal[4, op("avg_pool_3x3")] = 0.45
    normal[8, op("skip_connect")] = 0.3                # node 4: both best pairs on n3
    normal[8, op("sep_conv_3x3")] = 0.2
    return weights


def test_gdas_derivation_by_hand_keeps_two_operations_of_one_input(hand_weights):
    """Per node the two heaviest (operation, input) pairs over all the node's non-`none`
    operations, heaviest first; ties go to the lower input, then to the operation listed
    first. DARTS' derivation, worked out by hand on the same weights, takes two edges."""
    gdas = derive_gdas_genotype(hand_weights)
    assert gdas.normal == (("sep_conv_3x3", 0), ("skip_connect", 0),
                           ("dil_conv_5x5", 2), ("sep_conv_5x5", 0),
                           ("skip_connect", 3), ("sep_conv_3x3", 3),
                           ("max_pool_3x3", 0), ("avg_pool_3x3", 0))  # all tied
    assert gdas.reduce == (("max_pool_3x3", 0), ("avg_pool_3x3", 0)) * 4
    assert gdas.normal_concat == gdas.reduce_concat == (2, 3, 4, 5)
    darts = derive_genotype(hand_weights)
    assert darts.normal == (("sep_conv_3x3", 0), ("max_pool_3x3", 1),
                            ("dil_conv_5x5", 2), ("sep_conv_5x5", 0),
                            ("skip_connect", 3), ("max_pool_3x3", 0),
                            ("max_pool_3x3", 0), ("max_pool_3x3", 1))


def official_parse(rows: list[list[float]]) -> list[tuple[str, int]]:
    """The official ``genotype()._parse`` (D-X-Y/AutoDL-Projects, search_model_gdas_nasnet.py),
    restated: per node every (operation, input, weight) but `none`, sorted by weight, the first two."""
    gene, start = [], 0
    for node in range(2, 6):
        pairs = [(SEARCH_OPERATIONS[k], j, rows[start + j][k]) for j in range(node) for k in range(8) if k != NONE]
        gene += [(name, j) for name, j, _ in sorted(pairs, key=lambda p: -p[2])[:2]]
        start += node
    return gene


def test_gdas_derivation_is_the_official_one_and_not_darts():
    repeated = differs = 0
    for seed in range(8):
        generator = torch.Generator().manual_seed(seed)
        weights = {g: torch.randn(14, 8, generator=generator).softmax(-1) for g in GROUPS}
        genotype = derive_gdas_genotype(weights)
        assert genotype.normal == tuple(official_parse(weights["normal"].tolist()))
        assert genotype.reduce == tuple(official_parse(weights["reduce"].tolist()))
        edges = genotype.normal + genotype.reduce
        repeated += sum(edges[i][1] == edges[i + 1][1] for i in range(0, 16, 2))
        differs += genotype != derive_genotype(weights)
    assert repeated > 0 and differs > 0  # random weights do exercise the difference


def test_a_genotype_with_a_repeated_input_is_valid_everywhere(cell_space, hand_weights):
    """Genotype, evaluation network, cost parts, cost weights and the supernet's path
    weights all take two operations on one input."""
    genotype = derive_gdas_genotype(hand_weights)
    assert Genotype.from_json(genotype.to_json()) == genotype
    assert EvalNetwork(genotype, channels=4, cells=3)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(part.name == "skip_connect" for part in genotype_parts(genotype, NetworkConfig(4, 3))) == 2
    row = genotype_weights(genotype)["normal"][0]  # edge (n2, c_{k-2}) carries both operations
    assert row[op("sep_conv_3x3")] == row[op("skip_connect")] == 1 and row.sum() == 2
    assert cell_space.skip_share(genotype)["normal"] == 2 / 8
    assert torch.equal(path_weights(genotype, torch.device("cpu"))["normal"][0], row.float())


def test_the_search_derives_with_gdas_rule(cell_space, searching, tiny_data):
    strategy = Gdas(context(cell_space, searching, tiny_data))
    with torch.no_grad():
        for alpha in strategy.supernet.alphas.values():
            alpha.zero_()
        normal = strategy.supernet.alphas["normal"]
        normal[0, op("sep_conv_3x3")], normal[0, op("skip_connect")], normal[1, op("max_pool_3x3")] = 3.0, 2.5, 1.0
    weights = strategy.edge_weights()
    arch = strategy.result().arch
    assert arch == derive_gdas_genotype(weights) != derive_genotype(weights)
    assert arch.normal[:2] == (("sep_conv_3x3", 0), ("skip_connect", 0))  # 0.52, 0.32 against 0.28


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
