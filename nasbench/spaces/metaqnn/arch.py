"""MetaQNN architectures (Baker et al., ICLR 2017, Sect. 4.1 and Table 1): a sequence of
convolution, pooling and fully connected layers that ends in a termination, written in the
paper's notation: ``C(filters, receptive field, stride)``, ``P(size, stride)``, ``FC(neurons)``,
then ``SM`` (softmax) or ``GAP`` (global average pooling).

Only the shape of a value is checked here; which layer may follow which is the space's
rule (:class:`~nasbench.spaces.metaqnn.space.MetaqnnSpace`), as it depends on the layout.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from nasbench.errors import ConfigError


@dataclass(frozen=True)
class Conv:
    """A ``kernel`` x ``kernel`` convolution with ``filters`` outputs; MetaQNN's convolutions
    always have stride 1 and keep the representation size (zero padding)."""

    filters: int
    kernel: int
    type_name: ClassVar[str] = "conv"

    def __str__(self) -> str:
        return f"C({self.filters},{self.kernel},1)"


@dataclass(frozen=True)
class Pool:
    """Max pooling over ``size`` x ``size`` windows at ``stride``, without padding."""

    size: int
    stride: int
    type_name: ClassVar[str] = "pool"

    def __str__(self) -> str:
        return f"P({self.size},{self.stride})"

    def output_size(self, size: int) -> int:
        """The representation size after pooling one of ``size`` (the paper's Appendix B:
        ceil((R - f + 1) / s), which equals floor((R - f) / s) + 1, torch's max pooling)."""
        return (size - self.size) // self.stride + 1


@dataclass(frozen=True)
class FullyConnected:
    """A fully connected layer of ``neurons`` outputs with a ReLU."""

    neurons: int
    type_name: ClassVar[str] = "fc"

    def __str__(self) -> str:
        return f"FC({self.neurons})"


Layer = Union[Conv, Pool, FullyConnected]
LAYER_TYPES: dict[str, type] = {cls.type_name: cls for cls in (Conv, Pool, FullyConnected)}

SOFTMAX, GAP = "softmax", "gap"
TERMINATIONS = {SOFTMAX: "SM", GAP: "GAP"}
"""The two termination states (Table 1) and their notation: ``softmax`` classifies the
flattened representation with a linear layer; ``gap`` maps it to one channel per class with
a 1x1 convolution and averages each over the image (Lin et al.'s global average pooling)."""

Action = Union[Conv, Pool, FullyConnected, str]
"""What the agent chooses in a state: the next layer, or a termination (a key of :data:`TERMINATIONS`)."""


def action_name(action: Action) -> str:
    """The action in the paper's notation (also its key in a Q-table)."""
    return TERMINATIONS[action] if isinstance(action, str) else str(action)


@dataclass(frozen=True)
class LayerSequence:
    """A MetaQNN architecture: its layers in order and the termination. A value: immutable,
    hashable, JSON round-trip; networks are built from it on demand."""

    layers: tuple[Layer, ...]
    termination: str

    def actions(self) -> tuple[Action, ...]:
        """The agent's choices that wrote it: every layer, then the termination."""
        return (*self.layers, self.termination)

    def to_dict(self) -> dict[str, Any]:
        return {"layers": [{"type": layer.type_name, **dataclasses.asdict(layer)} for layer in self.layers],
                "termination": self.termination}

    def __str__(self) -> str:
        return " - ".join(action_name(action) for action in self.actions())


def parse_sequence(data: Any, where: str) -> LayerSequence:
    """The value of a JSON form, with a one-line error naming what is malformed."""
    if not isinstance(data, dict) or set(data) != {"layers", "termination"} or not isinstance(data["layers"], list):
        raise ConfigError(f"{where}: a metaqnn architecture is a JSON object {{\"layers\": [...], \"termination\": "
                          f"\"softmax\" or \"gap\"}}")
    if data["termination"] not in TERMINATIONS:
        raise ConfigError(f"{where}: termination must be one of {', '.join(TERMINATIONS)}, got {data['termination']!r}")
    return LayerSequence(tuple(_parse_layer(layer, f"{where}: layer {i}") for i, layer in enumerate(data["layers"])),
                         data["termination"])


def _parse_layer(data: Any, where: str) -> Layer:
    kinds = ", ".join(f"{name} ({', '.join(f.name for f in dataclasses.fields(cls))})"
                      for name, cls in LAYER_TYPES.items())
    if not isinstance(data, dict) or data.get("type") not in LAYER_TYPES:
        raise ConfigError(f"{where}: a layer is a JSON object with a \"type\" among {kinds}")
    cls = LAYER_TYPES[data["type"]]
    fields = [f.name for f in dataclasses.fields(cls)]
    values = {k: v for k, v in data.items() if k != "type"}
    if set(values) != set(fields) or any(type(v) is not int or v < 1 for v in values.values()):
        raise ConfigError(f"{where}: a {data['type']} layer has exactly the integer fields {', '.join(fields)}, "
                          f"each >= 1; got {data}")
    return cls(**values)
