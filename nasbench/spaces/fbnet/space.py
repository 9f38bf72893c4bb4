"""The FBNet layer-wise search space: one candidate block per searchable layer of a fixed
macro-architecture (:class:`FbnetLayout`, the protocol's ``[fbnet]``)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nasbench.errors import ConfigError
from nasbench.settings import require
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.types import (
    ArchitectureGraph,
    CostLayout,
    GraphEdge,
    GraphNode,
    NetworkConfig,
    PartKey,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

LAYERS_GROUP = "layers"
"""The one group of architecture weights: a (layers, blocks) tensor."""


@dataclass(frozen=True)
class LayerArch:
    """An FBNet-space architecture: the chosen block of every searchable layer, in order.
    A value: immutable, hashable, JSON round-trip; networks are built from it on demand."""

    blocks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": list(self.blocks)}

    def __str__(self) -> str:
        return " ".join(self.blocks)


@dataclass(frozen=True)
class LayerSpec:
    """Where a searchable layer sits: its input channels and resolution, output channels, stride."""

    c_in: int
    c_out: int
    size: int
    stride: int


@dataclass(frozen=True)
class FbnetLayout:
    """The FBNet space's fixed macro-architecture (Wu et al., CVPR 2019, Table 1): a stem
    convolution, searchable layers in stages of fixed width and stride (the first layer
    of a stage strides and changes the width), a 1x1 head convolution, pooling and a
    classifier. The paper's ImageNet layout has 224-pixel images, a stride-2 stem of 16
    channels, stages of (1, 4, 4, 4, 4, 4, 1) layers with (16, 24, 32, 64, 112, 184, 352)
    channels and strides (1, 2, 2, 2, 1, 2, 1), and a 1984-channel head; CIFAR-sized
    layouts keep 32-pixel images at stride 1 in the stem and the first two stages."""

    resolution: int
    stem_channels: int
    stem_stride: int
    stage_layers: tuple[int, ...]
    stage_channels: tuple[int, ...]
    stage_strides: tuple[int, ...]
    head_channels: int

    def check(self, where: str) -> None:
        stages = len(self.stage_layers)
        require(stages >= 1 and len(self.stage_channels) == stages and len(self.stage_strides) == stages, where,
                 "stage_layers, stage_channels and stage_strides must be lists of the same, non-zero length")
        require(all(n >= 1 for n in self.stage_layers), where, "every stage needs at least one layer")
        require(all(c >= 2 and c % 2 == 0 for c in (self.stem_channels, *self.stage_channels)), where,
                 "stem_channels and stage_channels must be even numbers >= 2 (blocks with 2 groups split them)")
        require(all(s in (1, 2) for s in (self.stem_stride, *self.stage_strides)), where, "strides must be 1 or 2")
        require(self.head_channels >= 1, where, "head_channels must be >= 1")
        total_stride = self.stem_stride * 2 ** sum(s == 2 for s in self.stage_strides)
        require(self.resolution >= total_stride and self.resolution % total_stride == 0, where,
                 f"resolution must be a multiple of the layout's total stride {total_stride}")


def plan_layers(layout: FbnetLayout) -> tuple[LayerSpec, ...]:
    """Every searchable layer's shapes: a stage's first layer takes its stride and width."""
    specs, c, size = [], layout.stem_channels, layout.resolution // layout.stem_stride
    for layers, width, stride in zip(layout.stage_layers, layout.stage_channels, layout.stage_strides):
        for i in range(layers):
            s = stride if i == 0 else 1
            specs.append(LayerSpec(c, width, size, s))
            c, size = width, size // s
    return tuple(specs)


class FbnetSpace(SearchSpace[LayerArch]):
    name = "fbnet"
    description = ("FBNet layer-wise space: a fixed stem and head and searchable layers in stages of fixed width "
                   "and stride (the protocol's [fbnet] layout), each one of 9 blocks (inverted residuals with "
                   "kernel 3 or 5, expansion 1, 3 or 6, 1 or 2 groups; skip)")
    protocol_section = "fbnet"
    layout_class = FbnetLayout

    def __init__(self, layout: FbnetLayout):
        self.layout = layout
        self.specs = plan_layers(layout)
        self.input_size = layout.resolution

    @classmethod
    def for_network(cls, network: dict[str, Any]) -> "FbnetSpace":
        return cls(FbnetLayout(**{k: tuple(v) if isinstance(v, list) else v for k, v in network["fbnet"].items()}))

    def network_record(self, config: NetworkConfig) -> dict[str, Any]:
        return {**super().network_record(config), "fbnet": _layout_dict(self.layout)}

    def describe_network(self, config: NetworkConfig) -> str:
        """The layout's size: its network does not depend on ``config``'s channels and cells."""
        widths = [spec.c_out for spec in self.specs]
        return (f"{len(self.specs)} layers of {min(widths)}-{max(widths)} channels, head {self.layout.head_channels}, "
                f"{self.layout.resolution} px")

    def sample(self, rng: random.Random) -> LayerArch:
        """Every layer's block uniformly among the 9."""
        return LayerArch(tuple(rng.choice(BLOCK_NAMES) for _ in self.specs))

    def profile_sample(self, rng: random.Random) -> LayerArch:
        """Uniform draws cluster around the average network (skip in 1 of 9 layers), but a
        search under a latency target ends among skip-heavy ones, where a predictor fitted
        on average networks extrapolates. Each profiled network therefore draws its own skip
        share, uniform in [0, 1], and its other layers uniformly among the 8 blocks, so the
        networks span nearly all skips to no skip."""
        share = rng.random()
        blocks = [b for b in BLOCK_NAMES if b != "skip"]
        return LayerArch(tuple("skip" if rng.random() < share else rng.choice(blocks) for _ in self.specs))

    def mutate(self, arch: LayerArch, rng: random.Random) -> LayerArch:
        """One layer, uniformly, takes another block."""
        blocks = list(arch.blocks)
        layer = rng.randrange(len(blocks))
        blocks[layer] = rng.choice([b for b in BLOCK_NAMES if b != blocks[layer]])
        return LayerArch(tuple(blocks))

    def skip_share(self, arch: LayerArch) -> dict[str, float]:
        return {LAYERS_GROUP: sum(b == "skip" for b in arch.blocks) / len(arch.blocks)}

    def graph(self, arch: LayerArch) -> tuple[ArchitectureGraph, ...]:
        """The network as a chain, as FBNet's Fig. 5 draws it: stem, every layer's chosen block
        with its channels (and stride where it halves the resolution), head."""
        self._check(arch)
        layout = self.layout
        layers = [GraphNode(f"l{i}", f"{block} {spec.c_in}→{spec.c_out}" + (f" /{spec.stride}" * (spec.stride > 1)),
                            "layer") for i, (block, spec) in enumerate(zip(arch.blocks, self.specs))]
        nodes = (GraphNode("image", f"image {layout.resolution}px", "input"),
                 GraphNode("stem", f"stem 3x3 {layout.stem_channels}", "layer"), *layers,
                 GraphNode("head", f"head 1x1 {layout.head_channels}, pool, fc", "output"))
        return (ArchitectureGraph("network", nodes, tuple(GraphEdge(a.id, b.id) for a, b in zip(nodes, nodes[1:]))),)

    def build(self, arch: LayerArch, config: NetworkConfig) -> nn.Module:
        """The layout fixes the network's size; ``config`` gives only the classes (FBNet's
        networks have no auxiliary head)."""
        from nasbench.spaces.fbnet.network import FbnetNetwork

        self._check(arch)
        return FbnetNetwork(arch, self.layout, config.num_classes)

    def from_dict(self, data: Any, where: str = "architecture") -> LayerArch:
        if not isinstance(data, dict) or set(data) != {"blocks"} or not isinstance(data["blocks"], list):
            raise ConfigError(f"{where}: an FBNet-space architecture is a JSON object {{\"blocks\": [...]}} with one "
                              f"block name per layer")
        arch = LayerArch(tuple(data["blocks"]))
        self._check(arch, where)
        return arch

    def to_dict(self, arch: LayerArch) -> dict[str, Any]:
        return arch.to_dict()

    def _check(self, arch: LayerArch, where: str = "architecture") -> None:
        if len(arch.blocks) != len(self.specs):
            raise ConfigError(f"{where}: has {len(arch.blocks)} layers, but the protocol's FBNet layout has "
                              f"{len(self.specs)}")
        unknown = sorted(set(arch.blocks) - set(BLOCK_NAMES))
        if unknown:
            raise ConfigError(f"{where}: unknown block {unknown[0]!r} (known: {', '.join(BLOCK_NAMES)})")

    # -- hardware cost decomposition ---------------------------------------------------
    def _fixed_parts(self, config: NetworkConfig) -> list[PartKey]:
        layout, last = self.layout, self.specs[-1]
        final_size = last.size // last.stride
        return [PartKey("stem", "conv_bn_relu_3x3", 3, layout.stem_channels, layout.resolution, layout.stem_stride),
                PartKey("head", "conv_bn_relu_1x1", last.c_out, layout.head_channels, final_size, 1),
                PartKey("classifier", "pool_linear", layout.head_channels, config.num_classes, final_size, 1)]

    @staticmethod
    def _block_part(name: str, spec: LayerSpec) -> PartKey:
        return PartKey("op", name, spec.c_in, spec.c_out, spec.size, spec.stride)

    def cost_parts(self, arch: LayerArch, config: NetworkConfig) -> list[PartKey]:
        self._check(arch)
        return self._fixed_parts(config) + [self._block_part(n, s) for n, s in zip(arch.blocks, self.specs)]

    def all_cost_parts(self, config: NetworkConfig) -> list[PartKey]:
        layout = self.cost_layout(config)
        return sorted(set(layout.fixed) | {p for layer in layout.choices[LAYERS_GROUP][0] for p in layer})

    def build_part(self, key: PartKey) -> nn.Module:
        from nasbench.spaces.fbnet.blocks import (
            Classifier,
            make_block,
            make_head_conv,
            make_stem,
        )

        if key.kind == "stem":
            return make_stem(key.c_out, key.stride)
        if key.kind == "op":
            return make_block(key.name, key.c_in, key.c_out, key.stride)
        if key.kind == "head":
            return make_head_conv(key.c_in, key.c_out)
        if key.kind == "classifier":
            return Classifier(key.c_in, key.c_out)
        raise ConfigError(f"the fbnet space has no part of kind {key.kind!r}")

    def cost_layout(self, config: NetworkConfig) -> CostLayout:
        """One position, one 'edge' per searchable layer, the 9 blocks as its operations."""
        layers = tuple(tuple(self._block_part(name, spec) for name in BLOCK_NAMES) for spec in self.specs)
        return CostLayout(tuple(self._fixed_parts(config)), {LAYERS_GROUP: (layers,)})

    def arch_weights(self, arch: LayerArch) -> dict[str, torch.Tensor]:
        import torch

        self._check(arch)
        weights = torch.zeros(len(self.specs), len(BLOCK_NAMES), dtype=torch.float64)
        weights[range(len(self.specs)), [BLOCK_NAMES.index(b) for b in arch.blocks]] = 1
        return {LAYERS_GROUP: weights}


def _layout_dict(layout: FbnetLayout) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(layout).items()}
