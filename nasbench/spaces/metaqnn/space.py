"""The MetaQNN space (Baker, Gupta, Naik & Raskar, "Designing Neural Network Architectures
using Reinforcement Learning", ICLR 2017, Sect. 4.1 and Table 1) as the agent's state
space: an architecture is a walk from the start state, one layer per step, to a
termination state. The layer sizes come from the protocol's ``[metaqnn]`` layout
(:class:`MetaqnnLayout`); the rest is the paper's.

A state is the last layer with its depth, the representation-size bin the agent sees and,
after fully connected layers, how many came in a row. The rules (Sect. 4.1):
- a termination may follow any state; global average pooling only a spatial
  representation (not a fully connected layer); at the layout's ``max_layers`` only a
  termination may follow;
- convolutions (receptive field 1, 3 or 5, stride 1) and fully connected layers may
  follow the start, a convolution or a pooling layer; pooling ((5, 3), (3, 2), (2, 2)) only
  a convolution: never pooling after pooling ("equivalent to a single, larger pooling
  layer"), and not on the image (the official code's ``allow_initial_pooling = False``);
- a receptive field may not exceed the representation: within a bin, convolution and
  pooling sizes up to the bin's smallest representation size, so every state of a bin
  has the same choices (bin (inf, 8]: all; (8, 4]: sizes 1 and 3, poolings (3, 2) and
  (2, 2); (4, 1]: 1x1 convolutions only);
- fully connected layers only on representations in the bins (8, 4] and (4, 1], so that
  their weights stay reasonably few; at most two in a row, each with no more neurons than
  the one before, and after one only another or the termination.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from nasbench.errors import ConfigError
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.metaqnn.arch import (
    GAP,
    SOFTMAX,
    Action,
    Conv,
    FullyConnected,
    Layer,
    LayerSequence,
    Pool,
    action_name,
    parse_sequence,
)
from nasbench.types import ArchitectureGraph, GraphEdge, GraphNode, NetworkConfig

if TYPE_CHECKING:
    from torch import nn

REPRESENTATION_BINS = (8, 4, 1)
"""The smallest representation size of each of the paper's bins (inf, 8], (8, 4], (4, 1] (Table 1)."""
RECEPTIVE_FIELDS = (1, 3, 5)
"""Convolutions' receptive fields (Table 1)."""
POOLINGS = (Pool(5, 3), Pool(3, 2), Pool(2, 2))
"""Pooling (receptive field, stride) pairs (Table 1)."""
FC_BELOW = 8
"""Fully connected layers only on representations smaller than this (the bins (8, 4] and (4, 1])."""
MAX_CONSECUTIVE_FC = 2
"""At most two fully connected layers in a row (Table 1: "# consecutive FC layers < 3")."""


@dataclass(frozen=True)
class AgentState:
    """Where the agent is: ``depth`` layers written, the last one ``last`` (None at the
    start), the representation ``size`` (its side; 1 after a fully connected layer) and
    the number of fully connected layers in a row."""

    depth: int
    last: Layer | None
    size: int
    consecutive_fc: int = 0

    @property
    def size_bin(self) -> int:
        """The bin the agent sees instead of the size, by its smallest size."""
        return next(low for low in REPRESENTATION_BINS if self.size >= low)

    def key(self) -> str:
        """The state as the agent tells states apart (its Q-table key): the size only by its bin."""
        return f"{self.depth} {self.last or 'start'} R{self.size_bin} FC{self.consecutive_fc}"

    def __str__(self) -> str:
        where = "the start" if self.last is None else f"{self.last} at depth {self.depth}"
        return f"{where} ({self.size}x{self.size})"


@dataclass(frozen=True)
class MetaqnnLayout:
    """The MetaQNN space's layer sizes (Baker et al., ICLR 2017, Table 1): at most
    ``max_layers`` layers before the termination (the paper's layer-depth limit: 12; the
    official code's CIFAR-10 settings allow 18), convolutions of ``conv_filters`` filters
    (the paper: 64, 128, 256, 512) and fully connected layers of ``fc_neurons`` neurons
    (the paper: 512, 256, 128). Receptive fields, pooling options and representation-size
    bins are the paper's in every layout."""

    max_layers: int
    conv_filters: tuple[int, ...]
    fc_neurons: tuple[int, ...]

    def check(self, where: str) -> None:
        require(self.max_layers >= 1, where, "max_layers must be >= 1")
        for name in ("conv_filters", "fc_neurons"):
            values = getattr(self, name)
            require(len(values) >= 1 and all(v >= 1 for v in values) and len(set(values)) == len(values), where,
                     f"{name} must list distinct sizes >= 1")


class MetaqnnSpace(SearchSpace[LayerSequence]):
    name = "metaqnn"
    description = ("MetaQNN's layer sequences: convolutions (receptive field 1, 3 or 5, the protocol's [metaqnn] "
                   "filter counts), max pooling (5,3), (3,2) or (2,2), up to two fully connected layers, ending in "
                   "softmax or global average pooling; at most [metaqnn] max_layers layers")
    protocol_section = "metaqnn"
    layout_class = MetaqnnLayout

    def __init__(self, layout: MetaqnnLayout):
        self.layout = layout
        self._actions: dict[AgentState, tuple[Action, ...]] = {}

    def describe_network(self, config: NetworkConfig) -> str:
        """The layout's size: its networks do not depend on ``config``'s channels and cells."""
        return (f"up to {self.layout.max_layers} layers, convolutions of {'/'.join(map(str, self.layout.conv_filters))} "
                f"filters, fully connected layers of {'/'.join(map(str, self.layout.fc_neurons))} neurons")

    # -- the agent's state space ---------------------------------------------------------
    def start(self) -> AgentState:
        return AgentState(0, None, self.input_size)

    def actions(self, state: AgentState) -> tuple[Action, ...]:
        """What may follow ``state`` (the module docstring's rules), in a fixed order."""
        if state not in self._actions:
            self._actions[state] = self._allowed(state)
        return self._actions[state]

    def _allowed(self, state: AgentState) -> tuple[Action, ...]:
        last, layout = state.last, self.layout
        if isinstance(last, FullyConnected):
            more = state.depth < layout.max_layers and state.consecutive_fc < MAX_CONSECUTIVE_FC
            return (*(FullyConnected(n) for n in layout.fc_neurons if more and n <= last.neurons), SOFTMAX)
        if state.depth == layout.max_layers:
            return SOFTMAX, GAP
        bound = state.size_bin
        layers: list[Action] = [Conv(f, k) for f in layout.conv_filters for k in RECEPTIVE_FIELDS if k <= bound]
        if isinstance(last, Conv):
            layers += [pool for pool in POOLINGS if pool.size <= bound]
        if state.size < FC_BELOW:
            layers += [FullyConnected(n) for n in layout.fc_neurons]
        return *layers, SOFTMAX, GAP

    def advance(self, state: AgentState, layer: Layer) -> AgentState:
        """The state after ``layer``."""
        if isinstance(layer, FullyConnected):
            return AgentState(state.depth + 1, layer, 1, state.consecutive_fc + 1)
        size = layer.output_size(state.size) if isinstance(layer, Pool) else state.size
        return AgentState(state.depth + 1, layer, size)

    def architectures(self) -> int:
        """How many distinct architectures the layout allows (the walks from the start)."""
        counts: dict[AgentState, int] = {}

        def count(state: AgentState) -> int:
            if state not in counts:
                counts[state] = sum(1 if isinstance(action, str) else count(self.advance(state, action))
                                    for action in self.actions(state))
            return counts[state]

        return count(self.start())

    def walk(self, choose: Callable[[AgentState, Sequence[Action]], Action]) -> LayerSequence:
        """The architecture of a walk from the start, ``choose`` picking each action among
        those the state allows, until it picks a termination."""
        state, layers = self.start(), []
        while True:
            action = choose(state, self.actions(state))
            if isinstance(action, str):
                return LayerSequence(tuple(layers), action)
            layers.append(action)
            state = self.advance(state, action)

    def trajectory(self, arch: LayerSequence, where: str = "architecture") -> list[tuple[AgentState, Action]]:
        """The (state, action) pairs of the walk that writes ``arch``; an error naming the
        first action its state does not allow."""
        state, steps = self.start(), []
        for action in arch.actions():
            allowed = self.actions(state)
            if action not in allowed:
                raise ConfigError(f"{where}: {action_name(action)} may not follow {state} under the protocol's "
                                  f"[metaqnn] layout (allowed there: {', '.join(map(action_name, allowed))})")
            steps.append((state, action))
            if not isinstance(action, str):
                state = self.advance(state, action)
        return steps

    # -- the SearchSpace interface -------------------------------------------------------
    def sample(self, rng: random.Random) -> LayerSequence:
        """A uniformly random walk: each action uniformly among those its state allows (the
        agent's exploration at epsilon = 1, Sect. 4.2)."""
        return self.walk(lambda state, actions: rng.choice(actions))

    def build(self, arch: LayerSequence, config: NetworkConfig) -> nn.Module:
        """The architecture fixes the network's size; ``config`` gives only the classes."""
        from nasbench.spaces.metaqnn.network import MetaqnnNetwork

        self.trajectory(arch)
        return MetaqnnNetwork(arch, self.input_size, config.num_classes)

    def from_dict(self, data: Any, where: str = "architecture") -> LayerSequence:
        arch = parse_sequence(data, where)
        self.trajectory(arch, where)
        return arch

    def to_dict(self, arch: LayerSequence) -> dict[str, Any]:
        return arch.to_dict()

    def graph(self, arch: LayerSequence) -> tuple[ArchitectureGraph, ...]:
        """The sequence as the paper writes it (Table 1's notation): the image, every layer, the
        termination."""
        layers = [GraphNode(f"l{i}", str(layer), "layer") for i, layer in enumerate(arch.layers)]
        nodes = (GraphNode("image", f"image {self.input_size}px", "input"), *layers,
                 GraphNode("end", action_name(arch.termination), "output"))
        return (ArchitectureGraph("network", nodes, tuple(GraphEdge(a.id, b.id) for a, b in zip(nodes, nodes[1:]))),)
