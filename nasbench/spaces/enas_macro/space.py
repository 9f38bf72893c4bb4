"""ENAS' macro search space (Pham et al., "Efficient Neural Architecture Search via Parameter
Sharing", ICML 2018, Sect. 2.3, Fig. 3-4): a whole network of L layers, each one of six
operations on the previous layer's output plus skip connections from any earlier layers,
6^L * 2^(L(L-1)/2) networks (1.6e29 at the paper's L = 12). L comes from the protocol's
``[enas_macro]`` layout (:class:`EnasMacroLayout`), the width from the
network config's channels; :mod:`nasbench.spaces.enas_macro.network` builds the networks.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigError
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.enas_macro.plan import OPERATIONS, reduction_layers
from nasbench.types import ArchitectureGraph, GraphEdge, GraphNode, NetworkConfig

if TYPE_CHECKING:
    from torch import nn

SKIPS_GROUP = "skips"
"""The one group of :meth:`EnasMacroSpace.skip_share`: all of a network's skip choices."""


@dataclass(frozen=True)
class MacroArch:
    """An architecture of the macro space: per layer its operation and the earlier states it
    adds as skip connections. ``skips[i]`` lists, in increasing order, states j < i, state j
    being layer j's input (the stem's output for j = 0, layer j - 1's output otherwise); layer
    i's own input, state i, is its operation's input. A value: immutable, hashable, JSON
    round-trip; networks are built from it on demand."""

    operations: tuple[str, ...]
    skips: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"operations": list(self.operations), "skips": [list(s) for s in self.skips]}

    def __str__(self) -> str:
        """One layer after the other, skips as ``+j``: ``conv_3x3 | max_pool_3x3 +0 | ...``."""
        return " | ".join(" ".join([op, *(f"+{j}" for j in skips)]) for op, skips in zip(self.operations, self.skips))


@dataclass(frozen=True)
class EnasMacroLayout:
    """ENAS' macro space's depth (Pham et al., ICML 2018, Sect. 2.3: "In our experiments,
    L = 12"): ``layers`` layers, with pooling after layers L/3 and 2L/3 (the official
    general_child.py). The width is the network config's channels."""

    layers: int

    def check(self, where: str) -> None:
        require(self.layers >= 3, where, "layers must be >= 3 (the network pools after layers L/3 and 2L/3)")


class EnasMacroSpace(SearchSpace[MacroArch]):
    name = "enas-macro"
    description = ("ENAS macro space: L layers (the protocol's [enas_macro] layout), each one of 6 operations "
                   "(3x3/5x5 convolutions and separable convolutions, 3x3 average and max pooling) plus skip "
                   "connections from any earlier layers; pooling after L/3 and 2L/3 layers")
    protocol_section = "enas_macro"
    layout_class = EnasMacroLayout

    def __init__(self, layout: EnasMacroLayout):
        self.layers = layout.layers

    def describe_network(self, config: NetworkConfig) -> str:
        """The layout's depth at ``config``'s width (its cells do not apply)."""
        first, second = reduction_layers(self.layers)
        return f"{self.layers} layers of {config.channels} channels, pooling after layers {first + 1} and {second + 1}"

    def sample(self, rng: random.Random) -> MacroArch:
        """Every operation uniformly among the 6 and every skip connection with probability
        1/2 (what the paper's controller draws before it learns: its parameters start
        uniform in [-0.1, 0.1], its logits flattened by temperature 5, Sect. 3.2)."""
        operations = tuple(rng.choice(OPERATIONS) for _ in range(self.layers))
        skips = tuple(tuple(j for j in range(i) if rng.random() < 0.5) for i in range(self.layers))
        return MacroArch(operations, skips)

    def mutate(self, arch: MacroArch, rng: random.Random) -> MacroArch:
        """One layer, uniformly; past the first layer, with probability 1/2 one of its skip
        connections, uniformly, is added or removed, else (and always in the first layer,
        which has no skip choice) its operation is replaced by another."""
        layer = rng.randrange(self.layers)
        operations, skips = list(arch.operations), list(arch.skips)
        if layer > 0 and rng.random() < 0.5:
            skips[layer] = tuple(sorted(set(skips[layer]) ^ {rng.randrange(layer)}))
        else:
            operations[layer] = rng.choice([op for op in OPERATIONS if op != operations[layer]])
        return MacroArch(tuple(operations), tuple(skips))

    def skip_share(self, arch: MacroArch) -> dict[str, float]:
        """The share of the L(L-1)/2 possible skip connections that are made (the official
        code's ``skip_rate``; ENAS' KL penalty pulls it towards 0.4)."""
        return {SKIPS_GROUP: sum(map(len, arch.skips)) / (self.layers * (self.layers - 1) / 2)}

    def graph(self, arch: MacroArch) -> tuple[ArchitectureGraph, ...]:
        """The network as ENAS' Fig. 4 draws it: the layers in a chain, each with its operation
        (and the pooling after it where the network pools), and an edge from every state a
        layer adds as a skip connection (state 0 is the stem's output)."""
        self._check(arch)
        pooled = reduction_layers(self.layers)
        layers = [GraphNode(f"l{i}", f"{i}: {op}" + (", pool" if i in pooled else ""), "layer")
                  for i, op in enumerate(arch.operations)]
        nodes = (GraphNode("stem", "stem", "input"), *layers, GraphNode("head", "pool, fc", "output"))
        chain = [GraphEdge(a.id, b.id) for a, b in zip(nodes, nodes[1:])]
        skips = [GraphEdge(nodes[j].id, f"l{i}") for i, sources in enumerate(arch.skips) for j in sources]
        return (ArchitectureGraph("network", nodes, tuple(chain + skips)),)

    def build(self, arch: MacroArch, config: NetworkConfig) -> nn.Module:
        """The layout fixes the depth, ``config`` the width and the classes (the network has
        no auxiliary head: ``config.auxiliary`` does not apply, nor do its cells)."""
        from nasbench.spaces.enas_macro.network import MacroNetwork

        self._check(arch)
        return MacroNetwork(arch.operations, arch.skips, config.channels, config.num_classes)

    def from_dict(self, data: Any, where: str = "architecture") -> MacroArch:
        if (not isinstance(data, dict) or set(data) != {"operations", "skips"}
                or not isinstance(data["operations"], list) or not isinstance(data["skips"], list)
                or not all(isinstance(s, list) for s in data["skips"])):
            raise ConfigError(f"{where}: an enas-macro architecture is a JSON object {{\"operations\": [...], "
                              f"\"skips\": [[...], ...]}} with one operation and one list of skip inputs per layer")
        arch = MacroArch(tuple(data["operations"]), tuple(tuple(s) for s in data["skips"]))
        self._check(arch, where)
        return arch

    def to_dict(self, arch: MacroArch) -> dict[str, Any]:
        return arch.to_dict()

    def _check(self, arch: MacroArch, where: str = "architecture") -> None:
        if len(arch.operations) != self.layers or len(arch.skips) != self.layers:
            raise ConfigError(f"{where}: has {len(arch.operations)} operations and {len(arch.skips)} skip lists, but "
                              f"the protocol's enas-macro layout has {self.layers} layers")
        unknown = [op for op in arch.operations if op not in OPERATIONS]
        if unknown:
            raise ConfigError(f"{where}: unknown operation {unknown[0]!r} (known: {', '.join(OPERATIONS)})")
        for layer, skips in enumerate(arch.skips):
            if not all(type(j) is int and 0 <= j < layer for j in skips) or list(skips) != sorted(set(skips)):
                allowed = f"increasing integers in 0..{layer - 1} (state j is layer j's input)" if layer else "empty"
                raise ConfigError(f"{where}: layer {layer}'s skips {list(skips)} must be {allowed}")
