"""Function-preserving transformations of a trained plain CNN (Chen, Goodfellow & Shlens,
"Net2Net: Accelerating Learning via Knowledge Transfer", ICLR 2016, Sect. 2.1-2.2; as EAS
applies them, github.com/han-cai/EAS code/models/layers.py L36-49, L144-161, L230-271 and
convnet.py L116-156). The network after a transformation computes the function the network
before it computed (in eval mode, up to float rounding), so a child starts where its parent
ended.

- Net2Wider (:func:`net2wider`): the widened layer's new filters copy old ones chosen by a
  random mapping (every old filter once, then uniform draws: layers.py L44-49), with their
  batch-norm parameters and statistics; the next layer's incoming weights of each old filter
  are divided by how many copies it now has (its "magnifier", L36-41).
- Net2Deeper (:func:`net2deeper`): after a layer, a layer as wide as it whose convolution is
  the identity (the kernel's centre tap an identity matrix; for a fully connected layer the
  identity matrix) and whose batch norm undoes its own normalisation at its running
  statistics (gamma = sqrt(var + eps), beta = mean: layers.py L151-157); the ReLU after it
  changes nothing, its input being a ReLU's output. EAS sets those statistics from one batch
  of 64 training images through the network (convnet.py L116-156, arch_search L323), which
  keeps the layer close to the identity in training mode too; without images they are 0 and 1.

Noise is off unless asked for: EAS adds Gaussian noise of 1e-2 times the weights' standard
deviation to the widened copies and of 1e-3 to an inserted identity (arch_search L211-214,
layers.py L7-22, L242, L262), which breaks exact preservation (Net2Net adds it so that the
copies can learn apart).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from nasbench.spaces.plain_cnn.arch import (
    Deepen,
    LayerRef,
    PlainCnn,
    Transformation,
    Widen,
)
from nasbench.spaces.plain_cnn.network import (
    CLASSIFIER,
    PlainCnnNetwork,
    conv_unit,
    fc_unit,
    unit_name,
)

WIDER_NOISE = 1e-2
DEEPER_NOISE = 1e-3
State = dict[str, torch.Tensor]
NORM_STATE = ("weight", "bias", "running_mean", "running_var")
"""The batch-norm entries indexed by channel (``num_batches_tracked`` is one count)."""


def replication(old: int, new: int, generator: torch.Generator) -> torch.Tensor:
    """Net2Wider's mapping: for each of ``new`` outputs the old one it copies, every old one
    first in place, the rest drawn uniformly."""
    return torch.cat([torch.arange(old), torch.randint(old, (new - old,), generator=generator)])


def net2wider(network: PlainCnnNetwork, step: Widen, generator: torch.Generator,
              noise: bool = False) -> PlainCnnNetwork:
    """``network`` with the layer at ``step.ref`` widened to ``step.width``."""
    arch = network.arch
    old = arch.width(step.ref)
    if step.width <= old:
        raise ValueError(f"{arch}: widening {step.ref} from {old} to {step.width} is no widening")
    state = _cpu_state(network)
    mapping = replication(old, step.width, generator)
    magnifier = 1.0 / torch.bincount(mapping, minlength=old)[mapping].float()
    producer = unit_name(arch, step.ref)
    weight = state[f"{producer}.op.weight"][mapping].clone()
    if noise:
        copies = weight[old:]
        copies += torch.randn(copies.shape, generator=generator) * WIDER_NOISE * copies.std(unbiased=False)
    state[f"{producer}.op.weight"] = weight
    for name in NORM_STATE:
        state[f"{producer}.bn.{name}"] = state[f"{producer}.bn.{name}"][mapping].clone()
    refs = arch.refs()
    following = refs.index(step.ref) + 1
    consumer = f"{unit_name(arch, refs[following])}.op" if following < len(refs) else CLASSIFIER
    incoming = state[f"{consumer}.weight"]
    shape = (1, -1) + (1,) * (incoming.dim() - 2)
    state[f"{consumer}.weight"] = incoming[:, mapping] * magnifier.view(shape)
    return _network(arch.apply(step), state, network)


def net2deeper(network: PlainCnnNetwork, step: Deepen, images: torch.Tensor | None = None,
               generator: torch.Generator | None = None, noise: bool = False) -> PlainCnnNetwork:
    """``network`` with an identity layer inserted after ``step.ref``; its batch norm at the
    statistics of that layer's output on ``images`` (normalised, on the network's device)."""
    arch = network.arch
    width = arch.width(step.ref)
    if step.ref.block == arch.fc_block:
        if step.kernel is not None:
            raise ValueError("a fully connected layer has no kernel")
        unit = fc_unit(width, width)
        identity = torch.eye(width)
    else:
        unit = conv_unit(width, width, step.kernel)
        identity = torch.zeros_like(unit.op.weight)
        identity[:, :, step.kernel // 2, step.kernel // 2] = torch.eye(width)
    if noise:
        identity = identity + torch.randn(identity.shape, generator=generator) * DEEPER_NOISE * identity.std(unbiased=False)
    mean, var = _statistics(network, step.ref, images, width)
    with torch.no_grad():
        unit.op.weight.copy_(identity)
        unit.bn.running_mean.copy_(mean)
        unit.bn.running_var.copy_(var)
        unit.bn.weight.copy_(torch.sqrt(var + unit.bn.eps))
        unit.bn.bias.copy_(mean)
    place = unit_name(arch, LayerRef(step.ref.block, step.ref.index + 1))
    inserted = {f"{place}.{k}": v for k, v in unit.state_dict().items()}
    state = _renamed(_cpu_state(network), arch, step.ref, inserted)
    return _network(arch.apply(step), state, network)


def transform(network: PlainCnnNetwork, steps: Sequence[Transformation], generator: torch.Generator,
              images: torch.Tensor | None = None, noise: bool = False) -> PlainCnnNetwork:
    """``network`` after ``steps`` in order (its architecture: ``.arch``)."""
    for step in steps:
        if isinstance(step, Widen):
            network = net2wider(network, step, generator, noise)
        else:
            network = net2deeper(network, step, images, generator, noise)
    return network


@torch.no_grad()
def _statistics(network: PlainCnnNetwork, ref: LayerRef, images: torch.Tensor | None,
                width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, the mean and (biased) variance of ``ref``'s output on ``images``."""
    if images is None:
        return torch.zeros(width), torch.ones(width)
    training = network.training
    output = network.eval()(images, until=ref).float()
    network.train(training)
    dims = [d for d in range(output.dim()) if d != 1]
    return output.mean(dims).cpu(), output.var(dims, unbiased=False).cpu()


def _cpu_state(network: nn.Module) -> State:
    """A copy of ``network``'s state on the CPU (never its own tensors: the new network must
    not share weights with the old)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}


def _renamed(state: State, arch: PlainCnn, ref: LayerRef, inserted: State) -> State:
    """``state`` with the layers after ``ref`` in its block moved one place on and ``inserted``
    (already named for the place after ``ref``) in the free place."""
    moved = {unit_name(arch, LayerRef(ref.block, i)): unit_name(arch, LayerRef(ref.block, i + 1))
             for i in range(ref.index + 1, arch.layer_counts()[ref.block])}
    renamed = dict(inserted)
    for key, value in state.items():
        parts = key.split(".")
        unit = ".".join(parts[:{"blocks": 3, "fcs": 2}.get(parts[0], 0)])
        renamed[moved[unit] + key[len(unit):] if unit in moved else key] = value
    return renamed


def _network(arch: PlainCnn, state: State, like: PlainCnnNetwork) -> PlainCnnNetwork:
    """A network of ``arch`` holding ``state``, on ``like``'s device and in its mode."""
    with torch.device("meta"):  # no initialisation: every tensor comes from ``state``
        network = PlainCnnNetwork(arch, like.classifier.out_features)
    network.load_state_dict(state, assign=True)
    return network.to(like.classifier.weight.device).train(like.training)
