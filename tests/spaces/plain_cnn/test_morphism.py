"""Net2Wider and Net2Deeper on plain CNNs: the network after a transformation computes the
function the network before it computed (eval mode, random input, before any training), and
the checks can fail: a wrong divisor or a non-identity insertion changes the function."""
from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import nn

from nasbench.spaces.plain_cnn.arch import Conv, Deepen, LayerRef, PlainCnn, Widen
from nasbench.spaces.plain_cnn.morphism import net2deeper, net2wider, transform
from nasbench.spaces.plain_cnn.network import PlainCnnNetwork, unit_name
from nasbench.spaces.plain_cnn.space import PlainCnnLayout, PlainCnnSpace

LAYOUT = PlainCnnLayout(blocks=3, filters=(4, 8, 12), units=(8, 16, 24), wider_actions=2, deeper_actions=3)
TOLERANCE = 1e-5
ARCH = PlainCnn(((Conv(4, 3), Conv(8, 5)), (Conv(4, 1),), (Conv(8, 3),)), (8, 16))
"""Two layers in a block, a 1x1 convolution, two fully connected layers: every kind of neighbour."""


@pytest.fixture(scope="module")
def space():
    return PlainCnnSpace(LAYOUT)


def trained_like(arch: PlainCnn, seed: int = 0) -> PlainCnnNetwork:
    """A network whose batch norms hold non-trivial statistics and affine parameters, as
    after training (at their defaults, normalising would be almost the identity)."""
    torch.manual_seed(seed)
    network = PlainCnnNetwork(arch, 10)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 2)
                module.bias.uniform_(-0.5, 0.5)
    return network.eval()


def difference(first: nn.Module, second: nn.Module, images: torch.Tensor) -> float:
    """The largest difference of the two networks' logits, relative to the logits' size."""
    with torch.no_grad():
        a, b = first.eval()(images), second.eval()(images)
    return ((a - b).abs().max() / a.abs().max()).item()


def images(seed: int = 1, n: int = 8) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def consumer(arch: PlainCnn, ref: LayerRef) -> str:
    """The state-dict key of the weights that read the output of the layer at ``ref``."""
    refs = arch.refs()
    following = refs.index(ref) + 1
    return f"{unit_name(arch, refs[following])}.op.weight" if following < len(refs) else "classifier.weight"


def undivided(network: PlainCnnNetwork, ref: LayerRef) -> PlainCnnNetwork:
    """``network`` (just widened at ``ref``) with the next layer's incoming weights multiplied
    back by each filter's number of copies: Net2Wider with the divisor left out."""
    broken = copy.deepcopy(network)
    state = broken.state_dict()
    rows = state[f"{unit_name(network.arch, ref)}.op.weight"].flatten(1)
    copies = (rows[:, None, :] == rows[None, :, :]).all(-1).sum(1).float()
    incoming = state[consumer(network.arch, ref)]
    incoming *= copies.view((1, -1) + (1,) * (incoming.dim() - 2))
    return broken


@pytest.mark.parametrize("ref", ARCH.refs(), ids=str)
def test_net2wider_preserves_the_function(ref, space):
    network = trained_like(ARCH)
    step = space.wider(ARCH, ref)
    wide = net2wider(network, step, torch.Generator().manual_seed(0))
    assert wide.arch == ARCH.apply(step) and wide.arch.width(ref) == step.width
    assert difference(network, wide, images()) < TOLERANCE
    assert difference(network, undivided(wide, ref), images()) > 100 * TOLERANCE  # the divisor matters


@pytest.mark.parametrize("ref", ARCH.refs(), ids=str)
def test_net2deeper_preserves_the_function(ref):
    network = trained_like(ARCH)
    kernel = None if ref.block == ARCH.fc_block else 5
    deep = net2deeper(network, Deepen(ref, kernel), images(2, 16))
    assert deep.arch == ARCH.apply(Deepen(ref, kernel))
    assert sum(deep.arch.layer_counts()) == sum(ARCH.layer_counts()) + 1
    assert difference(network, deep, images()) < TOLERANCE
    place = unit_name(deep.arch, LayerRef(ref.block, ref.index + 1))
    broken = copy.deepcopy(deep)
    with torch.no_grad():  # its affine parameters at their defaults: it normalises, and is no identity
        dict(broken.named_modules())[place].bn.weight.fill_(1.0)
        dict(broken.named_modules())[place].bn.bias.zero_()
    assert difference(network, broken, images()) > 100 * TOLERANCE
    if kernel is not None:  # the identity off the kernel's centre tap shifts the image
        shifted = copy.deepcopy(deep)
        weight = dict(shifted.named_modules())[place].op.weight
        with torch.no_grad():
            weight.copy_(weight.roll(1, dims=-1))
        assert difference(network, shifted, images()) > 100 * TOLERANCE


def test_the_inserted_batch_norm_holds_the_statistics_of_its_input_on_the_images():
    """As EAS sets them (one batch through the network in inference mode), so that in
    training too the new layer starts near the identity; without images, 0 and 1."""
    network, batch, ref = trained_like(ARCH), images(3, 32), LayerRef(1, 0)
    with torch.no_grad():
        output = network(batch, until=ref)
    bn = dict(net2deeper(network, Deepen(ref, 3), batch).named_modules())["blocks.1.1"].bn
    assert torch.allclose(bn.running_mean, output.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(bn.running_var, output.var((0, 2, 3), unbiased=False), atol=1e-6)
    assert torch.allclose(bn.weight, torch.sqrt(bn.running_var + bn.eps)) and torch.equal(bn.bias, bn.running_mean)
    plain = dict(net2deeper(network, Deepen(ref, 3)).named_modules())["blocks.1.1"].bn
    assert torch.equal(plain.running_mean, torch.zeros(4)) and torch.equal(plain.running_var, torch.ones(4))


def test_a_chain_of_transformations_preserves_the_function(space):
    rng = random.Random(0)
    network, arch, steps = trained_like(ARCH), ARCH, []
    for _ in range(4):  # four random episodes: widenings and insertions mixed, several in one block
        episode = space.random_episode(arch, rng)
        steps += episode
        for step in episode:
            arch = arch.apply(step)
    assert {type(step) for step in steps} == {Widen, Deepen} and len(steps) > 12
    grown = transform(network, steps, torch.Generator().manual_seed(0), images(2, 16))
    assert grown.arch == arch and grown.arch != ARCH
    assert difference(network, grown, images()) < TOLERANCE
    noisy = transform(network, steps, torch.Generator().manual_seed(0), images(2, 16), noise=True)
    assert TOLERANCE < difference(network, noisy, images()) < 0.1  # Net2Net's noise: close, not exact


def test_the_new_network_shares_no_weights_with_the_old():
    network = trained_like(ARCH)
    before = copy.deepcopy(network.state_dict())
    wide = net2wider(network, Widen(LayerRef(0, 0), 8), torch.Generator().manual_seed(0))
    deep = net2deeper(wide, Deepen(LayerRef(0, 0), 3))
    with torch.no_grad():
        for parameter in deep.parameters():
            parameter.add_(1.0)
    for key, value in network.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_widening_to_no_more_filters_is_refused():
    with pytest.raises(ValueError, match="is no widening"):
        net2wider(trained_like(ARCH), Widen(LayerRef(0, 1), 8), torch.Generator())
