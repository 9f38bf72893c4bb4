"""DARTS' relaxed recurrent cell: at one-hot weights it is the derived cell, its vectorised
mixing equals the official per-operation loop (batch norm included), batch norm normalises
every node in training only, the derivation follows the official genotype(), and the
parameters split into weights and alpha."""
from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.nn.functional as F

from nasbench.spaces import get_space
from nasbench.spaces.language_model_network import ACTIVATION_FUNCTIONS, LanguageModel
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.spaces.recurrent_cell.cell import HighwayCell
from nasbench.spaces.recurrent_cell.supernet import (
    NONE,
    OPERATIONS,
    RecurrentSupernet,
    SupernetCell,
    derive_arch,
    edge_count,
    node_edges,
)

VOCAB = 50


@pytest.fixture(scope="module")
def space(smoke):
    return get_space("enas-rnn", smoke)


@pytest.fixture(scope="module")
def stage(space):
    return dataclasses.replace(space.settings.stage("search"), hidden_size=6)


def one_hot_alpha(arch: RecurrentCellArch) -> torch.Tensor:
    """alpha whose softmax is exactly one-hot: each node's chosen edge on its operation,
    its other edges on none."""
    steps = len(arch.nodes)
    alpha = torch.full((edge_count(steps), len(OPERATIONS)), -torch.inf)
    for (activation, source), rows in zip(arch.nodes, node_edges(steps)):
        alpha[list(rows), NONE] = 0.0
        alpha[rows[source], NONE] = -torch.inf
        alpha[rows[source], OPERATIONS.index(activation)] = 0.0
    return alpha


def test_operations_and_alpha_follow_the_official_code():
    assert OPERATIONS == ("none", "tanh", "relu", "sigmoid", "identity")  # rnn/genotypes.py:5-11
    torch.manual_seed(0)
    cell = SupernetCell(4, 4, steps=8)
    assert cell.alpha.shape == (36, 5) and 0.5e-3 < cell.alpha.std().item() < 2e-3  # 1e-3 * randn
    assert isinstance(cell.bn, torch.nn.BatchNorm1d) and not cell.bn.affine  # model_search.py:14
    assert [list(r) for r in node_edges(3)] == [[0], [1, 2], [3, 4, 5]]


@pytest.mark.parametrize("training", [False, True])
def test_at_one_hot_weights_the_supernet_is_the_derived_cell(space, stage, training):
    """Without batch norm (the derived cell has none), under the same weights and dropout
    masks, the relaxed model computes what the derived cell's model computes."""
    layout = dataclasses.replace(space.settings, cell_steps=5)
    arch = type(space)(layout).sample(random.Random(3))
    torch.manual_seed(0)
    supernet = RecurrentSupernet(VOCAB, stage, steps=5, batch_norm=False)
    with torch.no_grad():
        supernet.cell.alpha.copy_(one_hot_alpha(arch))
    assert derive_arch(supernet.edge_weights(), 5) == arch
    derived = LanguageModel(HighwayCell(arch, stage.hidden_size, stage.hidden_size), VOCAB, stage.dropouts)
    derived.load_state_dict({k: v for k, v in supernet.state_dict().items() if k != "cell.alpha"})
    tokens = torch.randint(0, VOCAB, (7, 4), generator=torch.Generator().manual_seed(1))

    def forward(model):
        model.train(training)
        torch.manual_seed(5)  # the same dropout masks
        with torch.no_grad():
            return model(tokens, model.init_state(4))

    (log_probs, (h,), raw), (log_probs_d, (h_d,), raw_d) = forward(supernet), forward(derived)
    assert torch.allclose(raw, raw_d, atol=1e-6, rtol=0) and torch.allclose(h, h_d, atol=1e-6, rtol=0)
    assert torch.allclose(log_probs, log_probs_d, atol=1e-5, rtol=0)
    with torch.no_grad():  # the relaxation at uniform weights is another function
        supernet.cell.alpha.zero_()
    assert not torch.allclose(forward(supernet)[2], raw_d, atol=1e-3)


def official_step(cell: SupernetCell, projected, h_prev, h_mask):
    """model_search.py:16-43 written out: every node, edge and operation in turn, batch norm
    by the batch's statistics."""
    def bn(s):
        return (s - s.mean(0)) / torch.sqrt(s.var(0, unbiased=False) + cell.bn.eps)

    probs = cell.alpha.softmax(-1)
    hs = cell.hidden_size
    ch = projected + (h_prev * h_mask) @ cell.w0[cell.input_size:]
    states = [bn(h_prev + torch.sigmoid(ch[:, :hs]) * (torch.tanh(ch[:, hs:]) - h_prev))]
    offset = 0
    for i, w in enumerate(cell.ws, start=1):
        s = torch.zeros_like(h_prev)
        for j in range(i):
            ch = (states[j] * h_mask) @ w
            c, h = torch.sigmoid(ch[:, :hs]), ch[:, hs:]
            for k, name in enumerate(OPERATIONS):
                if name != "none":
                    s = s + probs[offset + j, k] * (states[j] + c * (ACTIVATION_FUNCTIONS[name](h) - states[j]))
        states.append(bn(s))
        offset += i
    return torch.stack(states[1:]).mean(0)


def test_the_vectorised_step_is_the_official_loop():
    torch.manual_seed(0)
    cell = SupernetCell(3, 5, steps=4).double().train()
    with torch.no_grad():
        cell.alpha.normal_(0, 1)  # far from uniform, so a mis-indexed weight shows
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 6, 3, generator=generator, dtype=torch.float64)
    h_prev = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    h_mask = torch.bernoulli(torch.full((6, 5), 0.7, dtype=torch.float64), generator=generator) / 0.7
    projected = cell.project(x)
    (out,) = cell.step(projected[0], (h_prev,), h_mask)
    assert torch.allclose(out, official_step(cell, projected[0], h_prev, h_mask), rtol=1e-10, atol=1e-12)


def test_batch_norm_normalises_every_node_in_training_and_uses_running_statistics_after():
    torch.manual_seed(0)
    cell = SupernetCell(4, 4, steps=3)
    seen = []
    cell.bn.register_forward_hook(lambda module, args, out: seen.append(out.detach()))
    x, h = torch.randn(2, 16, 4), torch.randn(16, 4)
    projected = cell.project(x)
    cell.train()
    for t in range(2):
        (h,) = cell.step(projected[t], (h,), None)
    assert len(seen) == 2 * 4  # node 0 and 3 nodes, per time step
    for s in seen:
        assert torch.allclose(s.mean(0), torch.zeros(4), atol=1e-5)
        assert torch.allclose(s.var(0, unbiased=False), torch.ones(4), atol=1e-3)
    running = cell.bn.running_mean.clone()
    assert not torch.equal(running, torch.zeros(4))
    cell.eval()
    cell.step(projected[0], (h,), None)
    assert torch.equal(cell.bn.running_mean, running)  # evaluation reads the statistics, leaves them


def test_derivation_takes_each_nodes_strongest_edge_and_operation_except_none():
    # columns: none, tanh, relu, sigmoid, identity; 3 nodes: rows [0], [1, 2], [3, 4, 5]
    weights = [
        [0.9, 0.01, 0.05, 0.02, 0.02],   # node 1: none is largest, relu is the best real operation
        [0.2, 0.2, 0.2, 0.2, 0.2],       # node 2 from 0: all 0.2
        [0.96, 0.0, 0.0, 0.04, 0.0],     # node 2 from 1: none wins here, but sigmoid's 0.04 loses to 0.2
        [0.1, 0.1, 0.1, 0.1, 0.6],       # node 3 from 0: identity 0.6
        [0.0, 0.0, 0.0, 0.3, 0.7],       # node 3 from 1: identity 0.7, the strongest
        [0.0, 0.7, 0.1, 0.1, 0.1],       # node 3 from 2: tanh 0.7 ties: the earlier predecessor (1) wins
    ]
    arch = derive_arch(torch.tensor(weights), 3)
    assert arch == RecurrentCellArch("tanh", (("relu", 0), ("tanh", 0), ("identity", 1)), "intermediate")
    arch.check()
    with pytest.raises(ValueError, match=r"need \(6, 5\)"):
        derive_arch(torch.zeros(5, 5), 3)


def test_derivation_agrees_with_argmax_on_random_weights():
    generator = torch.Generator().manual_seed(4)
    for _ in range(20):
        weights = torch.randn(edge_count(8), 5, generator=generator).softmax(-1)
        arch = derive_arch(weights, 8)
        for (activation, source), rows in zip(arch.nodes, node_edges(8)):
            block = weights[rows.start:rows.stop, 1:]
            assert block[source, OPERATIONS.index(activation) - 1] == block.max()


def test_weights_and_alpha_partition_the_parameters(stage):
    supernet = RecurrentSupernet(VOCAB, stage, steps=3)
    weights = supernet.named_weight_parameters()
    assert supernet.arch_parameters() == [supernet.cell.alpha] and "cell.alpha" not in weights
    assert {id(p) for p in weights.values()} | {id(supernet.cell.alpha)} == {id(p) for p in supernet.parameters()}
    assert "encoder.weight" in weights and "decoder.weight" not in weights  # tied: counted once
    assert supernet.genotype().nodes == derive_arch(F.softmax(supernet.cell.alpha, -1), 3).nodes
