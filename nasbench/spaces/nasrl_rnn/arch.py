"""NAS-RL's recurrent cell (Zoph & Le, ICLR 2017, Sect. 3.4, Fig. 5) as an architecture value
(torch-free: the space's description needs it; :mod:`nasbench.spaces.nasrl_rnn.cell` builds
its module): a binary tree of combinations and activations, and a memory cell c_t read and
written at nodes the controller picks.

Nodes are numbered level by level: leaves 0..B-1 (each combines W x_t with W' h_{t-1}),
then each next level's nodes combine consecutive pairs of the level below, up to the root,
whose output is h_t. A node computes ``pre = combine(a, b)`` and ``out = activation(pre)``.
The cell inject makes the ``cell_in`` node's output ``inject_activation(inject_combine(out,
c_{t-1}))``; c_t is the ``cell_out`` node's ``pre`` (the paper's "before the activation").
Both indices lie below the root (our reading: the paper's example and TF's NASCell use
inner nodes).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasbench.errors import ConfigError
from nasbench.spaces.language_model import ACTIVATIONS

COMBINATIONS = ("add", "elem_mult")
"""NAS-RL's combination methods (Sect. 3.4: addition, elementwise multiplication)."""


def tree_children(size: int) -> dict[int, tuple[int, int]]:
    """Each inner node of a tree of ``size`` nodes (leaves first, level by level) with its two children."""
    children, start, width = {}, 0, (size + 1) // 2
    while width > 1:
        for k in range(width // 2):
            children[start + width + k] = (start + 2 * k, start + 2 * k + 1)
        start, width = start + width, width // 2
    return children


def _pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


def is_tree_size(size: int) -> bool:
    """Whether ``size`` nodes make a full binary tree over a power-of-2 number (>= 2) of leaves."""
    leaves = (size + 1) // 2
    return size >= 3 and size % 2 == 1 and leaves & (leaves - 1) == 0


@dataclass(frozen=True)
class TreeCellArch:
    """Per tree node its ``(combination, activation)``, the cell inject's ``(combination,
    activation)``, and the cell indices ``(cell_out, cell_in)``: the node c_t is taken from
    and the node c_{t-1} is injected into (the paper's first and second "Cell Index")."""

    nodes: tuple[tuple[str, str], ...]
    inject: tuple[str, str]
    cell_indices: tuple[int, int]

    @property
    def base(self) -> int:
        return (len(self.nodes) + 1) // 2

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [list(n) for n in self.nodes], "inject": list(self.inject),
                "cell_indices": list(self.cell_indices)}

    def __str__(self) -> str:
        """``0: add tanh, 1: elem_mult relu, 2: ... | inject add relu | c_t from 1, c_{t-1} into 0``."""
        nodes = ", ".join(f"{i}: {comb} {act}" for i, (comb, act) in enumerate(self.nodes))
        out, into = self.cell_indices
        return f"{nodes} | inject {self.inject[0]} {self.inject[1]} | c_t from {out}, c_{{t-1}} into {into}"

    @classmethod
    def from_dict(cls, data: Any, where: str = "architecture") -> "TreeCellArch":
        if (not isinstance(data, dict) or set(data) != {"nodes", "inject", "cell_indices"}
                or not isinstance(data["nodes"], list) or not all(map(_pair, data["nodes"]))
                or not _pair(data["inject"]) or not _pair(data["cell_indices"])):
            raise ConfigError(f'{where}: a NAS-RL cell is a JSON object {{"nodes": [[COMBINATION, ACTIVATION], ...], '
                              '"inject": [COMBINATION, ACTIVATION], "cell_indices": [CELL_OUT, CELL_IN]}')
        arch = cls(tuple(map(tuple, data["nodes"])), tuple(data["inject"]), tuple(data["cell_indices"]))
        arch.check(where)
        return arch

    def check(self, where: str = "architecture") -> None:
        """One line saying what is wrong, or nothing."""
        if not is_tree_size(len(self.nodes)):
            raise ConfigError(f"{where}: {len(self.nodes)} nodes do not make a tree over 2, 4, 8, ... leaves "
                              "(2 * leaves - 1 nodes)")
        for comb, act in (*self.nodes, self.inject):
            if not isinstance(comb, str) or comb not in COMBINATIONS:
                raise ConfigError(f"{where}: unknown combination {comb!r} (known: {', '.join(COMBINATIONS)})")
            if not isinstance(act, str) or act not in ACTIVATIONS:
                raise ConfigError(f"{where}: unknown activation {act!r} (known: {', '.join(ACTIVATIONS)})")
        if not all(type(i) is int and 0 <= i < len(self.nodes) - 1 for i in self.cell_indices):
            raise ConfigError(f"{where}: cell_indices {list(self.cell_indices)} must be nodes below the root, "
                              f"0..{len(self.nodes) - 2}")
