"""Parts: the pieces a network's cost is the sum of.

A space decomposes every network it builds into parts (the stem, each cell's
preprocessing, each operation where it sits, node sums, concatenations, the head). A
part is identified by what it computes and the shapes it sees, so one measured table
entry serves every network that contains it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

_ID = re.compile(r"^(?P<kind>[a-z_]+):(?P<name>[a-z0-9_]+):c(?P<c_in>\d+)>(?P<c_out>\d+):s(?P<size>\d+)"
                 r":x(?P<stride>\d+):n(?P<arity>\d+)$")


@dataclass(frozen=True, order=True)
class PartKey:
    kind: str
    """What role the part plays: stem, preprocess, op, combine, cell, head."""
    name: str
    """The operation, e.g. ``sep_conv_3x3``, ``relu_conv_bn_1x1``, ``add``, ``concat``."""
    c_in: int
    """Channels of each input."""
    c_out: int
    size: int
    """Spatial size (height = width) of the inputs."""
    stride: int
    arity: int = 1
    """Number of inputs, each of shape (c_in, size, size)."""

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}:c{self.c_in}>{self.c_out}:s{self.size}:x{self.stride}:n{self.arity}"

    @classmethod
    def from_id(cls, text: str) -> "PartKey":
        match = _ID.match(text)
        if match is None:
            raise ValueError(f"not a part id: {text!r}")
        fields = match.groupdict()
        return cls(fields.pop("kind"), fields.pop("name"), **{k: int(v) for k, v in fields.items()})

    def input_shapes(self, batch_size: int) -> list[tuple[int, int, int, int]]:
        return [(batch_size, self.c_in, self.size, self.size)] * self.arity


@dataclass(frozen=True)
class CostLayout:
    """How a space's architecture weights map onto parts, for expected (differentiable) costs.

    ``fixed`` parts are in every architecture. ``choices[group][position][edge][op]`` is
    the part that op ``op`` on edge ``edge`` contributes at ``position`` (e.g. every
    normal cell) when chosen; an architecture's weights for ``group`` are a tensor of
    shape (edges, ops) shared by all its positions."""

    fixed: tuple[PartKey, ...]
    choices: Mapping[str, tuple[tuple[tuple[PartKey, ...], ...], ...]]
