"""PC-DARTS: the channel shuffle, partial channel edges against their formula and at one
channel, edge normalisation in the forward pass and in the derivation, the warm-up, and
`nasbench run` on the smoke protocol."""
from __future__ import annotations

import json

import pytest
import torch
from helpers import context, snapshot, store_rows, with_supernet
from torch import nn

from nasbench.errors import ConfigError
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import (
    EDGES,
    NODE_EDGES,
    NONE,
    State,
    Supernet,
    derive_genotype,
)
from nasbench.strategies.pc_darts import (
    CHANNEL_PROPORTION,
    PartialChannelMixedOp,
    PcDarts,
    channel_shuffle,
    normalised_edges,
)

ARCH = {"alphas.normal", "alphas.reduce", "betas.normal", "betas.reduce"}


@pytest.fixture(scope="module")
def searching(tiny):
    """A 4-channel, 3-cell supernet (the smoke protocol's: 1 channel through the operations
    of a normal cell's edges), one batch of 32 images per epoch."""
    return with_supernet(tiny, channels=4, batch_size=32)


# -- partial channels -----------------------------------------------------------------------

def test_channel_shuffle_interleaves_the_operated_and_the_bypassed_channels():
    """With K groups, channel j of the operated 1/K lands at j * K, followed by the j-th
    channel of each of the K - 1 bypassed groups; two groups interleave two halves."""
    x = torch.arange(8.0).view(1, 8, 1, 1)
    shuffled = channel_shuffle(x, 4).flatten().tolist()
    assert shuffled == [0, 2, 4, 6, 1, 3, 5, 7]
    assert sorted(shuffled) == list(range(8))  # a permutation
    assert channel_shuffle(torch.arange(6.0).view(1, 6, 1, 1), 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    c, k = 12, 4
    y = torch.randn(2, c, 3, 3)
    expected = torch.stack([y[:, g * (c // k) + j] for j in range(c // k) for g in range(k)], dim=1)
    assert torch.equal(channel_shuffle(y, k), expected)


@pytest.mark.parametrize("stride", [1, 2])
def test_a_partial_channel_edge_is_its_formula(stride):
    """shuffle(concat(sum_k w_k op_k(x[:C/4]), (sum_k w_k) * bypass(x[C/4:]))), the bypass
    being max pooling where the edge halves the resolution."""
    torch.manual_seed(0)
    edge = PartialChannelMixedOp(8, stride)
    x = torch.randn(2, 8, 6, 6)
    weights = 0.7 * torch.randn(8).softmax(-1)  # a row scaled by its edge's normalised beta
    part, rest = x[:, :2], x[:, 2:]
    operated = sum(weights[k] * edge.mixed.ops[name](part.relu() if edge.mixed.takes_relu[name] else part)
                   for k, name in enumerate(SEARCH_OPERATIONS) if k != NONE)
    bypassed = rest if stride == 1 else nn.functional.max_pool2d(rest, 2)
    expected = channel_shuffle(torch.cat([operated, 0.7 * bypassed], dim=1), CHANNEL_PROPORTION)
    active = tuple(k for k in range(8) if k != NONE)
    assert torch.allclose(edge(State(x), weights, active), expected, rtol=1e-5, atol=1e-6)
    only_none = torch.zeros(8).index_fill_(0, torch.tensor([NONE]), 1.0)  # sparse weights: nothing to run
    zeros = torch.zeros_like(operated)
    assert torch.equal(edge(State(x), only_none, ()), channel_shuffle(torch.cat([zeros, bypassed], 1), 4))


def test_every_operation_runs_on_one_channel_and_bad_widths_fail_at_construction():
    """The smoke protocol's normal cells have 4 channels: one goes through the operations."""
    edge = PartialChannelMixedOp(4, 1)
    x = torch.randn(2, 4, 8, 8)
    for k in range(len(SEARCH_OPERATIONS)):
        if k != NONE:
            out = edge(State(x), torch.ones(8), (k,))
            assert out.shape == x.shape and torch.isfinite(out).all(), SEARCH_OPERATIONS[k]
    with pytest.raises(ConfigError, match=r"a cell needs a multiple of 4 channels, not 6 \(set \[search.supernet\]"):
        PartialChannelMixedOp(6, 1)
    with pytest.raises(ValueError, match="FactorizedReduce needs an even number of output channels, got 1"):
        PartialChannelMixedOp(4, 2)  # a reducing skip_connect cannot halve one channel
    with pytest.raises(ConfigError):
        Supernet(2, 3, mixed_op=PartialChannelMixedOp)


# -- edge normalisation ---------------------------------------------------------------------

def test_betas_are_architecture_parameters_of_the_supernet(cell_space, searching, tiny_data):
    strategy = PcDarts(context(cell_space, searching, tiny_data))
    net = strategy.supernet
    assert [tuple(p.shape) for p in net.arch_parameters()] == [(14, 8), (14, 8), (14,), (14,)]
    assert not ARCH & set(net.named_weight_parameters())
    assert {id(p) for group in strategy.arch_optimizer.param_groups for p in group["params"]} == {
        id(p) for p in net.arch_parameters()}
    assert {"betas.normal", "betas.reduce"} <= set(strategy.tensor_state()["supernet"])
    assert all(isinstance(edge, PartialChannelMixedOp) for cell in net.cells for edge in cell.edges)


def test_edge_weights_are_the_operation_softmax_times_the_node_softmax_of_beta(cell_space, searching, tiny_data):
    strategy = PcDarts(context(cell_space, searching, tiny_data))
    with torch.no_grad():
        strategy.supernet.betas["normal"].copy_(torch.randn(14))
        weights = strategy.edge_weights()["normal"]
    alpha, beta = strategy.supernet.alphas["normal"], strategy.supernet.betas["normal"]
    for incoming in NODE_EDGES:
        share = beta[list(incoming)].softmax(-1)
        for e, s in zip(incoming, share):
            assert torch.allclose(weights[e], alpha[e].softmax(-1) * s)
        assert weights[list(incoming)].sum().item() == pytest.approx(1)
    assert torch.allclose(normalised_edges(beta), torch.cat([beta[list(i)].softmax(-1) for i in NODE_EDGES]))


def test_a_favoured_edge_is_derived(cell_space, searching, tiny_data):
    """Node 3's edges from c_{k-2} and c_{k-1} have the strongest operations, so DARTS'
    rule takes them; a beta favouring its edge from node 2 brings that edge in instead."""
    strategy = PcDarts(context(cell_space, searching, tiny_data))
    sep3, dil5 = SEARCH_OPERATIONS.index("sep_conv_3x3"), SEARCH_OPERATIONS.index("dil_conv_5x5")
    from_input0, from_input1, from_node2 = NODE_EDGES[1]
    assert [EDGES[e] for e in NODE_EDGES[1]] == [(3, 0), (3, 1), (3, 2)]
    with torch.no_grad():
        for alpha in strategy.supernet.alphas.values():
            alpha.zero_()
            alpha[[from_input0, from_input1], sep3] = 3.0
            alpha[from_node2, dil5] = 2.0
    node3 = strategy.result().arch.normal[2:4]
    assert sorted(node3) == [("sep_conv_3x3", 0), ("sep_conv_3x3", 1)]
    with torch.no_grad():
        strategy.supernet.betas["normal"][from_node2] = 2.0
    result = strategy.result().arch
    assert result.normal[2] == ("dil_conv_5x5", 2) and result.normal[3][1] in (0, 1)
    assert sorted(result.reduce[2:4]) == sorted(node3)  # the reduction cell's betas are untouched
    assert result == derive_genotype(strategy.edge_weights())


def test_scaling_a_weight_row_scales_the_whole_edge():
    """Edge normalisation multiplies row e by edge e's share; on a partial-channel edge that
    scales the bypassed channels too, as the paper's beta_e * f_e(x) does."""
    torch.manual_seed(1)
    edge = PartialChannelMixedOp(8, 1)
    x, row = torch.randn(2, 8, 6, 6), torch.randn(8).softmax(-1)
    active = tuple(k for k in range(8) if k != NONE)
    whole = edge(State(x), row, active)
    assert torch.allclose(edge(State(x), 0.3 * row, active), 0.3 * whole, rtol=1e-5, atol=1e-7)
    assert torch.equal(whole[:, 1:4], x[:, [2, 4, 6]] * row.sum())  # bypassed channels, shuffled into place


# -- the search -------------------------------------------------------------------------------

def test_warmup_is_the_papers_share_of_the_epochs(cell_space, searching, tiny_data):
    assert [PcDarts(context(cell_space, with_supernet(searching, epochs=e), tiny_data)).warmup_epochs()
            for e in (50, 10, 5, 1)] == [15, 3, 2, 0]


def test_the_architecture_is_frozen_during_the_warmup_only(cell_space, searching, tiny_data):
    """Five epochs: two of warm-up. In its last epoch only weights move; in the next one the
    architecture step moves alpha and beta too."""
    strategy = PcDarts(context(cell_space, with_supernet(searching, epochs=5), tiny_data))
    assert strategy.warmup_epochs() == 2
    strategy.epochs_done = 1
    before = snapshot(strategy.supernet)
    strategy.step()
    during = snapshot(strategy.supernet)
    moved = {name for name in before if not torch.equal(before[name], during[name])}
    assert moved and moved.isdisjoint(ARCH)
    strategy.step()
    after = snapshot(strategy.supernet)
    assert ARCH <= {name for name in during if not torch.equal(during[name], after[name])}
    assert [r["architecture_frozen"] for r in strategy.history] == [True, False]
    for record in strategy.history:
        assert [len(node) for node in record["edge_weights"]["normal"]] == [2, 3, 4, 5]
        assert all(sum(node) == pytest.approx(1, rel=1e-5) for node in record["edge_weights"]["reduce"])


# -- through the command line -------------------------------------------------------------

def test_smoke_runs_pc_darts(smoke_store):
    rows = [r for r in store_rows(smoke_store.path) if r["method"] == "pc-darts"]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "GO" and row["variant"] == ""
        assert 0 <= row["test_acc"] <= 1 and row["params"] > 0 and row["search_seconds"] > 0
        (epoch,) = json.loads(row["details_json"])["epochs"]  # one epoch: no warm-up
        assert json.loads(row["genotype_json"]) == epoch["genotype"]
        assert epoch["architecture_frozen"] is False and set(epoch["edge_weights"]) == {"normal", "reduce"}
