"""The ENAS macro space's networks: every operation keeps its shape behind a 1x1 convolution, and
networks of each operation train and pool where the official code does."""
from __future__ import annotations

import pytest
import torch
from helpers import normalised_batch
from torch import nn

from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.enas_macro.network import make_operation
from nasbench.spaces.enas_macro.plan import OPERATIONS, reduction_layers
from nasbench.spaces.enas_macro.space import MacroArch
from nasbench.types import NetworkConfig


@pytest.fixture(scope="module")
def proxy_space():
    """6 layers, pooling after the second and the fourth."""
    return get_space("enas-macro", load_protocol("proxy"))


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_keeps_the_shape_behind_a_1x1_convolution(name):
    c = 6
    op = make_operation(name, c)
    x = torch.randn(2, c, 8, 8)
    assert op(x).shape == x.shape
    conv = {"conv_3x3": 9 * c * c, "conv_5x5": 25 * c * c, "sep_conv_3x3": 9 * c + c * c,
            "sep_conv_5x5": 25 * c + c * c}.get(name)
    conv = 0 if conv is None else conv + 2 * c  # a convolution's weights and its batch norm's
    assert sum(p.numel() for p in op.parameters()) == c * c + 2 * c + conv


@pytest.mark.parametrize("name", OPERATIONS)
def test_networks_of_every_operation_train_and_pool_where_the_code_does(name, proxy_space, tiny_data):
    torch.manual_seed(0)
    arch = MacroArch((name,) * 6, tuple(tuple(range(layer)) for layer in range(6)))  # every skip
    model = proxy_space.build(arch, NetworkConfig(channels=4, cells=5))
    sizes = []
    for layer in model.layers:
        layer.ops[name].register_forward_hook(lambda module, inputs, out: sizes.append(out.shape[1:]))
    images, labels = normalised_batch(tiny_data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(6):
        logits, aux = model.forward_train(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert aux is None and logits.shape == (16, 10)
    assert reduction_layers(6) == (1, 3)
    assert [tuple(s) for s in sizes[:6]] == [(4, 32, 32)] * 2 + [(4, 16, 16)] * 2 + [(4, 8, 8)] * 2
    assert losses[-1] < losses[0]
