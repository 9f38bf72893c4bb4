"""NAS-RL's convolutional space (Zoph & Le, "Neural Architecture Search with Reinforcement
Learning", ICLR 2017, Sect. 3.1, 3.3 and 4.1): a chain of convolutional layers, each with
its filter height and width, strides and filter count, and skip connections chosen per
pair of layers (the controller's anchor points).

The paper's rules for connections that do not form a chain (Sect. 3.3):
- a layer takes the concatenation, along depth, of every earlier layer chosen as its input;
  a layer with no input takes the image;
- every layer that no later layer takes as input is concatenated into the final hidden
  state, which goes to the classifier;
- inputs of different sizes are padded with zeros to the largest before concatenation.
What the controller does not predict is fixed: the paper's space has ReLU non-linearities
and batch normalisation besides the skip connections, here in the order convolution, batch
norm, ReLU; the classifier is global average pooling and a linear layer (the paper gives
neither the order nor the classifier).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigError
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.types import ArchitectureGraph, GraphEdge, GraphNode, NetworkConfig

if TYPE_CHECKING:
    from torch import nn

FILTER_SIZES = (1, 3, 5, 7)
"""Filter heights and widths (Zoph & Le, Sect. 4.1: "filter height in [1, 3, 5, 7], filter
width in [1, 3, 5, 7]")."""


@dataclass(frozen=True)
class ConvLayer:
    """One layer: a ``filter_height`` x ``filter_width`` convolution with ``filters`` outputs
    at the given strides, over the concatenation of the earlier layers in ``inputs`` (sorted
    indices; empty: the image)."""

    filter_height: int
    filter_width: int
    stride_height: int
    stride_width: int
    filters: int
    inputs: tuple[int, ...]

    def __str__(self) -> str:
        stride = "" if (self.stride_height, self.stride_width) == (1, 1) else f"/{self.stride_height}x{self.stride_width}"
        sources = "+".join(map(str, self.inputs)) if self.inputs else "image"
        return f"{self.filter_height}x{self.filter_width}{stride}:{self.filters}<-{sources}"


@dataclass(frozen=True)
class LayerChain:
    """A NAS-RL architecture: its layers in order. A value: immutable, hashable, JSON
    round-trip; networks are built from it on demand."""

    layers: tuple[ConvLayer, ...]

    def outputs(self) -> tuple[int, ...]:
        """The layers no later layer takes as input: they form the final hidden state."""
        used = {source for layer in self.layers for source in layer.inputs}
        return tuple(i for i in range(len(self.layers)) if i not in used)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [{"kernel": [l.filter_height, l.filter_width], "stride": [l.stride_height, l.stride_width],
                            "filters": l.filters, "inputs": list(l.inputs)} for l in self.layers]}

    def __str__(self) -> str:
        return " | ".join(f"{i}: {layer}" for i, layer in enumerate(self.layers))


LAYER_KEYS = {"kernel", "stride", "filters", "inputs"}


def _parse_layer(data: Any, where: str) -> ConvLayer:
    if not isinstance(data, dict) or set(data) != LAYER_KEYS:
        raise ConfigError(f"{where}: a layer is a JSON object with exactly the keys {', '.join(sorted(LAYER_KEYS))}")
    pairs = [data["kernel"], data["stride"]]
    if any(not isinstance(p, list) or len(p) != 2 or not all(type(v) is int for v in p) for p in pairs):
        raise ConfigError(f"{where}: kernel and stride must be [height, width] pairs of integers")
    if type(data["filters"]) is not int or not isinstance(data["inputs"], list) \
            or not all(type(v) is int for v in data["inputs"]):
        raise ConfigError(f"{where}: filters must be an integer and inputs a list of layer indices")
    return ConvLayer(*data["kernel"], *data["stride"], data["filters"], tuple(data["inputs"]))


@dataclass(frozen=True)
class NasRlLayout:
    """The NAS-RL space's layer choices (Zoph & Le, ICLR 2017, Sect. 4.1): filter heights and
    widths among 1, 3, 5, 7 (fixed), a filter count among ``filter_counts`` (the paper: 24,
    36, 48, 64), a stride among ``strides`` per direction (the paper's first setting: 1 only;
    its second: 1, 2, 3), and at most ``max_layers`` layers (the paper's depth schedule ends
    at 20 layers on CIFAR-10)."""

    max_layers: int
    filter_counts: tuple[int, ...]
    strides: tuple[int, ...]

    def check(self, where: str) -> None:
        require(self.max_layers >= 1, where, "max_layers must be >= 1")
        require(len(self.filter_counts) >= 1 and all(c >= 1 for c in self.filter_counts), where,
                 "filter_counts must list at least one count >= 1")
        require(len(self.strides) >= 1 and all(s >= 1 for s in self.strides), where,
                 "strides must list at least one stride >= 1")


class NasRlSpace(SearchSpace[LayerChain]):
    name = "nasrl-macro"
    description = ("NAS-RL's chain of convolutions: per layer filter height and width (1-7), strides and filter "
                   "count (the protocol's [nasrl_macro]) and skip connections from any earlier layers, "
                   "concatenated; unused layers feed the classifier")
    protocol_section = "nasrl_macro"
    layout_class = NasRlLayout

    def __init__(self, layout: NasRlLayout):
        self.layout = layout

    def describe_network(self, config: NetworkConfig) -> str:
        """The layout's size: its network does not depend on ``config``'s channels and cells."""
        return f"up to {self.layout.max_layers} layers of {'/'.join(map(str, self.layout.filter_counts))} filters"

    def random_layer(self, index: int, rng: random.Random) -> ConvLayer:
        """Layer ``index`` drawn uniformly: every choice, and each earlier layer as an input
        with probability 1/2 (what the controller's sigmoids start from)."""
        strides = self.layout.strides
        return ConvLayer(rng.choice(FILTER_SIZES), rng.choice(FILTER_SIZES), rng.choice(strides), rng.choice(strides),
                         rng.choice(self.layout.filter_counts), tuple(j for j in range(index) if rng.random() < 0.5))

    def sample(self, rng: random.Random) -> LayerChain:
        """``max_layers`` uniformly drawn layers (the depth NAS-RL's schedule ends at)."""
        return LayerChain(tuple(self.random_layer(i, rng) for i in range(self.layout.max_layers)))

    def mutate(self, arch: LayerChain, rng: random.Random) -> LayerChain:
        """One layer, uniformly, redraws one of its choices (a filter size, a stride, the
        filter count, or one connection from an earlier layer flips)."""
        layers = list(arch.layers)
        index = rng.randrange(len(layers))
        layer = layers[index]
        choices = {"filter_height": FILTER_SIZES, "filter_width": FILTER_SIZES, "filters": self.layout.filter_counts,
                   "stride_height": self.layout.strides, "stride_width": self.layout.strides}
        fields = [f for f, values in choices.items() if len(values) > 1] + (["inputs"] if index > 0 else [])
        field = rng.choice(fields)
        if field == "inputs":
            source = rng.randrange(index)
            layers[index] = replace(layer, inputs=tuple(sorted(set(layer.inputs) ^ {source})))
        else:
            layers[index] = replace(layer, **{field: rng.choice([v for v in choices[field] if v != getattr(layer, field)])})
        return LayerChain(tuple(layers))

    def build(self, arch: LayerChain, config: NetworkConfig) -> nn.Module:
        """The architecture fixes the network's size; ``config`` gives only the classes."""
        from nasbench.spaces.nasrl_macro.network import ChainNetwork

        self._check(arch)
        return ChainNetwork(arch, config.num_classes)

    def from_dict(self, data: Any, where: str = "architecture") -> LayerChain:
        if not isinstance(data, dict) or set(data) != {"layers"} or not isinstance(data["layers"], list):
            raise ConfigError(f"{where}: a nasrl-macro architecture is a JSON object {{\"layers\": [...]}}")
        arch = LayerChain(tuple(_parse_layer(layer, f"{where}: layer {i}") for i, layer in enumerate(data["layers"])))
        self._check(arch, where)
        return arch

    def to_dict(self, arch: LayerChain) -> dict[str, Any]:
        return arch.to_dict()

    def graph(self, arch: LayerChain) -> tuple[ArchitectureGraph, ...]:
        """The layers with their filter sizes and counts, an edge from each of a layer's inputs
        (from the image where it has none), and the unused layers into the classifier."""
        self._check(arch)
        layers = [GraphNode(f"l{i}", f"{i}: {l.filter_height}x{l.filter_width}, {l.filters}"
                            + ("" if (l.stride_height, l.stride_width) == (1, 1) else
                               f" /{l.stride_height}x{l.stride_width}"), "layer")
                  for i, l in enumerate(arch.layers)]
        nodes = (GraphNode("image", "image", "input"), *layers, GraphNode("head", "concat, pool, fc", "output"))
        edges = [GraphEdge(f"l{j}" if layer.inputs else "image", f"l{i}")
                 for i, layer in enumerate(arch.layers) for j in (layer.inputs or (None,))]
        edges += [GraphEdge(f"l{i}", "head") for i in arch.outputs()]
        return (ArchitectureGraph("network", nodes, tuple(edges)),)

    def _check(self, arch: LayerChain, where: str = "architecture") -> None:
        layout = self.layout
        if not 1 <= len(arch.layers) <= layout.max_layers:
            raise ConfigError(f"{where}: has {len(arch.layers)} layers; the protocol's [nasrl_macro] allows 1 to "
                              f"{layout.max_layers}")
        for i, layer in enumerate(arch.layers):
            problem = None
            if {layer.filter_height, layer.filter_width} - set(FILTER_SIZES):
                problem = f"filter sizes must be among {FILTER_SIZES}"
            elif {layer.stride_height, layer.stride_width} - set(layout.strides):
                problem = f"strides must be among {layout.strides}"
            elif layer.filters not in layout.filter_counts:
                problem = f"filters must be among {layout.filter_counts}"
            elif list(layer.inputs) != sorted(set(layer.inputs)) or any(not 0 <= j < i for j in layer.inputs):
                problem = f"inputs must be distinct earlier layers (0 to {i - 1}), in increasing order"
            if problem:
                raise ConfigError(f"{where}: layer {i} ({layer}): {problem}")
