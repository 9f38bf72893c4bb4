"""EAS' plain CNNs as values (Cai, Chen, Zhang, Yu & Wang, "Efficient Architecture Search by
Network Transformation", AAAI 2018; the official code's ``SimpleConvnet``,
github.com/han-cai/EAS code/models/convnet.py L51-97, and its start network
start_nets/start_net_convnet_small_C10+/net.config): blocks of stride-1 convolutions,
2x2 max pooling between blocks, global average pooling after the last block, then fully
connected layers and the classifier. No skip connections, no branches.

The two network transformations the meta-controller takes are values too: :class:`Widen`
(Net2Wider: a layer gets more filters or units) and :class:`Deepen` (Net2Deeper: an
identity layer is inserted after a layer). Only shapes are checked here; which widths a
layer may take is the layout's rule (:mod:`nasbench.spaces.plain_cnn.space`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Union

from nasbench.errors import ConfigError

KERNELS = (1, 3, 5)
"""The convolutions' kernel sizes (arch_search_convnet_net2net.py L173)."""


@dataclass(frozen=True)
class Conv:
    """A ``kernel`` x ``kernel`` convolution of stride 1 (zero-padded) with ``filters``
    outputs, then batch norm and ReLU (net.config: ``use_bn``, ``relu``, not pre-activation)."""

    filters: int
    kernel: int

    def __str__(self) -> str:
        return f"conv-{self.filters}-{self.kernel}"  # the official token (arch_search_convnet_net2net.py L18)


@dataclass(frozen=True, order=True)
class LayerRef:
    """Where a layer is: ``block`` (a convolution block, or ``len(blocks)`` for the fully
    connected layers, the official deeper actor's last block) and its ``index`` there."""

    block: int
    index: int


@dataclass(frozen=True)
class Widen:
    """Net2Wider: the layer at ``ref`` gets ``width`` filters (or units)."""

    ref: LayerRef
    width: int


@dataclass(frozen=True)
class Deepen:
    """Net2Deeper: an identity layer as wide as the layer at ``ref`` is inserted right after
    it; a convolution of ``kernel`` in a convolution block, a fully connected layer (``kernel``
    None) among the fully connected ones (arch_search_convnet_net2net.py L123-150)."""

    ref: LayerRef
    kernel: int | None


Transformation = Union[Widen, Deepen]


@dataclass(frozen=True)
class PlainCnn:
    """A plain CNN: its convolution blocks and the widths of its hidden fully connected
    layers (the classifier follows them). A value: immutable, hashable, JSON round-trip."""

    blocks: tuple[tuple[Conv, ...], ...]
    fc: tuple[int, ...]

    @property
    def fc_block(self) -> int:
        """The block index of the fully connected layers."""
        return len(self.blocks)

    def layer_counts(self) -> tuple[int, ...]:
        """Layers per block, the fully connected layers last (the official ``block_layer_num``)."""
        return (*(len(block) for block in self.blocks), len(self.fc))

    def refs(self) -> list[LayerRef]:
        """Every layer, in the order the network computes them."""
        return [LayerRef(b, i) for b, count in enumerate(self.layer_counts()) for i in range(count)]

    def width(self, ref: LayerRef) -> int:
        return self.fc[ref.index] if ref.block == self.fc_block else self.blocks[ref.block][ref.index].filters

    def tokens(self) -> list[tuple[str, LayerRef | None]]:
        """The layer descriptions the meta-controller reads, in order, each with its layer
        (None for pooling): convolutions, ``pool`` between blocks, ``gap`` after the last,
        fully connected layers (the official code writes both poolings ``pool``, L11-23)."""
        tokens: list[tuple[str, LayerRef | None]] = []
        for b, block in enumerate(self.blocks):
            if b:
                tokens.append(("pool", None))
            tokens += [(str(conv), LayerRef(b, i)) for i, conv in enumerate(block)]
        tokens.append(("gap", None))
        return tokens + [(f"fc-{units}", LayerRef(self.fc_block, i)) for i, units in enumerate(self.fc)]

    def apply(self, step: Transformation) -> PlainCnn:
        """The architecture after ``step``."""
        ref = step.ref
        if not 0 <= ref.block <= self.fc_block or not 0 <= ref.index < self.layer_counts()[ref.block]:
            raise ValueError(f"{self}: no layer at {ref}")
        if ref.block == self.fc_block:
            fc = list(self.fc)
            if isinstance(step, Widen):
                fc[ref.index] = step.width
            else:
                fc.insert(ref.index + 1, fc[ref.index])
            return replace(self, fc=tuple(fc))
        block = list(self.blocks[ref.block])
        if isinstance(step, Widen):
            block[ref.index] = Conv(step.width, block[ref.index].kernel)
        else:
            block.insert(ref.index + 1, Conv(block[ref.index].filters, step.kernel))
        return replace(self, blocks=self.blocks[:ref.block] + (tuple(block),) + self.blocks[ref.block + 1:])

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [[{"filters": c.filters, "kernel": c.kernel} for c in block] for block in self.blocks],
                "fc": list(self.fc)}

    def __str__(self) -> str:
        return " ".join(token for token, _ in self.tokens())


FORM = '{"blocks": [[{"filters": F, "kernel": K}, ...], ...], "fc": [UNITS, ...]}'


def parse_arch(data: Any, where: str) -> PlainCnn:
    """The value of a JSON form, with a one-line error naming what is malformed."""
    if (not isinstance(data, dict) or set(data) != {"blocks", "fc"} or not isinstance(data["blocks"], list)
            or not isinstance(data["fc"], list)):
        raise ConfigError(f"{where}: a plain-cnn architecture is a JSON object {FORM}")
    if not data["blocks"] or not all(isinstance(block, list) and block for block in data["blocks"]):
        raise ConfigError(f"{where}: blocks must be a non-empty list of non-empty lists of convolutions")
    blocks = tuple(tuple(_parse_conv(conv, f"{where}: block {b} layer {i}") for i, conv in enumerate(block))
                   for b, block in enumerate(data["blocks"]))
    if any(not _positive_int(units) for units in data["fc"]):
        raise ConfigError(f"{where}: fc must list integer widths >= 1, got {data['fc']}")
    return PlainCnn(blocks, tuple(data["fc"]))


def _parse_conv(data: Any, where: str) -> Conv:
    if (not isinstance(data, dict) or set(data) != {"filters", "kernel"} or not _positive_int(data["filters"])
            or data["kernel"] not in KERNELS or type(data["kernel"]) is not int):
        raise ConfigError(f"{where}: a convolution is {{\"filters\": integer >= 1, \"kernel\": one of "
                          f"{', '.join(map(str, KERNELS))}}}, got {data!r}")
    return Conv(data["filters"], data["kernel"])


def _positive_int(value: Any) -> bool:
    return type(value) is int and value >= 1
