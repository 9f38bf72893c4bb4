"""The tree cell's cost decomposition: its parts' FLOPs and parameters add up to the cell's,
per token (the language model's per word less the decoder) and over a window."""
from __future__ import annotations

import random

import pytest
import torch

from nasbench.hardware.profiler import count_module, count_parts
from nasbench.language_model import flops_per_token
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.nasrl_rnn.parts import build_part
from nasbench.types import NetworkConfig, PartKey


@pytest.fixture(scope="module")
def space():
    return get_space("nasrl-rnn", load_protocol("proxy"))


@pytest.mark.parametrize("window", [False, True])
def test_the_parts_counts_add_up_to_the_cells(space, window):
    protocol = load_protocol("proxy")
    config = space.cost_network_config(protocol, window)
    counts = count_parts(space, space.all_cost_parts(config))
    h = config.channels
    for arch in [space.zoo()["NAS_cell"].arch] + [space.sample(random.Random(seed)) for seed in range(3)]:
        parts = space.cost_parts(arch, config)
        network = space.build_cost_network(arch, config)
        whole = count_module(network, [torch.zeros(shape) for shape in space.cost_network_inputs(config, 1)])
        assert sum(counts[key].flops for key in parts) == whole.flops
        assert sum(counts[key].params for key in parts) == whole.params == 2 * h * arch.base * h
        assert sum(counts[key].mac_elements for key in parts) == whole.mac_elements
        assert len(parts) == 2 + len(arch.nodes) + 1  # two projections, the nodes, the inject
        model = space.build(arch, NetworkConfig(channels=h, cells=1, num_classes=100))
        assert whole.flops == config.cells * (flops_per_token(model) - 100 * h)


def test_a_node_part_computes_its_combination_and_activation():
    a, b = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.equal(build_part(PartKey("op", "elem_mult_tanh", 5, 5, 1, 1, 2))(a, b), torch.tanh(a * b))
    # over two steps the output feeds the next step's second input: the steps cannot be merged
    assert torch.equal(build_part(PartKey("op", "add_relu", 5, 5, 2, 1, 2))(a, b), torch.relu(a + torch.relu(a + b)))
