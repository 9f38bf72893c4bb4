"""The NAS-RL recurrent cell space: its tree, values and their errors, sampling and mutation,
the paper's base-2 worked example by hand, and the NAS cell against TensorFlow's NASCell."""
from __future__ import annotations

import dataclasses
import math
import random

import pytest
import torch

from nasbench.errors import ConfigError
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.nasrl_rnn.arch import COMBINATIONS, TreeCellArch, tree_children
from nasbench.spaces.nasrl_rnn.cell import COMBINATION_FUNCTIONS, TreeCell
from nasbench.spaces.nasrl_rnn.space import NAS_CELL


@pytest.fixture(scope="module")
def space(smoke):
    return get_space("nasrl-rnn", smoke)


def test_every_combination_name_has_its_function():
    """The names the torch-free description offers are those the cell computes, in order."""
    assert tuple(COMBINATION_FUNCTIONS) == COMBINATIONS
    a, b = torch.tensor([2.0]), torch.tensor([3.0])
    assert [COMBINATION_FUNCTIONS[name](a, b).item() for name in COMBINATIONS] == [5.0, 6.0]


def test_the_tree_numbers_nodes_level_by_level():
    assert tree_children(3) == {2: (0, 1)}
    assert tree_children(15) == {8: (0, 1), 9: (2, 3), 10: (4, 5), 11: (6, 7), 12: (8, 9), 13: (10, 11),
                                 14: (12, 13)}


def test_values_round_trip_and_bad_input_is_one_line(space):
    good = space.to_dict(NAS_CELL)
    assert space.from_dict(good) == NAS_CELL and "c_t from 12, c_{t-1} into 8" in str(NAS_CELL)
    bad = {
        "4 nodes do not make a tree": {**good, "nodes": good["nodes"][:4]},
        "unknown combination 'max'": {**good, "inject": ["max", "tanh"]},
        "unknown activation 'gelu'": {**good, "nodes": [["add", "gelu"]] + good["nodes"][1:]},
        r"cell_indices \[14, 8\] must be nodes below the root, 0..13": {**good, "cell_indices": [14, 8]},
        "a NAS-RL cell is a JSON object": {**good, "inject": "add"},
    }
    for message, data in bad.items():
        with pytest.raises(ConfigError, match=message) as info:
            space.from_dict(data, where="cell.json")
        assert str(info.value).startswith("cell.json: ") and "\n" not in str(info.value)


def test_samples_and_mutations_are_valid_trees_of_the_layout(smoke):
    layout = dataclasses.replace(get_space("nasrl-rnn", smoke).settings, nasrl_base=4)
    space = type(get_space("nasrl-rnn", smoke))(layout)
    rng = random.Random(2)
    for _ in range(50):
        arch = space.sample(rng)
        arch.check()
        assert arch.base == 4
        child = space.mutate(arch, rng)
        child.check()
        before = [*arch.nodes, arch.inject, *arch.cell_indices]
        after = [*child.nodes, child.inject, *child.cell_indices]
        differences = sum(a != b for a, b in zip(before, after))
        pairs = zip((*arch.nodes, arch.inject), (*child.nodes, child.inject))
        assert differences == 1 and all(sum(x != y for x, y in zip(a, b)) <= 1 for a, b in pairs)


def _scalar_tree(arch: TreeCellArch, w_x: list[float], w_h: list[float]) -> TreeCell:
    cell = TreeCell(arch, 1, 1)
    with torch.no_grad():
        cell.w_x.copy_(torch.tensor([w_x]))
        cell.w_h.copy_(torch.tensor([w_h]))
    return cell


def test_the_papers_base_2_example_by_hand():
    """Sect. 3.4: a0 = tanh(W1 x + W2 h), a1 = ReLU(W3 x * W4 h), the inject a0' = ReLU(a0 +
    c_{t-1}), a2 = sigmoid(a0' * a1) = h_t, and c_t = W3 x * W4 h (node 1 before its ReLU)."""
    arch = TreeCellArch((("add", "tanh"), ("elem_mult", "relu"), ("elem_mult", "sigmoid")), ("add", "relu"), (1, 0))
    w1, w3, w2, w4 = 0.8, -1.5, 0.6, -0.7
    cell = _scalar_tree(arch, [w1, w3], [w2, w4])
    h, c = torch.zeros(1, 1), torch.zeros(1, 1)
    eh, ec = 0.0, 0.0
    for x in (0.9, 0.4):
        a0 = math.tanh(w1 * x + w2 * eh)
        a1 = max((w3 * x) * (w4 * eh), 0.0)
        a0_new = max(a0 + ec, 0.0)
        eh, ec = 1 / (1 + math.exp(-a0_new * a1)), (w3 * x) * (w4 * eh)
        h, c = cell.step(cell.project(torch.tensor([[x]])), (h, c), None)
        assert (h.item(), c.item()) == pytest.approx((eh, ec), rel=1e-6)


def test_the_nas_cell_is_tensorflows_nascell():
    """NASCell.call restated with its own names, on the same weights."""
    torch.manual_seed(0)
    cell = TreeCell(NAS_CELL, 3, 4)
    x, m, c_prev = torch.randn(2, 3), torch.randn(2, 4), torch.randn(2, 4)
    i_, m_ = (x @ cell.w_x).chunk(8, dim=-1), (m @ cell.w_h).chunk(8, dim=-1)
    sig, tanh, relu = torch.sigmoid, torch.tanh, torch.relu
    l1 = [sig(i_[0] + m_[0]), relu(i_[1] + m_[1]), sig(i_[2] + m_[2]), relu(i_[3] * m_[3]), tanh(i_[4] + m_[4]),
          sig(i_[5] + m_[5]), tanh(i_[6] + m_[6]), sig(i_[7] + m_[7])]
    l2_0, l2_1 = tanh(l1[0] * l1[1]), tanh(l1[2] + l1[3])
    l2_2, l2_3 = tanh(l1[4] * l1[5]), sig(l1[6] + l1[7])
    l2_0 = tanh(l2_0 + c_prev)
    new_c = l2_0 * l2_1
    new_m = tanh(new_c * tanh(l2_2 + l2_3))
    h, c = cell.step(cell.project(x), (m, c_prev), None)
    assert torch.allclose(h, new_m, atol=1e-6) and torch.allclose(c, new_c, atol=1e-6)


def test_the_nas_cell_model_size():
    """The paper does not give its models' hidden sizes, so only the count's form is checked:
    the tied embedding, the decoder bias and TF's 16 n^2 cell weights."""
    space = get_space("nasrl-rnn", load_protocol("full"))
    stage = space.settings.stage("final")
    with torch.device("meta"):
        model = space.build_language_model(NAS_CELL, stage, 10000)
    n = stage.hidden_size
    assert sum(p.numel() for p in model.parameters()) == 10000 * n + 10000 + 16 * n * n
    assert space.zoo()["NAS_cell"].params_note
