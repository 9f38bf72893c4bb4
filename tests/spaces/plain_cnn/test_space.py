"""EAS' plain CNN space: the start network, the architecture values and their JSON form, the
networks they build, what Net2Wider and Net2Deeper do to a value, and the [plain_cnn] layout."""
from __future__ import annotations

import json
import random
import re

import pytest
import torch

from nasbench.errors import ConfigError
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.plain_cnn.arch import Conv, Deepen, LayerRef, PlainCnn, Widen
from nasbench.spaces.plain_cnn.space import PlainCnnLayout, PlainCnnSpace
from nasbench.strategies import check_protocol

LAYOUT = PlainCnnLayout(blocks=3, filters=(4, 8, 12), units=(8, 16), wider_actions=2, deeper_actions=3)


@pytest.fixture(scope="module")
def space():
    return PlainCnnSpace(LAYOUT)


def test_the_start_network_is_eas_small_start_network():
    """start_nets/start_net_convnet_small_C10+/net.config: four 3x3 convolutions of 4 filters,
    pooling between them, global pooling, a fully connected layer of 8 units (on the
    official code's ladders, which proxy lays out)."""
    proxy = get_space("plain-cnn", load_protocol("proxy"))
    assert str(proxy.start()) == "conv-4-3 pool conv-4-3 pool conv-4-3 pool conv-4-3 gap fc-8"
    assert proxy.layout.filters == tuple(range(4, 44, 4)) and proxy.layout.units == tuple(range(8, 88, 8))
    assert (proxy.layout.wider_actions, proxy.layout.deeper_actions) == (4, 5)


def test_the_json_form_round_trips(space):
    rng = random.Random(0)
    for arch in [space.start()] + [space.sample(rng) for _ in range(10)]:
        data = json.loads(json.dumps(space.to_dict(arch)))
        assert space.from_dict(data) == arch and hash(space.from_dict(data)) == hash(arch)
    assert space.to_dict(space.start()) == {"blocks": [[{"filters": 4, "kernel": 3}]] * 3, "fc": [8]}


@pytest.mark.parametrize("data, words", [
    ([], "a plain-cnn architecture is a JSON object"),
    ({"blocks": [[{"filters": 4, "kernel": 3}]]}, "a plain-cnn architecture is a JSON object"),
    ({"blocks": [], "fc": []}, "blocks must be a non-empty list"),
    ({"blocks": [[]], "fc": []}, "blocks must be a non-empty list"),
    ({"blocks": [[{"filters": 4, "kernel": 2}]], "fc": []}, "block 0 layer 0: a convolution is"),
    ({"blocks": [[{"filters": 4.0, "kernel": 3}]], "fc": []}, "block 0 layer 0: a convolution is"),
    ({"blocks": [[{"filters": 4, "kernel": 3, "stride": 1}]], "fc": []}, "a convolution is"),
    ({"blocks": [[{"filters": 4, "kernel": 3}]], "fc": [0]}, "fc must list integer widths >= 1"),
    ({"blocks": [[{"filters": 4, "kernel": 3}]], "fc": [8]}, "1 blocks, the [plain_cnn] layout has 3"),
    ({"blocks": [[{"filters": 4, "kernel": 3}]] * 2 + [[{"filters": 16, "kernel": 3}]], "fc": [8]},
     "width 16 of the layer at block 2, index 0 is not among the [plain_cnn] layout's filters [4, 8, 12]"),
    ({"blocks": [[{"filters": 4, "kernel": 3}]] * 3, "fc": [12]}, "layout's units [8, 16]"),
])
def test_bad_input_is_one_clear_error(space, data, words):
    with pytest.raises(ConfigError) as info:
        space.from_dict(data, where="mine.json")
    message = str(info.value)
    assert message.startswith("mine.json") and words in message and "\n" not in message


def test_networks_have_the_shapes_of_their_architecture(space, smoke):
    arch = PlainCnn(((Conv(4, 3), Conv(8, 5)), (Conv(12, 1),), (Conv(8, 3),)), (16, 8))
    torch.manual_seed(0)
    network = space.build(arch, smoke.candidate.network).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert network(x).shape == (2, 10)
        assert network(x, until=LayerRef(0, 1)).shape == (2, 8, 32, 32)
        assert network(x, until=LayerRef(1, 0)).shape == (2, 12, 16, 16)
        assert network(x, until=LayerRef(2, 0)).shape == (2, 8, 8, 8)
        assert network(x, until=LayerRef(3, 0)).shape == (2, 16)
    kernels = [m.kernel_size for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [(3, 3), (5, 5), (1, 1), (3, 3)]
    assert network.classifier.in_features == 8 and network.classifier.bias is not None
    assert all(m.bias is None for m in network.modules() if isinstance(m, torch.nn.Conv2d))


def test_widen_and_deepen_give_the_values_they_name(space):
    start = space.start()
    assert space.wider(start, LayerRef(1, 0)) == Widen(LayerRef(1, 0), 8)
    assert space.wider(start, LayerRef(3, 0)) == Widen(LayerRef(3, 0), 16)
    wide = start.apply(Widen(LayerRef(1, 0), 12))
    assert wide.blocks[1] == (Conv(12, 3),) and wide.blocks[0] == start.blocks[0]
    assert space.wider(wide, LayerRef(1, 0)) is None  # the widest filter count
    deep = wide.apply(Deepen(LayerRef(1, 0), 5)).apply(Deepen(LayerRef(1, 0), 1))
    assert deep.blocks[1] == (Conv(12, 3), Conv(12, 1), Conv(12, 5))  # each inserted right after the layer, as wide
    assert deep.apply(Deepen(LayerRef(3, 0), None)).fc == (8, 8)
    assert deep.layer_counts() == (1, 3, 1, 1)
    assert str(deep) == "conv-4-3 pool conv-12-3 conv-12-1 conv-12-5 pool conv-4-3 gap fc-8"
    with pytest.raises(ValueError, match="no layer at"):
        start.apply(Deepen(LayerRef(0, 1), 3))


def test_a_sample_is_the_start_network_after_one_random_episode(space):
    rng = random.Random(0)
    start_layers = sum(space.start().layer_counts())
    for _ in range(20):
        arch = space.sample(rng)
        assert sum(arch.layer_counts()) == start_layers + LAYOUT.deeper_actions  # every Net2Deeper action inserts
        assert space.check(arch) == arch


def test_a_mutation_is_one_step_away(space):
    rng = random.Random(0)
    arch, kinds = space.start(), set()
    for _ in range(30):
        mutant = space.mutate(arch, rng)
        grown = sum(mutant.layer_counts()) - sum(arch.layer_counts())
        assert grown in (0, 1)
        if not grown:  # one layer one width wider
            (changed,) = [ref for ref in arch.refs() if mutant.width(ref) != arch.width(ref)]
            assert mutant == arch.apply(space.wider(arch, changed))
        kinds.add(grown)
        arch = mutant
    assert kinds == {0, 1}


def test_the_graph_is_the_layers_in_order(space):
    (graph,) = space.graph(space.start())
    assert [node.label for node in graph.nodes][1:-1] == str(space.start()).split()
    assert len(graph.edges) == len(graph.nodes) - 1


@pytest.mark.parametrize("changes, words", [
    ({"filters": [8, 4]}, "filters must list increasing widths >= 1"),
    ({"units": []}, "units must list increasing widths >= 1"),
    ({"blocks": 7}, "blocks must be 1 to 6"),
    ({"wider_actions": 0, "deeper_actions": 0}, "an episode needs at least one action"),
])
def test_the_layout_is_checked(smoke, changes, words):
    bad = smoke.with_section("plain_cnn", {**smoke.section("plain_cnn"), **changes})
    with pytest.raises(ConfigError, match=re.escape(words)):
        check_protocol(bad)
