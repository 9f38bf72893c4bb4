"""ENAS' and DARTS' recurrent cell as an architecture value (torch-free: the space's
description needs it; :mod:`nasbench.spaces.recurrent_cell.cell` builds its module).

Node 0 reads x_t and h_{t-1}; every later node reads one earlier node. Each node is a
highway step (Zilly et al.'s RHN, as both codes write it): from its input s it computes
c = sigmoid(s W_c) and h = f(s W_h), and outputs s + c * (h - s). The cell's output h_t is
the mean of the ``intermediate`` nodes (all but node 0: DARTS rnn/model.py:87, concat =
range(1, 9)) or of the ``loose-ends`` (the nodes no node reads: ENAS ptb_enas_child.py:326).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasbench.errors import ConfigError
from nasbench.spaces.language_model import ACTIVATIONS, CELL_AVERAGES


@dataclass(frozen=True)
class RecurrentCellArch:
    """A cell of ``len(nodes) + 1`` nodes: node 0's activation (ENAS chooses it, DARTS fixes
    tanh: rnn/model.py:54), then per node 1.. its ``(activation, input node)``, and which
    nodes the output averages."""

    first: str
    nodes: tuple[tuple[str, int], ...]
    average: str

    @property
    def concat(self) -> tuple[int, ...]:
        """The nodes the output averages, as DARTS' genotypes list them (``concat``)."""
        if self.average == "intermediate":
            return tuple(range(1, len(self.nodes) + 1))
        read = {source for _, source in self.nodes}
        return tuple(i for i in range(len(self.nodes) + 1) if i not in read)

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "nodes": [[act, source] for act, source in self.nodes], "average": self.average}

    def __str__(self) -> str:
        """``tanh | 1: relu(0) 2: tanh(1) ... | mean of 1, 2, ...``."""
        steps = " ".join(f"{i}: {act}({source})" for i, (act, source) in enumerate(self.nodes, start=1))
        return f"{self.first} | {steps} | mean of {', '.join(map(str, self.concat))}"

    @classmethod
    def from_dict(cls, data: Any, where: str = "architecture") -> "RecurrentCellArch":
        shape = ('a recurrent cell is a JSON object {"first": ACTIVATION, "nodes": [[ACTIVATION, INPUT], ...], '
                 f'"average": {" or ".join(map(repr, CELL_AVERAGES))}}}')
        if (not isinstance(data, dict) or set(data) != {"first", "nodes", "average"}
                or not isinstance(data["nodes"], list)
                or not all(isinstance(n, list) and len(n) == 2 for n in data["nodes"])):
            raise ConfigError(f"{where}: {shape}")
        arch = cls(data["first"], tuple((act, source) for act, source in data["nodes"]), data["average"])
        arch.check(where)
        return arch

    def check(self, where: str = "architecture") -> None:
        """One line saying what is wrong, or nothing."""
        activations = [self.first, *(act for act, _ in self.nodes)]
        unknown = [a for a in activations if not isinstance(a, str) or a not in ACTIVATIONS]
        if unknown:
            raise ConfigError(f"{where}: unknown activation {unknown[0]!r} (known: {', '.join(ACTIVATIONS)})")
        if not self.nodes:
            raise ConfigError(f"{where}: a recurrent cell needs at least one node after node 0")
        for i, (_, source) in enumerate(self.nodes, start=1):
            if type(source) is not int or not 0 <= source < i:
                raise ConfigError(f"{where}: node {i} reads {source!r}, but must read an earlier node 0..{i - 1}")
        if self.average not in CELL_AVERAGES:
            raise ConfigError(f"{where}: average must be one of {', '.join(CELL_AVERAGES)}, got {self.average!r}")
