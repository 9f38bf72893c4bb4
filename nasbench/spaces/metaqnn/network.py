"""The network of a MetaQNN layer sequence (Baker et al., ICLR 2017, Sect. 4.1-4.2).

Layers in the sequence's order: a convolution is zero-padded to keep the representation
size and followed by a ReLU; pooling is max pooling without padding; the first fully
connected layer flattens the representation, each is followed by a ReLU. The paper's
dropout is kept: after every second layer and after each fully connected layer, the k-th
of n dropout layers at rate 0.5 k / n, rising linearly to 0.5 (Sect. 4.2; the official
code counts n a little differently: its top CIFAR-10 model has rates 12.5, 25 and 37.5%).
The termination is a linear layer on the flattened representation (``softmax``: its logits
go to the softmax of the loss) or a 1x1 convolution to one channel per class averaged over
the image (``gap``).

Where this departs from the paper, because every method here trains with the protocol's
shared recipe (:mod:`nasbench.training`, so :meth:`MetaqnnNetwork.forward_train` returns
``(logits, None)``: no auxiliary head, and no drop path):
- the paper trains each candidate 20 epochs with Adam (learning rate 0.001, divided by 5
  every 5 epochs, batch 128) and restarts a model that does not learn in its first epoch
  at 0.4 times the learning rate, 5 learning rates in all (Sect. 4.2; the official code's
  ``hyper_parameters.py``: learning means 15% validation accuracy); here the protocol's
  stage recipe trains it once (SGD, cosine schedule, the stage's epochs), and a candidate
  whose training fails is a failed trial;
- batch norm follows every convolution (before its ReLU): the paper's CIFAR-10 networks
  have none (the official code's ``batch_norm = False``), but without per-model restarts
  one fixed SGD recipe must train every depth from 0 to ``max_layers`` layers;
- weights start from torch's default initialisation (the official Caffe networks: Xavier).
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.spaces.fbnet.blocks import conv_bn
from nasbench.spaces.metaqnn.arch import GAP, Conv, FullyConnected, LayerSequence, Pool

MAX_DROPOUT = 0.5
"""The rate of the last dropout layer (Sect. 4.2)."""


def dropout_rates(arch: LayerSequence) -> dict[int, float]:
    """Layer index -> rate of the dropout after it: after every second layer and after each
    fully connected layer, rising linearly to :data:`MAX_DROPOUT`."""
    positions = [i for i, layer in enumerate(arch.layers) if i % 2 == 1 or isinstance(layer, FullyConnected)]
    return {i: MAX_DROPOUT * (k + 1) / len(positions) for k, i in enumerate(positions)}


class MetaqnnNetwork(nn.Module):
    """The layers of one architecture in sequence, then its termination."""

    def __init__(self, arch: LayerSequence, input_size: int, num_classes: int):
        super().__init__()
        modules: list[nn.Module] = []
        channels, size, features = 3, input_size, None  # features: the flattened width, once flattened
        rates = dropout_rates(arch)

        def flatten() -> int:
            modules.append(nn.Flatten())
            return channels * size * size

        for i, layer in enumerate(arch.layers):
            if isinstance(layer, Conv):
                modules.append(conv_bn(channels, layer.filters, layer.kernel))
                channels = layer.filters
            elif isinstance(layer, Pool):
                modules.append(nn.MaxPool2d(layer.size, layer.stride))
                size = layer.output_size(size)
            else:
                features = flatten() if features is None else features
                modules += [nn.Linear(features, layer.neurons), nn.ReLU(inplace=True)]
                features = layer.neurons
            if i in rates:
                modules.append(nn.Dropout(rates[i]))
        if arch.termination == GAP:
            modules += [nn.Conv2d(channels, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        else:
            features = flatten() if features is None else features
            modules.append(nn.Linear(features, num_classes))
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """The trainer's interface: logits and no auxiliary logits."""
        return self(x), None
