"""The highway cell's cost decomposition: its parts computed with the cell's own weights give
the cell's output, and their FLOPs and parameters add up to the cell's (per token, and over a
window whose weights are shared), which is the language model's per word less the decoder."""
from __future__ import annotations

import random

import pytest
import torch

from nasbench.hardware.profiler import count_module, count_parts
from nasbench.language_model import flops_per_token
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.recurrent_cell.parts import build_part
from nasbench.types import NetworkConfig, PartKey

WORDS = 1000


@pytest.fixture(scope="module")
def space():
    return get_space("enas-rnn", load_protocol("proxy"))


def cells(space):
    return [entry.arch for entry in space.zoo().values()] + [space.sample(random.Random(seed)) for seed in range(3)]


def test_the_parts_with_the_cells_weights_compute_its_step(space):
    torch.manual_seed(0)
    arch = space.zoo()["ENAS"].arch
    config = space.cost_network_config(load_protocol("proxy"))
    h = config.channels
    network = space.build_cost_network(arch, config).eval()
    x, h_prev = torch.randn(1, 4, h), torch.randn(4, h)
    parts = {key.kind: key for key in space.cost_parts(arch, config)}
    projection, first, average = (build_part(parts[kind]) for kind in ("projection", "first", "average"))
    with torch.no_grad():
        projection.weight.copy_(network.cell.w0[:h])
        first.weight.copy_(network.cell.w0[h:])
        states = [first(projection(x)[0], h_prev)]
        for (activation, source), w in zip(arch.nodes, network.cell.ws):
            node = build_part(PartKey("op", activation, h, h, 1, 1))
            node.weight.copy_(w)
            states.append(node(states[source]))
        expected = average(*(states[i] for i in arch.concat))
        assert torch.allclose(network(x, h_prev), expected, atol=1e-6)


@pytest.mark.parametrize("window", [False, True])
def test_the_parts_counts_add_up_to_the_cells(space, window):
    config = space.cost_network_config(load_protocol("proxy"), window)
    counts = count_parts(space, space.all_cost_parts(config))
    for arch in cells(space):
        parts = space.cost_parts(arch, config)
        network = space.build_cost_network(arch, config)
        whole = count_module(network, [torch.zeros(shape) for shape in space.cost_network_inputs(config, 1)])
        assert sum(counts[key].flops for key in parts) == whole.flops > 0
        assert sum(counts[key].params for key in parts) == whole.params == sum(p.numel() for p in network.parameters())
        assert sum(counts[key].mac_elements for key in parts) == whole.mac_elements > whole.params
        assert len(parts) == len(arch.nodes) + 3  # projection, node 0, the later nodes, the average


def test_per_token_counts_are_the_language_models_less_its_decoder(space):
    config = space.cost_network_config(load_protocol("proxy"))
    counts = count_parts(space, space.all_cost_parts(config))
    h = config.channels
    for arch in cells(space):
        model = space.build(arch, NetworkConfig(channels=h, cells=1, num_classes=WORDS))
        decoder = h * WORDS
        assert sum(counts[key].flops for key in space.cost_parts(arch, config)) == flops_per_token(model) - decoder
    # a window's FLOPs are its steps' (the projection of the window and each step)
    window = space.cost_network_config(load_protocol("proxy"), window=True)
    parts = space.cost_parts(arch, window)
    window_counts = count_parts(space, parts)
    assert sum(window_counts[key].flops for key in parts) == window.cells * (flops_per_token(model) - decoder)


def test_the_table_holds_every_part_of_sampled_and_zoo_cells(space):
    config = space.cost_network_config(load_protocol("proxy"))
    every = set(space.all_cost_parts(config))
    for arch in cells(space):
        assert set(space.cost_parts(arch, config)) <= every
    ids = {key.id for key in every}
    assert "first:tanh:c128>128:s1:x1:n2" in ids and "average:mean:c128>128:s1:x1:n6" in ids  # ENAS' 6 loose ends
    assert not any(i.startswith("first:relu") for i in ids)  # DARTS' rule fixes node 0 at tanh, as the zoo's cells


def test_profile_cells_span_every_size_up_to_the_zoos_and_the_table_holds_their_parts(space):
    config = space.cost_network_config(load_protocol("proxy"))
    every = set(space.all_cost_parts(config))
    rng = random.Random(0)
    drawn = [space.profile_sample(rng) for _ in range(300)]
    assert {len(arch.nodes) for arch in drawn} == set(range(8, 12))  # proxy's 8 to ENAS' 11 after node 0
    assert all(set(space.cost_parts(arch, config)) <= every for arch in drawn)
    assert {len(space.sample(rng).nodes) for _ in range(20)} == {space.settings.cell_steps}  # searches draw as before

