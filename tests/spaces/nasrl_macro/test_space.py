"""NAS-RL's layer-chain space: architectures as values, the paper's connection rules, zero-padded
concatenation, networks that train on real images, and mutation."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from nasbench.errors import ConfigError
from nasbench.spaces import get_space
from nasbench.spaces.nasrl_macro.space import (
    ConvLayer,
    LayerChain,
    NasRlLayout,
    NasRlSpace,
)
from nasbench.types import NetworkConfig

CONFIG = NetworkConfig(channels=4, cells=3)


@pytest.fixture(scope="module")
def space(smoke):
    return get_space("nasrl-macro", smoke)


def layer(inputs=(), kernel=(3, 3), stride=(1, 1), filters=4) -> ConvLayer:
    return ConvLayer(*kernel, *stride, filters, tuple(inputs))


def test_architectures_are_values_that_round_trip_through_json(space):
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(20)]
    for arch in archs:
        data = json.loads(json.dumps(space.to_dict(arch)))
        assert space.from_dict(data) == arch and hash(space.from_dict(data)) == hash(arch)
        assert len(arch.layers) == space.layout.max_layers
    assert len(set(archs)) == len(archs)
    assert str(LayerChain((layer(), layer([0], kernel=(1, 7), filters=6)))) == "0: 3x3:4<-image | 1: 1x7:6<-0"


@pytest.mark.parametrize("data, message", [
    ({"layers": []}, "has 0 layers"),
    ({"layers": [{"kernel": [3, 3], "stride": [1, 1], "filters": 4}]}, "exactly the keys"),
    ({"layers": [{"kernel": [2, 3], "stride": [1, 1], "filters": 4, "inputs": []}]}, "filter sizes"),
    ({"layers": [{"kernel": [3, 3], "stride": [2, 1], "filters": 4, "inputs": []}]}, "strides must be among"),
    ({"layers": [{"kernel": [3, 3], "stride": [1, 1], "filters": 5, "inputs": []}]}, "filters must be among"),
    ({"layers": [{"kernel": [3, 3], "stride": [1, 1], "filters": 4, "inputs": [0]}]}, "earlier layers"),
    ({"cells": []}, "a nasrl-macro architecture is"),
])
def test_malformed_architectures_are_refused_with_the_reason(space, data, message):
    with pytest.raises(ConfigError, match=message):
        space.from_dict(data)


def test_unused_layers_feed_the_classifier_and_layers_without_inputs_take_the_image(space):
    arch = LayerChain((layer(), layer(filters=6), layer([0]), layer([1, 2], filters=6)))
    assert arch.outputs() == (3,)
    assert LayerChain((layer(), layer(), layer([0]))).outputs() == (1, 2)
    network = space.build(arch, CONFIG)
    assert [m[0].in_channels for m in network.layers] == [3, 3, 4, 6 + 4]
    assert network.classifier.in_features == 6


def test_inputs_of_different_sizes_are_zero_padded_before_concatenation():
    space = NasRlSpace(NasRlLayout(max_layers=4, filter_counts=(4,), strides=(1, 2, 3)))
    arch = LayerChain((layer(stride=(2, 3)), layer(), layer([0, 1], kernel=(1, 1)), layer([2], stride=(3, 1))))
    network = space.build(arch, CONFIG).eval()
    shapes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape[-2:]))) for m in network.layers]
    x = torch.randn(2, 3, 32, 32)
    assert network(x).shape == (2, 10)
    assert shapes == [(16, 11), (32, 32), (32, 32), (11, 32)]
    for hook in hooks:
        hook.remove()
    first = network.layers[0](x)
    padded = torch.nn.functional.pad(first, (0, 32 - 11, 0, 32 - 16))
    assert torch.equal(padded[..., 16:, :], torch.zeros_like(padded[..., 16:, :]))


def test_a_network_trains_a_step_on_real_images(space, tiny_data):
    arch = space.sample(random.Random(1))
    network = space.build(arch, CONFIG)
    images, labels = tiny_data.search_train.images[:8].float() / 255, tiny_data.search_train.labels[:8]
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    logits, aux = network.forward_train(images)
    assert aux is None
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    assert torch.nn.functional.cross_entropy(network(images), labels).item() != loss.item()


def test_mutation_changes_exactly_one_choice(space):
    rng = random.Random(2)
    for _ in range(30):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        space.from_dict(space.to_dict(child))  # valid
        changed = [(a, b) for a, b in zip(arch.layers, child.layers) if a != b]
        assert len(changed) == 1
        before, after = changed[0]
        differences = [f.name for f in dataclasses.fields(ConvLayer) if getattr(before, f.name) != getattr(after, f.name)]
        assert len(differences) == 1
        if differences == ["inputs"]:
            assert len(set(before.inputs) ^ set(after.inputs)) == 1
