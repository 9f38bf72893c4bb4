"""MetaQNN's space: layer sequences under the paper's rules, their JSON form, their networks
(trained for real on CIFAR images), and the protocol's [metaqnn] layout."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from torch import nn

from nasbench.errors import ConfigError
from nasbench.hardware.counting import count_params
from nasbench.protocol import load_protocol, protocol_from_file
from nasbench.spaces import get_space
from nasbench.spaces.metaqnn.arch import (
    GAP,
    SOFTMAX,
    Conv,
    FullyConnected,
    LayerSequence,
    Pool,
)
from nasbench.spaces.metaqnn.network import MetaqnnNetwork
from nasbench.spaces.metaqnn.space import MetaqnnLayout, MetaqnnSpace
from nasbench.strategies import check_protocol
from nasbench.training import build_model, train_network

WIDE = MetaqnnLayout(max_layers=8, conv_filters=(4, 8), fc_neurons=(16, 8))
"""Deep enough for every layer kind: two poolings bring 32x32 below 8x8, where fully connected layers may start."""

EVERY_KIND = LayerSequence((Conv(8, 5), Pool(3, 2), Conv(4, 3), Pool(5, 3), Conv(8, 1), FullyConnected(16),
                            FullyConnected(8)), SOFTMAX)
"""32 -> P(3,2) -> 15 -> P(5,3) -> 4: three receptive fields, two poolings, two FC layers, softmax."""
WITH_GAP = LayerSequence((Conv(4, 3), Pool(2, 2), Conv(8, 5)), GAP)


@pytest.fixture(scope="module")
def wide():
    return MetaqnnSpace(WIDE)


def layers(*names):
    """Layer dicts of the JSON form from the paper's notation, e.g. layers("C8,3", "P2,2", "FC16")."""
    out = []
    for name in names:
        kind, args = ("fc", name[2:]) if name.startswith("FC") else ({"C": "conv", "P": "pool"}[name[0]], name[1:])
        values = [int(v) for v in args.split(",")]
        keys = {"conv": ("filters", "kernel"), "pool": ("size", "stride"), "fc": ("neurons",)}[kind]
        out.append({"type": kind, **dict(zip(keys, values))})
    return out


# -- architectures: values, JSON, rules -------------------------------------------------

def test_a_sequence_is_a_value_with_a_json_round_trip_and_the_papers_notation(wide):
    assert str(EVERY_KIND) == "C(8,5,1) - P(3,2) - C(4,3,1) - P(5,3) - C(8,1,1) - FC(16) - FC(8) - SM"
    assert str(WITH_GAP) == "C(4,3,1) - P(2,2) - C(8,5,1) - GAP"
    data = wide.to_dict(EVERY_KIND)
    assert data["layers"][:2] == layers("C8,5", "P3,2") and data["termination"] == "softmax"
    parsed = wide.from_dict(json.loads(json.dumps(data)))
    assert parsed == EVERY_KIND and hash(parsed) == hash(EVERY_KIND)
    assert {parsed, EVERY_KIND, WITH_GAP} == {EVERY_KIND, WITH_GAP}
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.termination = GAP
    empty = LayerSequence((), SOFTMAX)  # the agent may terminate at the start (Sect. 4.1)
    assert wide.from_dict(wide.to_dict(empty)) == empty and str(empty) == "SM"


@pytest.mark.parametrize("data, problem", [
    ([], 'a metaqnn architecture is a JSON object {"layers": [...], "termination"'),
    ({"layers": []}, 'a metaqnn architecture is a JSON object'),
    ({"layers": [], "termination": "relu"}, "termination must be one of softmax, gap, got 'relu'"),
    ({"layers": [{"type": "dense", "neurons": 8}], "termination": "softmax"},
     'layer 0: a layer is a JSON object with a "type" among conv (filters, kernel), pool (size, stride), fc (neurons)'),
    ({"layers": [{"type": "conv", "filters": 8}], "termination": "softmax"},
     "layer 0: a conv layer has exactly the integer fields filters, kernel, each >= 1"),
    ({"layers": [{"type": "conv", "filters": 8, "kernel": True}], "termination": "gap"}, "integer fields"),
    ({"layers": [{"type": "conv", "filters": 0, "kernel": 3}], "termination": "gap"}, "each >= 1"),
])
def test_malformed_json_is_refused_in_one_line(wide, data, problem):
    with pytest.raises(ConfigError) as err:
        wide.from_dict(data, where="mine.json")
    message = str(err.value)
    assert message.startswith("mine.json: ") and problem in message and len(message.splitlines()) == 1


@pytest.mark.parametrize("names, termination, refused", [
    (("P2,2",), "softmax", "P(2,2) may not follow the start (32x32)"),  # pooling the image
    (("C8,3", "P2,2", "P2,2"), "softmax", "P(2,2) may not follow P(2,2) at depth 2 (16x16)"),  # pooling after pooling
    (("C8,3", "FC16"), "softmax", "FC(16) may not follow C(8,3,1) at depth 1 (32x32)"),  # FC on a large representation
    (("C8,3", "P5,3", "C8,3", "P5,3", "FC8", "FC16"), "softmax", "FC(16) may not follow FC(8)"),  # growing FC
    (("C8,3", "P5,3", "C8,3", "P5,3", "FC16", "FC16", "FC8"), "softmax", "FC(8) may not follow FC(16) at depth 6"),
    (("C8,3", "P5,3", "C8,3", "P5,3", "FC16", "C8,1"), "softmax", "C(8,1,1) may not follow FC(16)"),
    (("C8,3", "P5,3", "C8,3", "P5,3", "FC16"), "gap", "GAP may not follow FC(16)"),  # nothing left to pool
    (("C8,3", "P2,2", "C8,3", "P2,2", "FC16"), "softmax", "FC(16) may not follow P(2,2) at depth 4 (8x8)"),
    (("C8,3", "P5,3", "C8,3", "P2,2", "C8,5"), "softmax", "C(8,5,1) may not follow P(2,2) at depth 4 (5x5)"),
    (("C8,3", "P5,3", "C8,3", "P2,2", "C8,3", "P5,3"), "softmax", "P(5,3) may not follow C(8,3,1) at depth 5 (5x5)"),
    (("C8,3", "P5,3", "C8,3", "P5,3", "C8,3"), "softmax", "C(8,3,1) may not follow P(5,3) at depth 4 (2x2)"),
    (("C8,3", "P5,3", "C8,3", "P5,3", "C8,1", "P2,2"), "softmax", "P(2,2) may not follow C(8,1,1) at depth 5 (2x2)"),
    (("C16,3",), "softmax", "C(16,3,1) may not follow the start"),  # not a filter count of the layout
    (("C8,3",) * 9, "softmax", "C(8,3,1) may not follow C(8,3,1) at depth 8"),  # deeper than max_layers
])
def test_sequences_breaking_the_papers_rules_are_refused(wide, names, termination, refused):
    with pytest.raises(ConfigError) as err:
        wide.from_dict({"layers": layers(*names), "termination": termination})
    message = str(err.value)
    assert refused in message and "allowed there: " in message and len(message.splitlines()) == 1


@pytest.mark.parametrize("names", [
    ("C8,3", "P5,3", "C8,5", "P5,3"),  # 10x10 lies in the bin (inf, 8]: every receptive field and pooling
    ("C8,3", "P5,3", "C8,3", "P2,2", "C8,3", "P3,2", "FC16"),  # 5x5 in (8, 4]: 3x3 receptive fields, FC layers
    ("C8,3", "P5,3", "C8,3", "P5,3", "C8,1", "FC16", "FC16"),  # 2x2 in (4, 1]: 1x1 convolutions, two FC
])
def test_sequences_within_the_rules_are_accepted(wide, names):
    data = {"layers": layers(*names), "termination": "softmax"}
    assert wide.to_dict(wide.from_dict(data)) == data


def check_rules(arch: LayerSequence, layout: MetaqnnLayout) -> None:
    """The paper's rules, written out independently of the space's transition table."""
    size, previous, fc_run = 32, None, 0
    assert len(arch.layers) <= layout.max_layers
    for layer in arch.layers:
        smallest = 8 if size >= 8 else 4 if size >= 4 else 1  # the bins (inf, 8], (8, 4], (4, 1]
        if isinstance(previous, FullyConnected):
            assert isinstance(layer, FullyConnected) and layer.neurons <= previous.neurons and fc_run < 2
        if isinstance(layer, Conv):
            assert layer.filters in layout.conv_filters and layer.kernel in (1, 3, 5) and layer.kernel <= smallest
        elif isinstance(layer, Pool):
            assert isinstance(previous, Conv)  # not first, not after pooling or FC
            assert (layer.size, layer.stride) in ((5, 3), (3, 2), (2, 2)) and layer.size <= smallest
            size = (size - layer.size) // layer.stride + 1
        else:
            assert layer.neurons in layout.fc_neurons and (isinstance(previous, FullyConnected) or size < 8)
        fc_run = fc_run + 1 if isinstance(layer, FullyConnected) else 0
        previous = layer
    assert arch.termination == SOFTMAX or not isinstance(previous, FullyConnected)


@pytest.mark.parametrize("protocol", ["smoke", "proxy"])
def test_sampled_sequences_always_obey_the_rules(protocol, wide):
    for space in (get_space("metaqnn", load_protocol(protocol)), wide):
        rng = random.Random(0)
        samples = [space.sample(rng) for _ in range(3000)]
        for arch in samples:
            check_rules(arch, space.layout)
            assert space.from_dict(json.loads(json.dumps(space.to_dict(arch)))) == arch
        # the check is not vacuous: the draws reach every layer kind, both ends, the depth limit
        kinds = {type(layer) for arch in samples for layer in arch.layers}
        assert kinds == {Conv, Pool, FullyConnected}
        assert {arch.termination for arch in samples} == {SOFTMAX, GAP}
        assert max(len(arch.layers) for arch in samples) == space.layout.max_layers
        assert space.sample(random.Random(7)) == space.sample(random.Random(7))  # only the rng decides


# -- networks ---------------------------------------------------------------------------

def test_networks_follow_the_representation_sizes_and_the_dropout_schedule(wide, smoke):
    net = wide.build(EVERY_KIND, smoke.candidate.network)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8 * 4 * 4, 16), (16, 8), (8, 10)]
    assert [m.kernel_size for m in net.modules() if isinstance(m, nn.MaxPool2d)] == [3, 5]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 3  # one per convolution
    # after layers 2, 4 and 6 (every second) and after both FC layers (6 and 7): 0.5 k / 4
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.125, 0.25, 0.375, 0.5]
    gap = wide.build(WITH_GAP, smoke.candidate.network)
    assert [m for m in gap.modules() if isinstance(m, nn.Linear)] == []
    head = [m for m in gap.modules() if isinstance(m, nn.Conv2d)][-1]
    assert (head.in_channels, head.out_channels, head.kernel_size) == (8, 10, (1, 1))
    x = torch.randn(3, 3, 32, 32)
    for model in (net, gap):
        logits, aux = model.eval().forward_train(x)
        assert logits.shape == (3, 10) and aux is None
    assert count_params(MetaqnnNetwork(LayerSequence((), SOFTMAX), 32, 10)) == 3 * 32 * 32 * 10 + 10


def test_every_layer_kind_trains_a_real_step_on_cifar_images(wide, smoke, tiny_data):
    for arch in (EVERY_KIND, WITH_GAP):
        model = build_model(wide, arch, smoke.candidate, torch.device("cpu"), seed=0)
        before = [p.detach().clone() for p in model.parameters()]
        result = train_network(model, smoke.candidate, tiny_data.search_train, tiny_data.search_val, seed=0,
                               show_progress=False)
        assert 0.0 <= result.accuracy <= 1.0 and result.train_loss > 0
        assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # every weight was trained


# -- the protocol's [metaqnn] layout -----------------------------------------------------

def test_full_layout_is_the_papers_and_layouts_stay_out_of_the_hash(tmp_path):
    full = MetaqnnSpace.read_layout(load_protocol("full"))
    assert full == MetaqnnLayout(max_layers=12, conv_filters=(64, 128, 256, 512), fc_neurons=(512, 256, 128))
    path = tmp_path / "mine.toml"
    path.write_text('base = "proxy"\n[metaqnn]\nmax_layers = 3\n')
    mine = protocol_from_file(path)
    assert MetaqnnSpace.read_layout(mine) == dataclasses.replace(MetaqnnSpace.read_layout(load_protocol("proxy")),
                                                               max_layers=3)
    assert mine.hash == load_protocol("proxy").hash


def test_a_bad_or_missing_layout_is_refused_in_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('base = "smoke"\n[metaqnn]\nconv_filters = [8, 8]\n')
    with pytest.raises(ConfigError, match=r"\[metaqnn\]: conv_filters must list distinct sizes >= 1"):
        check_protocol(protocol_from_file(path))
    raw = json.loads(load_protocol("smoke").to_json())
    del raw["metaqnn"], raw["name"]
    path = tmp_path / "nolayout.yaml"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as err:
        get_space("metaqnn", protocol_from_file(path))
    assert str(err.value) == ("protocol nolayout has no [metaqnn] section (max_layers, conv_filters, fc_neurons); "
                              "add one to the protocol file (the built-in protocols have one)")
