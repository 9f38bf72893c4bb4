"""Layers the spaces share: networks train channels-last on a CPU, strided 1x1 convolutions
subsample first, and a weighted sum of operations is the sum of their weighted outputs."""
from __future__ import annotations

import pytest
import torch
from helpers import CPU
from torch import nn

from nasbench.bench import random_batch
from nasbench.data import Augmentation, network_memory_format
from nasbench.spaces import get_space
from nasbench.spaces.cell.supernet import Supernet
from nasbench.spaces.fbnet.supernet import LayerSupernet
from nasbench.spaces.layers import PointwiseConv2d, weighted_sum
from nasbench.strategies.pc_darts import PartialChannelMixedOp


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("stride,size", [(1, 8), (2, 8), (2, 9)])
def test_pointwise_conv_computes_what_a_strided_1x1_conv_computes(memory_format, stride, size):
    torch.manual_seed(0)
    pointwise = PointwiseConv2d(4, 6, stride=stride, groups=2)
    reference = nn.Conv2d(4, 6, 1, stride=stride, groups=2, bias=False)
    reference.weight.data.copy_(pointwise.weight.data)
    x = torch.randn(3, 4, size, size).contiguous(memory_format=memory_format)
    grad_out = None
    results = []
    for conv in (pointwise, reference):
        xi = x.clone().requires_grad_()
        y = conv(xi)
        grad_out = torch.randn_like(y) if grad_out is None else grad_out
        y.backward(grad_out)
        results.append((y, xi.grad, conv.weight.grad))
    for ours, theirs in zip(*results):
        torch.testing.assert_close(ours, theirs)
    assert results[0][1].is_contiguous(memory_format=memory_format)  # the gradient keeps the input's format
    with torch.no_grad():  # inference takes the strided convolution itself
        torch.testing.assert_close(pointwise(x), reference(x))


def _networks(smoke):
    cell, fbnet = get_space("cell"), get_space("fbnet", smoke)
    config = smoke.final.network
    yield from (cell.build(entry.arch, config) for entry in cell.zoo().values())
    yield Supernet(channels=4, cells=3)
    yield Supernet(channels=8, cells=3, mixed_op=PartialChannelMixedOp, edge_normalisation=True)
    yield LayerSupernet(fbnet)


def test_no_network_has_a_strided_1x1_convolution_other_than_a_pointwise_conv(smoke):
    """oneDNN's strided 1x1 weight gradient corrupts the heap on channels-last inputs with
    few channels (oneDNN issue 6035): every such convolution must be a PointwiseConv2d."""
    strided_1x1 = 0
    for network in _networks(smoke):
        for name, module in network.named_modules():
            if isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1) and module.stride != (1, 1):
                assert isinstance(module, PointwiseConv2d), f"{type(network).__name__}.{name} is a strided nn.Conv2d"
                strided_1x1 += 1
    assert strided_1x1 > 0  # the check saw what it guards


def test_cpu_batches_are_channels_last_and_networks_keep_it(smoke):
    assert network_memory_format(CPU) == torch.channels_last
    assert network_memory_format(torch.device("cuda")) == torch.contiguous_format
    # bf16 and fp16 stay NCHW on a CPU (nasbench.data.network_memory_format says why)
    assert network_memory_format(CPU, "bf16") == network_memory_format(CPU, "fp16") == torch.contiguous_format
    assert Augmentation(CPU, precision="bf16").normalise(torch.zeros(2, 3, 4, 4)).is_contiguous()
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    augment = Augmentation(CPU, cutout=8)
    batch = augment(images, torch.Generator().manual_seed(0))
    assert batch.is_contiguous(memory_format=torch.channels_last)
    assert augment.normalise(images).is_contiguous(memory_format=torch.channels_last)
    assert random_batch(2, torch.Generator().manual_seed(0)).images.is_contiguous(memory_format=torch.channels_last)
    cell = get_space("cell")
    network = cell.build(cell.zoo()["DARTS_V2"].arch, smoke.final.network)
    features = network.cells[-1]  # the last cell's output: every layer before it kept the format
    seen = []
    handle = features.register_forward_hook(lambda module, inputs, output: seen.append(output))
    network(batch)
    handle.remove()
    assert seen[0].is_contiguous(memory_format=torch.channels_last)


def test_weighted_sum_is_the_sum_of_weighted_outputs_with_their_gradients():
    torch.manual_seed(0)
    weights = torch.randn(3, requires_grad=True)
    outputs = [torch.randn(2, 4, 3, 3, requires_grad=True) for _ in range(3)]
    ours = weighted_sum(zip(weights, outputs))
    expected = sum(w * o for w, o in zip(weights, outputs))
    torch.testing.assert_close(ours, expected)
    grads = torch.autograd.grad(ours.square().sum(), [weights, *outputs])
    expected_grads = torch.autograd.grad(expected.square().sum(), [weights, *outputs])
    for ours_grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(ours_grad, expected_grad)
    assert weighted_sum([]) is None
