"""The evaluation network built from a genotype (DARTS' NetworkCIFAR layout).

Stem (3x3 convolution to ``3 * channels``), ``cells`` stacked cells with reduction cells
at 1/3 and 2/3 of the depth (each doubling the channels), an optional auxiliary head
after the second reduction cell, global average pooling and a linear classifier.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

import torch
from torch import nn

from nasbench.errors import ConfigError
from nasbench.spaces.cell.genotype import CellEdges, Genotype
from nasbench.spaces.cell.ops import (
    Concat,
    FactorizedReduce,
    Identity,
    NodeSum,
    ReLUConvBN,
    make_operation,
)
from nasbench.spaces.cell.plan import (
    STEM_MULTIPLIER,
    CellSpec,
    plan_network,
    reduction_positions,
)


def drop_path(x: torch.Tensor, drop_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole samples of a branch with probability ``drop_prob``, rescaling the rest
    (the mask from ``generator``, else torch's global one)."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep, generator=generator)
    return x * mask / keep


def dropping(drop_prob: float | torch.Tensor, training: bool) -> bool:
    """Whether a training forward drops paths: at a positive probability, or always where
    the probability is a tensor (compiled training, :func:`nasbench.training.train_network`,
    keeps it in one so that its value changing per epoch does not recompile the graph;
    at 0 the mask is all ones)."""
    return training and (torch.is_tensor(drop_prob) or drop_prob > 0.0)


def apply_operation(op: nn.Module, x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """``op(x)``, its output dropped as a path with probability ``drop_prob`` in training;
    never an identity's, which has no weights to regularise (NASNet's official code drops
    every operation's output but the identity's, as DARTS does)."""
    h = op(x)
    if dropping(drop_prob, training) and not isinstance(op, Identity):
        h = drop_path(h, drop_prob)
    return h


def make_stem(c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))


def make_preprocess(c_in: int, c: int, reduce: bool, affine: bool = True) -> nn.Module:
    """Bring a cell input to ``c`` channels, halving its resolution when ``reduce``."""
    return FactorizedReduce(c_in, c, affine) if reduce else ReLUConvBN(c_in, c, 1, 1, 0, affine)


def cell_preprocessing(c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool,
                       affine: bool = True) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to ``c`` channels and the same resolution (``affine=False`` in
    a supernet, as in DARTS' search cells)."""
    return make_preprocess(c_prev_prev, c, reduction_prev, affine), make_preprocess(c_prev, c, False, affine)


class Cell(nn.Module):
    """One genotype cell: each node sums two operations applied to earlier states."""

    def __init__(self, edges: CellEdges, concat: tuple[int, ...], c_prev_prev: int, c_prev: int, c: int,
                 reduction: bool, reduction_prev: bool):
        super().__init__()
        self.preprocess0, self.preprocess1 = cell_preprocessing(c_prev_prev, c_prev, c, reduction_prev)
        self.sources = tuple(source for _, source in edges)
        self.concat = concat
        self.multiplier = len(concat)
        self.ops = nn.ModuleList(
            make_operation(op, c, 2 if reduction and source < 2 else 1) for op, source in edges
        )
        self.node_sum = NodeSum()
        self.combine = Concat()

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for first in range(0, len(self.ops), 2):
            branches = [apply_operation(self.ops[p], states[self.sources[p]], drop_prob, self.training)
                         for p in (first, first + 1)]
            states.append(self.node_sum(*branches))
        return self.combine(*(states[i] for i in self.concat))


class FixedReductionBody(nn.Module):
    """GDAS' hand-designed reduction cell after preprocessing: per input a grouped
    1x3/3x1 factorised convolution branch and a max-pool branch, all concatenated."""

    groups = 8

    def __init__(self, c: int):
        super().__init__()
        if c % self.groups:
            raise ConfigError(f"GDAS' fixed reduction cell uses {self.groups} convolution groups and needs a channel "
                              f"count divisible by {self.groups} at the reduction, got {c}; use a network whose "
                              f"channels are a multiple of {self.groups // 2}")
        self.convs = nn.ModuleList(self._conv_branch(c) for _ in range(2))
        self.pools = nn.ModuleList(nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.BatchNorm2d(c)) for _ in range(2))
        self.combine = Concat()

    @classmethod
    def _conv_branch(cls, c: int) -> nn.Module:
        return nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 3), stride=(1, 2), padding=(0, 1), groups=cls.groups, bias=False),
            nn.Conv2d(c, c, (3, 1), stride=(2, 1), padding=(1, 0), groups=cls.groups, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        outputs = [conv(x) for conv, x in zip(self.convs, (s0, s1))] + [pool(x) for pool, x in zip(self.pools, (s0, s1))]
        if dropping(drop_prob, self.training):
            outputs = [drop_path(h, drop_prob) for h in outputs]
        return self.combine(*outputs)


class FixedReductionCell(nn.Module):
    """GDAS' fixed reduction cell (used when a genotype's ``reduce`` is None)."""

    def __init__(self, c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool):
        super().__init__()
        self.preprocess0, self.preprocess1 = cell_preprocessing(c_prev_prev, c_prev, c, reduction_prev)
        self.body = FixedReductionBody(c)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        return self.body(self.preprocess0(s0), self.preprocess1(s1), drop_prob)


def build_cell(spec: CellSpec) -> nn.Module:
    if spec.edges is None:
        return FixedReductionCell(spec.c_prev_prev, spec.c_prev, spec.c, spec.reduction_prev)
    return Cell(spec.edges, spec.concat, spec.c_prev_prev, spec.c_prev, spec.c, spec.reduction, spec.reduction_prev)


class AuxiliaryHead(nn.Module):
    """The auxiliary classifier on the 8x8 feature map after the second reduction."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class ClassifierHead(nn.Module):
    """Global average pooling and the linear classifier."""

    def __init__(self, c: int, num_classes: int):
        super().__init__()
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.global_pooling(x).flatten(1))


class PlannedCell(Protocol):
    """What :class:`CifarNetwork` needs to know of a planned cell: its output channels."""

    @property
    def c_out(self) -> int: ...


class CifarNetwork(nn.Module):
    """DARTS' CIFAR layout around cells of any space: the stem, the cells built from
    ``specs`` in order (each maps ``(s0, s1, drop_prob)`` to its output), the auxiliary
    head after the second reduction cell, the classifier. ``forward`` gives logits;
    ``forward_train`` also gives the auxiliary logits (None without an auxiliary head).
    ``drop_path_prob`` is set by the trainer epoch by epoch."""

    def __init__(self, channels: int, specs: Sequence[PlannedCell], build: Callable[[Any], nn.Module],
                 num_classes: int, auxiliary: bool):
        super().__init__()
        self.drop_path_prob = 0.0
        self.stem = make_stem(STEM_MULTIPLIER * channels)
        self.aux_position = reduction_positions(len(specs))[1]
        self.cells = nn.ModuleList(build(spec) for spec in specs)
        self.auxiliary_head = AuxiliaryHead(specs[self.aux_position].c_out, num_classes) if auxiliary else None
        self.head = ClassifierHead(specs[-1].c_out, num_classes)

    def _run(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if with_aux and i == self.aux_position and self.auxiliary_head is not None:
                aux_logits = self.auxiliary_head(s1)
        return self.head(s1), aux_logits

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._run(x, with_aux=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, with_aux=False)[0]


class EvalNetwork(CifarNetwork):
    """A genotype's network."""

    def __init__(self, genotype: Genotype, channels: int, cells: int, num_classes: int = 10,
                 auxiliary: bool = False):
        super().__init__(channels, plan_network(genotype, channels, cells), build_cell, num_classes, auxiliary)
        self.genotype = genotype
