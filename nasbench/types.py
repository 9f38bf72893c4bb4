"""Types that several layers share: what a network is sized by, the parts its cost is
the sum of, a search's records and where a stored number came from.

This module sits below every package (it imports nothing of nasbench), so that spaces,
hardware, strategies, the store and the report can all speak of these values without
importing one another.

Parts: a space decomposes every network it builds into parts (the stem, each cell's
preprocessing, each operation where it sits, node sums, concatenations, the head). A part
is identified by what it computes and the shapes it sees, so one measured table entry
serves every network that contains it.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Hashable, Mapping

STRATEGY_CLASSES = ("RL", "EA", "GO", "RS", "SMBO")
"""The survey's strategy classes: reinforcement learning, evolution, gradient
optimisation, random search, sequential model-based optimisation."""


SEED_LIMIT = 2**63
"""Seeds are non-negative and below 2**63: what SQLite stores as an integer, and no two
seeds share a stream (Python's ``Random(-1)`` draws what ``Random(1)`` draws)."""


def seed_problem(seed: int) -> str | None:
    """Why ``seed`` is not a usable run seed, or None."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        return f"a seed must be an integer, got {seed!r}"
    if not 0 <= seed < SEED_LIMIT:
        return f"a seed must lie in 0..2**63-1 (non-negative, within 63 bits), got {seed}"
    return None


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed determined by the run seed and a purpose, e.g. ("candidate", 3)."""
    digest = hashlib.sha256(repr((seed,) + parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class NetworkConfig:
    """The size of a network built from an architecture."""

    channels: int
    cells: int
    auxiliary: bool = False
    num_classes: int = 10

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
    shape (edges, ops) shared by all its positions.

    Where a network keeps only some edges (the cell space's nodes keep two inputs each),
    ``nodes`` lists per node the indices of its incoming edges, ``inputs_per_node`` how many
    a derived network keeps, and ``free_op`` the operation that adds nothing (``none``):
    expected costs then count the edges and operations the derivation builds, not all of
    them. Without ``nodes`` every edge is kept (a layer-wise space)."""

    fixed: tuple[PartKey, ...]
    choices: Mapping[str, tuple[tuple[tuple[PartKey, ...], ...], ...]]
    nodes: tuple[tuple[int, ...], ...] = ()
    inputs_per_node: int = 0
    free_op: int | None = None


@dataclass(frozen=True)
class Trial:
    """One evaluated candidate; ``error`` is set (and the metric None) when it failed. An
    image candidate has ``val_acc``, a language model ``val_perplexity``."""

    index: int
    arch: dict[str, Any]
    val_acc: float | None
    seconds: float
    error: str | None = None
    val_perplexity: float | None = None

    @property
    def score(self) -> float | None:
        """One scale, higher better, for both metrics: the accuracy as it is, the perplexity as
        minus its log (None: failed)."""
        if self.val_acc is not None:
            return self.val_acc
        return None if self.val_perplexity is None else -math.log(self.val_perplexity)


@dataclass(frozen=True)
class SearchResult:
    arch: Hashable
    val_acc: float | None
    """Search-validation accuracy the strategy chose the architecture by (None if it used none)."""
    details: dict[str, Any] = field(default_factory=dict)
    val_perplexity: float | None = None
    """A language model's search-validation perplexity, where the strategy chose by one."""


TensorState = dict[str, Any]
"""What ``torch.save`` writes and ``torch.load(weights_only=True)`` reads back: tensors in
(nested) dicts and lists with plain values, e.g. module and optimiser state dicts."""


@dataclass(frozen=True)
class Checkpoint:
    """A strategy's whole state after a step, as the store keeps it (in one transaction)."""

    state: dict[str, Any]
    """JSON-able values: trials, status, random-number state, the strategy's fields."""
    tensors: TensorState = field(default_factory=dict)
    """Network weights, optimiser moments, torch generator states; empty for black-box methods."""


@dataclass(frozen=True)
class Provenance:
    """Where a stored result comes from, for a run and a ranking alike: the protocol in
    full, the device and its fingerprint, software versions, the git commit."""

    protocol: str
    protocol_json: str
    device: str
    device_fingerprint: str
    software: dict[str, str]
    git_commit: str | None


NODE_KINDS = ("input", "intermediate", "output", "layer")
"""What a drawn node is: a cell's input state, one of its intermediate nodes, its output, or
a layer of a layer-wise or macro network."""


@dataclass(frozen=True)
class GraphNode:
    id: str
    label: str
    kind: str


@dataclass(frozen=True)
class GraphEdge:
    src: str
    dst: str
    label: str = ""
    """The operation on the edge, where the space puts operations on edges (cells)."""


@dataclass(frozen=True)
class ArchitectureGraph:
    """One drawable part of an architecture (a cell type, or a whole network) as nodes and
    edges, so that the report can draw every space alike without knowing its values."""

    group: str
    """What this graph is: ``normal``, ``reduce``, ``network``."""
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]

    def __post_init__(self) -> None:
        ids = [node.id for node in self.nodes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.group}: node ids must be distinct, got {ids}")
        unknown = [n.kind for n in self.nodes if n.kind not in NODE_KINDS]
        dangling = [(e.src, e.dst) for e in self.edges if e.src not in ids or e.dst not in ids]
        if unknown or dangling:
            raise ValueError(f"{self.group}: unknown node kinds {unknown} or edges between unknown nodes {dangling}")
