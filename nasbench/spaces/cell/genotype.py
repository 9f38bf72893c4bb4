"""Genotypes: cell architectures as immutable values (DARTS' representation).

A cell has two input states, ``c_{k-2}`` (index 0) and ``c_{k-1}`` (index 1), and
intermediate nodes numbered from 2. Each node sums two edges, each edge being an
``(operation, input index)`` pair; the cell's output concatenates the nodes listed in
``*_concat``. A genotype holds no weights: networks are built from it on demand.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from nasbench.errors import ConfigError
from nasbench.spaces.resolve import read_json_file

Edge = tuple[str, int]
CellEdges = tuple[Edge, ...]

OPERATION_NAMES: tuple[str, ...] = (
    "none",
    "avg_pool_3x3",
    "max_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_7x1_1x7",
)
"""Every operation a genotype may name (their modules: :data:`nasbench.spaces.cell.ops.OPERATIONS`).
The search space uses the eight DARTS ones (:data:`SEARCH_OPERATIONS`); ``sep_conv_7x7`` and
``conv_7x1_1x7`` exist for the published NASNet and AmoebaNet cells of the zoo."""

SEARCH_OPERATIONS: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
"""The DARTS operation set, in DARTS' order (the order of architecture parameters)."""

_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclass(frozen=True)
class Genotype:
    """A normal and a reduction cell. ``reduce=None`` stands for GDAS' fixed,
    hand-designed reduction cell (GDAS-FRC), which is not a searchable cell."""

    normal: CellEdges
    normal_concat: tuple[int, ...]
    reduce: CellEdges | None
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_cell("normal", self.normal, self.normal_concat)
        if self.reduce is not None:
            _check_cell("reduce", self.reduce, self.reduce_concat)

    @property
    def nodes(self) -> int:
        return len(self.normal) // 2

    def cells(self) -> Iterable[tuple[str, CellEdges | None, tuple[int, ...]]]:
        yield "normal", self.normal, self.normal_concat
        yield "reduce", self.reduce, self.reduce_concat

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": [list(edge) for edge in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": None if self.reduce is None else [list(edge) for edge in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any, where: str = "genotype") -> "Genotype":
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object with keys {', '.join(_FIELDS)}")
        missing = [k for k in _FIELDS if k not in data]
        unknown = sorted(set(data) - set(_FIELDS))
        if missing or unknown:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown {', '.join(unknown)}"] if unknown else []
            )
            raise ConfigError(f"{where}: {'; '.join(problems)} (a genotype has exactly {', '.join(_FIELDS)})")
        try:
            return cls(
                normal=_edges(data["normal"]),
                normal_concat=_concat(data["normal_concat"], "normal_concat"),
                reduce=None if data["reduce"] is None else _edges(data["reduce"]),
                reduce_concat=_concat(data["reduce_concat"], "reduce_concat"),
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from None

    @classmethod
    def from_json(cls, text: str, where: str = "genotype") -> "Genotype":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{where}: not valid JSON ({err})") from None
        return cls.from_dict(data, where)

    @classmethod
    def from_file(cls, path: Path) -> "Genotype":
        return cls.from_dict(read_json_file(path, "genotype"), str(path))

    # -- display --------------------------------------------------------------------
    def __str__(self) -> str:
        lines = []
        for kind, edges, concat in self.cells():
            if edges is None:
                lines.append(f"{kind} cell: GDAS fixed reduction cell (not searched)")
                continue
            lines.append(f"{kind} cell -> concat({', '.join(f'n{i}' for i in concat)})")
            for node in range(len(edges) // 2):
                (op_a, in_a), (op_b, in_b) = edges[2 * node], edges[2 * node + 1]
                lines.append(f"  n{node + 2} = {op_a}({_state(in_a)}) + {op_b}({_state(in_b)})")
        return "\n".join(lines)


def _state(index: int) -> str:
    return {0: "c_{k-2}", 1: "c_{k-1}"}.get(index, f"n{index}")


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _concat(raw: Any, key: str) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"{key} must be a list of node indices, got {raw!r}")
    return tuple(_integer(i) for i in raw)


def _edges(raw: Any) -> CellEdges:
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"a cell is a list of [operation, input] pairs, got {raw!r}")
    edges = []
    for edge in raw:
        if not isinstance(edge, (list, tuple)) or len(edge) != 2 or not isinstance(edge[0], str):
            raise ValueError(f"an edge is an [operation, input] pair, got {edge!r}")
        edges.append((edge[0], _integer(edge[1])))
    return tuple(edges)


def _check_cell(kind: str, edges: CellEdges, concat: tuple[int, ...]) -> None:
    if not isinstance(edges, tuple) or not all(isinstance(e, tuple) for e in edges):
        raise TypeError(f"{kind}: edges must be a tuple of (operation, input) tuples")
    if len(edges) == 0 or len(edges) % 2:
        raise ConfigError(f"{kind} cell: needs two edges per node, got {len(edges)} edges")
    nodes = len(edges) // 2
    for position, (op, source) in enumerate(edges):
        node = position // 2 + 2
        if op not in OPERATION_NAMES:
            raise ConfigError(f"{kind} cell: unknown operation {op!r}; known: {', '.join(sorted(OPERATION_NAMES))}")
        if not 0 <= source < node:
            raise ConfigError(f"{kind} cell: node n{node} cannot take input {source} (valid: 0..{node - 1})")
    if not concat or len(set(concat)) != len(concat) or not all(2 <= i < nodes + 2 for i in concat):
        raise ConfigError(f"{kind} cell: concat {list(concat)} must list distinct nodes among 2..{nodes + 1}")
