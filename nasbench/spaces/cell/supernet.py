"""The weight-sharing supernet of the cell space: DARTS' search network.

The layout is the evaluation network's (stem of ``3 * channels``, ``cells`` cells with
reductions at 1/3 and 2/3, global pooling and a linear classifier; no auxiliary head),
planned by the same :func:`~nasbench.spaces.cell.plan.plan_network`. Every cell is
fully connected: each of its 14 edges (2 inputs, 4 nodes) is a mixed operation over the
eight DARTS operations, with batch norm without affine parameters, as in DARTS.

GDAS' search network (github.com/D-X-Y/AutoDL-Projects, xautodl/models/cell_searchs/
search_model_gdas_nasnet.py) differs in two ways, both off by default: its pooling
operations have no batch norm after them (``pool_norm=False``), and a batch norm and a ReLU
come between the last cell and the global pooling (``last_act=True``).

The supernet holds the architecture parameters (a (14, 8) tensor per cell type and, with
``edge_normalisation=True``, PC-DARTS' edge parameters beta, a (14,) tensor per cell type;
:meth:`Supernet.arch_parameters`) apart from the network weights
(:meth:`Supernet.weight_parameters`), but its forward pass does not read them: it takes
per-edge operation weights, so each method forms them its own way (softmax for DARTS,
Gumbel-softmax for SNAS, hard straight-through samples for GDAS). ``none`` (always a zero
term) never runs; with ``sparse=True`` neither does any term whose weight is exactly zero,
so an edge with a one-hot row runs only its operation. The ReLU every convolution starts
with is computed once per cell state and shared by all the operations that read it (as
their input and, for the backward pass, as the one tensor they keep).

Extension points: ``mixed_op`` builds each edge's mixed operation (PC-DARTS' partial
channels wrap :class:`MixedOp` on ``channels // K`` channels with a channel shuffle), and
an edge is scaled as a whole by scaling its weight row (PC-DARTS' edge normalisation; a
partial-channel edge weighs its bypassed channels by the row's sum), so
:meth:`SearchCell.forward` sums a node's incoming edges as they come; a method may set a
:class:`MixedOp`'s ``skip_dropout`` (P-DARTS' dropout after the identity skip-connect in training).
"""
from __future__ import annotations

from functools import cached_property, partial
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from nasbench.spaces.cell.costs import (
    SEARCH_NODES,
    genotype_weights,
    search_genotype_template,
    supernet_edges,
)
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.network import (
    ClassifierHead,
    cell_preprocessing,
    drop_path,
    make_stem,
)
from nasbench.spaces.cell.ops import Identity, make_operation
from nasbench.spaces.cell.plan import STEM_MULTIPLIER, CellSpec, plan_network
from nasbench.spaces.layers import weighted_sum

EDGES = supernet_edges()
"""(node, source) of the 14 edges of a cell, in the order of the architecture parameters' rows."""
NODE_EDGES = tuple(tuple(e for e, (n, _) in enumerate(EDGES) if n == node) for node in range(2, SEARCH_NODES + 2))
"""Per intermediate node, the indices of its incoming edges."""
GROUPS = ("normal", "reduce")
"""The cell types, each with its own architecture parameters."""
NONE = SEARCH_OPERATIONS.index("none")
POOLINGS = ("max_pool_3x3", "avg_pool_3x3")
ALPHA_INIT_SCALE = 1e-3
"""Architecture parameters start as 1e-3 * N(0, 1) (the official DARTS code, quark0/darts
cnn/model_search.py; the paper says zero): near-uniform weights that still break ties."""

EdgeWeights = Mapping[str, torch.Tensor]
"""Per cell type (``GROUPS``), a (14, 8) tensor: row e weighs the operations of edge e."""
ActiveOperations = Sequence[tuple[int, ...]]
"""Per edge, the indices (into ``SEARCH_OPERATIONS``) of the operations to compute."""


class State:
    """A cell state and its ReLU, computed once (on first use) for every operation that
    starts with one."""

    def __init__(self, raw: torch.Tensor):
        self.raw = raw

    @cached_property
    def relu(self) -> torch.Tensor:
        return torch.relu(self.raw)


def drop_leading_relu(op: nn.Module) -> bool:
    """Replace the ReLU that ``op`` applies first to its input by an identity, so that it
    can take the input's shared :attr:`State.relu`; False if ``op`` does not start with one.
    (The search operations register their layers in the order they run them.)"""
    name, first = next((name, m) for name, m in op.named_modules() if not any(m.children()))
    if not isinstance(first, nn.ReLU):
        return False
    op.set_submodule(name, nn.Identity())
    return True


def search_operation(name: str, channels: int, stride: int, pool_norm: bool = True) -> nn.Module:
    """An operation as the supernet builds it: batch norm without affine parameters and,
    after a pooling, only with ``pool_norm`` (without, it is the evaluation networks' bare
    pooling, which has no parameters to switch off)."""
    if name in POOLINGS and not pool_norm:
        return make_operation(name, channels, stride)
    return make_operation(name, channels, stride, affine=False)


class MixedOp(nn.Module):
    """One edge: the weighted sum of the search operations applied to its input."""

    def __init__(self, channels: int, stride: int, pool_norm: bool = True):
        super().__init__()
        self.ops = nn.ModuleDict({name: search_operation(name, channels, stride, pool_norm)
                                  for name in SEARCH_OPERATIONS if name != "none"})
        self.takes_relu = {name: drop_leading_relu(op) for name, op in self.ops.items()}
        self.skip_dropout: Callable[[torch.Tensor], torch.Tensor] | None = None
        """Set by a method that drops the identity skip-connect's output in training (P-DARTS)."""

    def forward(self, x: State, weights: torch.Tensor, active: tuple[int, ...]) -> torch.Tensor | None:
        """``sum_k weights[k] * op_k(x)`` over the ``active`` operations; None when no
        operation is active (the edge contributes nothing)."""
        return weighted_sum((weights[k], self._operation(SEARCH_OPERATIONS[k], x)) for k in active)

    def _operation(self, name: str, x: State) -> torch.Tensor:
        out = self.ops[name](x.relu if self.takes_relu[name] else x.raw)
        if self.skip_dropout is not None and self.training and isinstance(self.ops[name], Identity):
            out = self.skip_dropout(out)
        return out


class DropPath:
    """Drop path on whole edges of the search network (SNAS' official search drops every
    mixed edge's output, constant probability): each sample's edge output is zeroed with
    probability ``prob`` and the rest rescaled, the masks drawn from ``generator`` so that
    a resumed search draws the same ones."""

    def __init__(self, prob: float, generator: torch.Generator):
        if not 0.0 < prob < 1.0:
            raise ValueError(f"drop path probability must be in (0, 1), got {prob}")
        self.prob, self.generator = prob, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.prob, self.generator)


MixedOpFactory = Callable[[int, int], nn.Module]
"""Builds an edge's mixed operation from (channels, stride); its forward takes
``(state, weights_row, active)`` as :meth:`MixedOp.forward` does."""


class SearchCell(nn.Module):
    """A fully connected cell: node i sums the mixed operations from every earlier state;
    the cell's output concatenates the four nodes."""

    def __init__(self, spec: CellSpec, mixed_op: MixedOpFactory):
        super().__init__()
        self.group = "reduce" if spec.reduction else "normal"
        self.reduction = spec.reduction
        self.preprocess0, self.preprocess1 = cell_preprocessing(spec.c_prev_prev, spec.c_prev, spec.c,
                                                                spec.reduction_prev, affine=False)
        self.edges = nn.ModuleList(mixed_op(spec.c, spec.edge_stride(source)) for _, source in EDGES)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                active: ActiveOperations, drop: DropPath | None = None) -> torch.Tensor:
        states = [State(self.preprocess0(s0)), State(self.preprocess1(s1))]
        for incoming in NODE_EDGES:
            outputs = (self.edges[e](states[EDGES[e][1]], weights[e], active[e]) for e in incoming)
            terms = [out for out in outputs if out is not None]
            if drop is not None and self.training:
                terms = [drop(term) for term in terms]
            states.append(State(sum(terms[1:], terms[0]) if terms else self._zero_node(states[1].raw)))
        return torch.cat([state.raw for state in states[2:]], dim=1)

    def _zero_node(self, s1: torch.Tensor) -> torch.Tensor:
        """A node every incoming edge of which is switched off."""
        n, c, h, w = s1.shape
        return s1.new_zeros(n, c, -(-h // 2), -(-w // 2)) if self.reduction else torch.zeros_like(s1)


DENSE: ActiveOperations = (tuple(k for k in range(len(SEARCH_OPERATIONS)) if k != NONE),) * len(EDGES)
"""Every operation but ``none`` on every edge."""


def active_operations(weights: torch.Tensor) -> list[tuple[int, ...]]:
    """Per edge, the operations with a non-zero weight, ``none`` excluded (one host sync)."""
    nonzero = weights.detach().ne(0).cpu()
    nonzero[:, NONE] = False
    return [tuple(row.nonzero().flatten().tolist()) for row in nonzero]


class Supernet(nn.Module):
    """DARTS' search network (``Network`` in the DARTS code) over the cell space; with
    ``pool_norm=False`` (for a ``mixed_op`` that takes it, as :class:`MixedOp` does) and
    ``last_act=True``, GDAS' (``NASNetworkGDAS``)."""

    def __init__(self, channels: int, cells: int, num_classes: int = 10, mixed_op: MixedOpFactory = MixedOp,
                 edge_normalisation: bool = False, pool_norm: bool = True, last_act: bool = False):
        super().__init__()
        specs = plan_network(search_genotype_template(), channels, cells)
        self.stem = make_stem(STEM_MULTIPLIER * channels)
        edge = mixed_op if pool_norm else partial(mixed_op, pool_norm=False)
        self.cells = nn.ModuleList(SearchCell(spec, edge) for spec in specs)
        c_out = specs[-1].c_out
        # GDAS' is an ordinary (affine) batch norm, unlike the cells' ones
        self.last_act = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU()) if last_act else nn.Identity()
        self.head = ClassifierHead(c_out, num_classes)
        self.alphas = nn.ParameterDict({
            group: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(len(EDGES), len(SEARCH_OPERATIONS))) for group in GROUPS
        })
        # PC-DARTS initialises beta as alpha (official code, yuhuixu1993/PC-DARTS model_search.py)
        self.betas = nn.ParameterDict({
            group: nn.Parameter(ALPHA_INIT_SCALE * torch.randn(len(EDGES))) for group in GROUPS
        } if edge_normalisation else {})
        self.drop: DropPath | None = None
        """Set by a method that drops paths in training (SNAS)."""

    def arch_parameters(self) -> list[nn.Parameter]:
        return [*self.alphas.values(), *self.betas.values()]

    def named_weight_parameters(self) -> dict[str, nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return {name: p for name, p in self.named_parameters() if id(p) not in arch}

    def weight_parameters(self) -> list[nn.Parameter]:
        return list(self.named_weight_parameters().values())

    def forward(self, x: torch.Tensor, weights: EdgeWeights, sparse: bool = False,
                active: dict[str, Sequence[Sequence[int]]] | None = None) -> torch.Tensor:
        """Logits under the per-edge operation ``weights`` of each cell type. Edge e of a
        cell type runs the operations ``active[group][e]`` (``none`` excluded, it adds
        nothing); without ``active``, those of non-zero weight if ``sparse`` (a host sync
        per cell type), else every operation but ``none`` (weights never zero: softmax)."""
        check_weights(weights)
        if active is None:
            active = {group: active_operations(weights[group]) if sparse else DENSE for group in GROUPS}
        else:
            active = {group: [tuple(k for k in edge if k != NONE) for edge in rows] for group, rows in active.items()}
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, weights[cell.group], active[cell.group], self.drop)
        return self.head(self.last_act(s1))


class WeightedSupernet(nn.Module):
    """The supernet under fixed edge weights, as a plain ``model(x)`` network (to evaluate it)."""

    def __init__(self, supernet: Supernet, weights: EdgeWeights, sparse: bool):
        super().__init__()
        self.supernet, self.weights, self.sparse = supernet, weights, sparse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.weights, self.sparse)


def check_weights(weights: EdgeWeights) -> None:
    """Refuse anything but a (14, 8) tensor per cell type, naming what is wrong."""
    expected = (len(EDGES), len(SEARCH_OPERATIONS))
    for group in GROUPS:
        if group not in weights or tuple(weights[group].shape) != expected:
            got = tuple(weights[group].shape) if group in weights else "nothing"
            raise ValueError(f"supernet edge weights need a {expected} tensor for {group!r}, got {got}")


def sample_genotype(alphas: EdgeWeights, generator: torch.Generator) -> Genotype:
    """A genotype drawn from the architecture distribution: per edge an operation from
    softmax(alpha) without ``none`` (no derivation picks it), then DARTS' derivation on
    those one-hot rows scaled by their probabilities, which keeps each node's two edges
    whose drawn operation is most probable (FBNet's sampling, on cells)."""
    weights = {}
    for group, alpha in alphas.items():
        probs = alpha.detach().softmax(dim=-1)
        choosable = probs.clone()
        choosable[:, NONE] = 0
        picks = torch.multinomial(choosable, 1, generator=generator)
        weights[group] = torch.zeros_like(probs).scatter_(1, picks, probs.gather(1, picks))
    return derive_genotype(weights)


def derive_genotype(weights: EdgeWeights) -> Genotype:
    """DARTS' discrete cell (Liu et al., ICLR 2019, Sect. 2.4): per node the two incoming
    edges whose strongest non-``none`` operation weighs most, each with that operation
    (strongest edge first; ties go to the lower index); all nodes concatenated."""
    check_weights(weights)
    cells = {}
    for group in GROUPS:
        rows = weights[group].detach().cpu().tolist()
        best = [max((k for k in range(len(row)) if k != NONE), key=lambda k: (row[k], -k)) for row in rows]
        edges = []
        for incoming in NODE_EDGES:
            strongest = sorted(incoming, key=lambda e: -rows[e][best[e]])[:2]
            edges += [(SEARCH_OPERATIONS[best[e]], EDGES[e][1]) for e in strongest]
        cells[group] = tuple(edges)
    concat = tuple(range(2, SEARCH_NODES + 2))
    return Genotype(normal=cells["normal"], normal_concat=concat, reduce=cells["reduce"], reduce_concat=concat)


def path_weights(genotype: Genotype, device: torch.device) -> dict[str, torch.Tensor]:
    """The supernet edge weights that run exactly ``genotype``: per cell type a (14, 8) tensor
    with a one-hot row for each of the genotype's edges and zero rows elsewhere."""
    return {group: w.to(device=device, dtype=torch.float32) for group, w in genotype_weights(genotype).items()}
