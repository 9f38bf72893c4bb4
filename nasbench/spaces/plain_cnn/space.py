"""EAS' plain CNN space (Cai, Chen, Zhang, Yu & Wang, AAAI 2018; github.com/han-cai/EAS
code/arch_search/arch_search_convnet_net2net.py): the networks its meta-controller reaches
from the start network by Net2Wider and Net2Deeper steps.

- The start network (start_nets/start_net_convnet_small_C10+/net.config): ``blocks``
  blocks of one 3x3 convolution each, as wide as the layout's narrowest filter count, max
  pooling between them, global average pooling, one hidden fully connected layer of the
  narrowest unit count, the classifier.
- Widths step through the layout's ladders: Net2Wider takes a layer to the next wider entry
  (``filters`` for convolutions, ``units`` for fully connected layers; L67-104); a layer at
  the widest entry is not widened again.
- Net2Deeper inserts, after any layer, a layer as wide; in a convolution block a convolution
  of kernel 1, 3 or 5 (L114-156). Blocks never change in number.

The layout (``[plain_cnn]``, :class:`PlainCnnLayout`) also fixes one episode: the Net2Wider
and Net2Deeper actions a child is its parent after (the official 4 and 5, L218-220).
:meth:`PlainCnnSpace.sample` is the official random-search baseline's episode from the start
network (L264-288): the actions in a random order, a Net2Wider action widening each layer
with probability 1/2, a Net2Deeper action at a uniform block, place and kernel.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigError
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.plain_cnn.arch import (
    KERNELS,
    Conv,
    Deepen,
    LayerRef,
    PlainCnn,
    Transformation,
    Widen,
    parse_arch,
)
from nasbench.types import ArchitectureGraph, GraphEdge, GraphNode, NetworkConfig

if TYPE_CHECKING:
    from torch import nn

START_KERNEL = 3
"""The start network's convolutions are 3x3 (net.config)."""
MAX_BLOCKS = 6
"""Five 2x2 poolings take a 32-pixel image to one pixel."""


@dataclass(frozen=True)
class PlainCnnLayout:
    """The plain CNN space's sizes: ``blocks`` convolution blocks (the official start
    network: 4), the filter counts Net2Wider steps a convolution through (the official code:
    4 to 40 by 4, L169; its commented-out paper-scale list 16, 32, 64, 96, ..., 640, L171)
    and the unit counts of fully connected layers (8 to 80 by 8, L170; 64 to 1280, L172);
    the start network takes the first of each. One episode is ``wider_actions`` Net2Wider
    and ``deeper_actions`` Net2Deeper actions (the official 4 and 5, L219-220)."""

    blocks: int
    filters: tuple[int, ...]
    units: tuple[int, ...]
    wider_actions: int
    deeper_actions: int

    def check(self, where: str) -> None:
        require(1 <= self.blocks <= MAX_BLOCKS, where, f"blocks must be 1 to {MAX_BLOCKS}")
        for name in ("filters", "units"):
            values = getattr(self, name)
            require(len(values) >= 1 and values[0] >= 1 and list(values) == sorted(set(values)), where,
                    f"{name} must list increasing widths >= 1")
        require(self.wider_actions >= 0 and self.deeper_actions >= 0, where, "actions must be >= 0")
        require(self.wider_actions + self.deeper_actions >= 1, where, "an episode needs at least one action")


class PlainCnnSpace(SearchSpace[PlainCnn]):
    name = "plain-cnn"
    description = ("EAS' plain CNNs: the start network's blocks of convolutions (kernel 1, 3 or 5, widths on the "
                   "protocol's [plain_cnn] ladder), max pooling between blocks, global pooling, fully connected "
                   "layers; grown by Net2Wider and Net2Deeper")
    protocol_section = "plain_cnn"
    layout_class = PlainCnnLayout

    def __init__(self, layout: PlainCnnLayout):
        self.layout = layout

    def describe_network(self, config: NetworkConfig) -> str:
        """The layout's size: the networks do not depend on ``config``'s channels and cells."""
        return (f"{self.layout.blocks} blocks, convolutions of {'/'.join(map(str, self.layout.filters))} filters, "
                f"fully connected layers of {'/'.join(map(str, self.layout.units))} units")

    # -- the transformations -------------------------------------------------------------
    def start(self) -> PlainCnn:
        """The start network (net.config)."""
        return PlainCnn(tuple((Conv(self.layout.filters[0], START_KERNEL),) for _ in range(self.layout.blocks)),
                        (self.layout.units[0],))

    def ladder(self, arch: PlainCnn, ref: LayerRef) -> tuple[int, ...]:
        return self.layout.units if ref.block == arch.fc_block else self.layout.filters

    def wider(self, arch: PlainCnn, ref: LayerRef) -> Widen | None:
        """Net2Wider of the layer at ``ref`` to the next width of its ladder; None at the widest."""
        ladder = self.ladder(arch, ref)
        position = ladder.index(arch.width(ref))
        return Widen(ref, ladder[position + 1]) if position + 1 < len(ladder) else None

    def vocabulary(self) -> tuple[str, ...]:
        """Every layer description a network of the layout can have (the meta-controller's tokens)."""
        convs = (str(Conv(f, k)) for f in self.layout.filters for k in KERNELS)
        return (*convs, *(f"fc-{u}" for u in self.layout.units), "pool", "gap")

    def random_episode(self, arch: PlainCnn, rng: random.Random) -> list[Transformation]:
        """The official random search's episode from ``arch`` (the module docstring)."""
        actions = ["wider"] * self.layout.wider_actions + ["deeper"] * self.layout.deeper_actions
        rng.shuffle(actions)
        steps: list[Transformation] = []
        for action in actions:
            if action == "wider":
                chosen = [self.wider(arch, ref) for ref in arch.refs() if rng.random() < 0.5]
            else:
                chosen = [self.random_deepen(arch, rng)]
            for step in chosen:
                if step is not None:
                    steps.append(step)
                    arch = arch.apply(step)
        return steps

    def random_deepen(self, arch: PlainCnn, rng: random.Random) -> Deepen:
        counts = arch.layer_counts()
        block = rng.choice([b for b, count in enumerate(counts) if count])
        kernel = None if block == arch.fc_block else rng.choice(KERNELS)
        return Deepen(LayerRef(block, rng.randrange(counts[block])), kernel)

    def check(self, arch: PlainCnn, where: str = "architecture") -> PlainCnn:
        """``arch``, or an error when the layout cannot hold it."""
        if len(arch.blocks) != self.layout.blocks:
            raise ConfigError(f"{where}: {len(arch.blocks)} blocks, the [plain_cnn] layout has {self.layout.blocks}")
        for ref in arch.refs():
            if arch.width(ref) not in self.ladder(arch, ref):
                kind = "units" if ref.block == arch.fc_block else "filters"
                raise ConfigError(f"{where}: width {arch.width(ref)} of the layer at block {ref.block}, index "
                                  f"{ref.index} is not among the [plain_cnn] layout's {kind} "
                                  f"{list(self.ladder(arch, ref))}")
        return arch

    # -- the SearchSpace interface -------------------------------------------------------
    def sample(self, rng: random.Random) -> PlainCnn:
        """The start network after one random episode."""
        arch = self.start()
        for step in self.random_episode(arch, rng):
            arch = arch.apply(step)
        return arch

    def mutate(self, arch: PlainCnn, rng: random.Random) -> PlainCnn:
        """One random Net2Wider (of one layer) or Net2Deeper step."""
        widenings = [step for step in (self.wider(arch, ref) for ref in arch.refs()) if step is not None]
        step = rng.choice(widenings) if widenings and rng.random() < 0.5 else self.random_deepen(arch, rng)
        return arch.apply(step)

    def build(self, arch: PlainCnn, config: NetworkConfig) -> nn.Module:
        """The architecture fixes the network's size; ``config`` gives only the classes."""
        from nasbench.spaces.plain_cnn.network import PlainCnnNetwork

        return PlainCnnNetwork(self.check(arch), config.num_classes)

    def from_dict(self, data: Any, where: str = "architecture") -> PlainCnn:
        return self.check(parse_arch(data, where), where)

    def to_dict(self, arch: PlainCnn) -> dict[str, Any]:
        return arch.to_dict()

    def graph(self, arch: PlainCnn) -> tuple[ArchitectureGraph, ...]:
        """The layers in order: the image, every layer and pooling, the classifier."""
        layers = [GraphNode(f"l{i}", token, "layer") for i, (token, _) in enumerate(arch.tokens())]
        nodes = (GraphNode("image", f"image {self.input_size}px", "input"), *layers,
                 GraphNode("end", "classifier", "output"))
        return (ArchitectureGraph("network", nodes, tuple(GraphEdge(a.id, b.id) for a, b in zip(nodes, nodes[1:]))),)
