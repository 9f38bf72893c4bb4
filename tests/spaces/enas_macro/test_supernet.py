"""The ENAS macro supernet: a path computes exactly the architecture's network, trains only its own
operations, and weights of another shape are refused."""
from __future__ import annotations

import random

import pytest
import torch
from helpers import CPU, normalised_batch, snapshot
from torch import nn

from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.enas_macro.plan import OPERATIONS
from nasbench.spaces.enas_macro.supernet import MacroSupernet, path_weights
from nasbench.types import NetworkConfig


@pytest.fixture(scope="module")
def proxy_space():
    """6 layers, pooling after the second and the fourth."""
    return get_space("enas-macro", load_protocol("proxy"))


def test_the_supernet_path_is_the_architectures_network(proxy_space, tiny_data):
    """Given the supernet's weights (its parameter names are a superset), the network built
    from an architecture computes exactly what the supernet's path for it computes, in
    training and in eval mode, whether only the path runs or every term at weight zero."""
    torch.manual_seed(0)
    supernet = MacroSupernet(6, 4)
    images, _ = normalised_batch(tiny_data, 8)
    for seed in range(3):
        arch = proxy_space.sample(random.Random(seed))
        network = proxy_space.build(arch, NetworkConfig(channels=4, cells=5))
        shared = supernet.state_dict()
        network.load_state_dict({name: shared[name] for name in network.state_dict()})
        weights = path_weights(arch, CPU)
        for train in (False, True):  # eval first: a training pass updates the running statistics
            outputs = []
            for model, inputs in ((network, ()), (supernet, (weights, True)), (supernet, (weights, False))):
                model.train(train)
                torch.manual_seed(1)  # the same dropout mask
                outputs.append(model(images, *inputs))
            torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
            torch.testing.assert_close(outputs[2], outputs[0])


def test_a_path_trains_only_its_own_operations(proxy_space, tiny_data):
    torch.manual_seed(0)
    supernet = MacroSupernet(6, 4)
    arch = proxy_space.sample(random.Random(3))
    images, labels = normalised_batch(tiny_data, 8)
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    before = snapshot(supernet)
    nn.functional.cross_entropy(supernet(images, path_weights(arch, CPU)), labels).backward()
    optimizer.step()
    changed = {name for name, p in supernet.named_parameters() if not torch.equal(p, before[name])}
    for layer, chosen in enumerate(arch.operations):
        for op in OPERATIONS:
            mine = {name for name in before if name.startswith(f"layers.{layer}.ops.{op}.")}
            assert mine <= changed if op == chosen else not mine & changed, (layer, op)
    assert {"stem.0.weight", "classifier.weight"} <= changed


def test_supernet_weights_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"need \(3, 6\) operations and \(3, 3\) skips"):
        MacroSupernet(3, 4)(torch.zeros(1, 3, 32, 32), {"operations": torch.zeros(3, 6), "skips": torch.zeros(2, 2)})
