"""NASNet-space architectures as immutable values (Zoph et al., CVPR 2018, Sect. 3, Fig. 3).

A cell has two inputs, index 0 the output of the cell before the previous one (the
paper's h_{i-1}, printed ``h_(i-1)``) and index 1 the previous cell's (``h_i``), as in the
cell space, and :data:`BLOCKS` blocks numbered from 2. A block makes the controller's five decisions, in
the paper's order: a first and a second input among the cell inputs and the earlier
blocks (the same one may be taken twice), an operation for each, and how to combine the
two results (element-wise ``add`` or channel ``concat``). An architecture is a normal and a
reduction cell. Nothing else is chosen: the cell's output concatenates the blocks that no
block of the cell reads (:attr:`CellArch.concat`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from nasbench.errors import ConfigError

BLOCKS = 5
"""B, the blocks of a cell (the paper's choice, Sect. 3)."""
OPERATIONS: tuple[str, ...] = (
    "skip_connect",
    "conv_3x1_1x3",
    "conv_7x1_1x7",
    "dilated_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)
"""The 13 operations, in the paper's order (their modules: :data:`nasbench.spaces.nasnet.ops.OPERATIONS`)."""
COMBINATIONS: tuple[str, ...] = ("add", "concat")
"""Step 5's choices: element-wise addition or concatenation along the channels."""
CELL_TYPES: tuple[str, ...] = ("normal", "reduce")
"""The cells in the controller's order: it predicts the normal cell's 5B decisions first."""
DECISION_NAMES: tuple[str, ...] = ("input_a", "input_b", "op_a", "op_b", "combine")
"""A block's decisions, in the controller's order (Fig. 3, steps 1-5)."""


def decision_sizes() -> tuple[int, ...]:
    """The number of choices of each of the controller's ``2 x 5 x B`` decisions, in the
    order of :meth:`NasnetArch.decisions`: block ``b`` (from 0) may read ``b + 2`` states."""
    per_cell = [n for b in range(BLOCKS) for n in (b + 2, b + 2, len(OPERATIONS), len(OPERATIONS), len(COMBINATIONS))]
    return tuple(per_cell * len(CELL_TYPES))


@dataclass(frozen=True)
class Block:
    """Two inputs (state indices), an operation on each, and their combination."""

    inputs: tuple[int, int]
    ops: tuple[str, str]
    combine: str

    def decisions(self) -> tuple[int, ...]:
        """The block as the controller's five choice indices."""
        return (*self.inputs, *(OPERATIONS.index(op) for op in self.ops), COMBINATIONS.index(self.combine))

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "ops": list(self.ops), "combine": self.combine}


@dataclass(frozen=True)
class CellArch:
    """The :data:`BLOCKS` blocks of a cell; block ``b`` (from 0) is state ``b + 2``."""

    blocks: tuple[Block, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.blocks, tuple) or not all(isinstance(b, Block) for b in self.blocks):
            raise TypeError("CellArch.blocks must be a tuple of Block")
        if len(self.blocks) != BLOCKS:
            raise ConfigError(f"a cell has {BLOCKS} blocks, got {len(self.blocks)}")
        for position, block in enumerate(self.blocks):
            state = position + 2
            if len(block.inputs) != 2 or len(block.ops) != 2:
                raise ConfigError(f"block n{state}: needs two inputs and two operations")
            for source in block.inputs:
                if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < state:
                    raise ConfigError(f"block n{state}: cannot read state {source!r} (valid: 0..{state - 1}, "
                                      f"0 = h_(i-1), 1 = h_i, 2.. = earlier blocks)")
            for op in block.ops:
                if op not in OPERATIONS:
                    raise ConfigError(f"block n{state}: unknown operation {op!r}; known: {', '.join(OPERATIONS)}")
            if block.combine not in COMBINATIONS:
                raise ConfigError(f"block n{state}: unknown combination {block.combine!r}; known: "
                                  f"{', '.join(COMBINATIONS)}")

    @property
    def read_states(self) -> frozenset[int]:
        """States some block takes as an input."""
        return frozenset(source for block in self.blocks for source in block.inputs)

    @property
    def concat(self) -> tuple[int, ...]:
        """The states the cell's output concatenates: the blocks no block reads (Sect. 3:
        "all of the unused hidden states generated in the convolutional cell"). The cell
        inputs are not generated in the cell and never count, as in Fig. 4, whose normal
        cell concatenates its 5 blocks and whose reduction cell its 3 unread ones. The last
        block is never read, so the output is never empty. (NASNet's official code lists
        the concatenated states by hand and adds ``h_(i-1)`` to the normal cell's and the
        read block n3 to the reduction cell's: see the zoo's note.)"""
        read = self.read_states
        return tuple(state for state in range(2, BLOCKS + 2) if state not in read)

    def to_list(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.blocks]

    def lines(self) -> list[str]:
        """One line per block, in the paper's notation for the cell inputs."""
        lines = []
        for position, block in enumerate(self.blocks):
            terms = [f"{op}({state_name(source)})" for op, source in zip(block.ops, block.inputs)]
            combined = " + ".join(terms) if block.combine == "add" else f"concat({', '.join(terms)})"
            lines.append(f"  n{position + 2} = {combined}")
        return lines


@dataclass(frozen=True)
class NasnetArch:
    """A normal cell and a reduction cell; networks are built from it on demand."""

    normal: CellArch
    reduce: CellArch

    def cells(self) -> Iterable[tuple[str, CellArch]]:
        yield "normal", self.normal
        yield "reduce", self.reduce

    def decisions(self) -> tuple[int, ...]:
        """The ``2 x 5 x B`` choice indices the controller makes for this architecture
        (normal cell first; per block :data:`DECISION_NAMES`), e.g. to score it under a policy."""
        return tuple(d for _, cell in self.cells() for block in cell.blocks for d in block.decisions())

    @classmethod
    def from_decisions(cls, decisions: Sequence[int]) -> "NasnetArch":
        """The architecture of the controller's ``2 x 5 x B`` choice indices (inputs as state
        indices, operations and combinations as indices into :data:`OPERATIONS` and
        :data:`COMBINATIONS`), in the order of :func:`decision_sizes`."""
        sizes = decision_sizes()
        if len(decisions) != len(sizes):
            raise ConfigError(f"a NASNet architecture takes {len(sizes)} decisions (2 cells x {BLOCKS} blocks x "
                              f"{len(DECISION_NAMES)}), got {len(decisions)}")
        for position, (choice, size) in enumerate(zip(decisions, sizes)):
            if isinstance(choice, bool) or not isinstance(choice, int) or not 0 <= choice < size:
                raise ConfigError(f"decision {position} ({DECISION_NAMES[position % len(DECISION_NAMES)]}) must be "
                                  f"an integer in 0..{size - 1}, got {choice!r}")
        per_block = len(DECISION_NAMES)
        blocks = [Block((a, b), (OPERATIONS[op_a], OPERATIONS[op_b]), COMBINATIONS[combine])
                  for a, b, op_a, op_b, combine in (decisions[i:i + per_block]
                                                    for i in range(0, len(decisions), per_block))]
        return cls(CellArch(tuple(blocks[:BLOCKS])), CellArch(tuple(blocks[BLOCKS:])))

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {kind: cell.to_list() for kind, cell in self.cells()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any, where: str = "architecture") -> "NasnetArch":
        shape = ('a NASNet-space architecture is a JSON object {"normal": [...], "reduce": [...]}, each a list '
                 f'of {BLOCKS} blocks {{"inputs": [i, j], "ops": [op, op], "combine": "add" or "concat"}}')
        if not isinstance(data, dict) or set(data) != set(CELL_TYPES):
            raise ConfigError(f"{where}: {shape}")
        cells = {}
        for kind in CELL_TYPES:
            try:
                cells[kind] = CellArch(_blocks(data[kind]))
            except (ConfigError, ValueError) as err:
                raise ConfigError(f"{where}: {kind} cell: {err}") from None
        return cls(**cells)

    # -- display --------------------------------------------------------------------
    def __str__(self) -> str:
        lines = []
        for kind, cell in self.cells():
            lines.append(f"{kind} cell -> concat({', '.join(f'n{i}' for i in cell.concat)})")
            lines.extend(cell.lines())
        return "\n".join(lines)


def state_name(index: int) -> str:
    """A state in the paper's notation: the cell inputs are h_(i-1) and h_i."""
    return {0: "h_(i-1)", 1: "h_i"}.get(index, f"n{index}")


def _blocks(raw: Any) -> tuple[Block, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"expected a list of {BLOCKS} blocks, got {raw!r}")
    blocks = []
    for item in raw:
        if (not isinstance(item, dict) or set(item) != {"inputs", "ops", "combine"}
                or not isinstance(item["inputs"], list) or not isinstance(item["ops"], list)):
            raise ValueError(f'a block is {{"inputs": [i, j], "ops": [op, op], "combine": ...}}, got {item!r}')
        blocks.append(Block(tuple(item["inputs"]), tuple(item["ops"]), item["combine"]))
    return tuple(blocks)
