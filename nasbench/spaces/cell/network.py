"""The evaluation network built from a genotype (DARTS' NetworkCIFAR layout).

Stem (3x3 convolution to ``3 * channels``), ``cells`` stacked cells with reduction cells
at 1/3 and 2/3 of the depth (each doubling the channels), an optional auxiliary head
after the second reduction cell, global average pooling and a linear classifier.
"""
from __future__ import annotations

import torch
from torch import nn

from nasbench.errors import ConfigError
from nasbench.spaces.cell.genotype import CellEdges, Genotype
from nasbench.spaces.cell.ops import FactorizedReduce, Identity, ReLUConvBN, make_operation

STEM_MULTIPLIER = 3


def reduction_positions(cells: int) -> tuple[int, int]:
    """Indices of the reduction cells: at 1/3 and 2/3 of the depth."""
    return cells // 3, 2 * cells // 3


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability ``drop_prob``, rescaling the rest."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


def cell_preprocessing(c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool) -> tuple[nn.Module, nn.Module]:
    """Bring both cell inputs to ``c`` channels and the same resolution."""
    first = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
    return first, ReLUConvBN(c_prev, c, 1, 1, 0)


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

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for first in range(0, len(self.ops), 2):
            branches = []
            for position in (first, first + 1):
                op = self.ops[position]
                h = op(states[self.sources[position]])
                if self.training and drop_prob > 0.0 and not isinstance(op, Identity):
                    h = drop_path(h, drop_prob)
                branches.append(h)
            states.append(branches[0] + branches[1])
        return torch.cat([states[i] for i in self.concat], dim=1)


class FixedReductionCell(nn.Module):
    """GDAS' hand-designed reduction cell (used when a genotype's ``reduce`` is None):
    per input a grouped 1x3/3x1 factorised convolution branch and a max-pool branch."""

    multiplier = 4
    groups = 8

    def __init__(self, c_prev_prev: int, c_prev: int, c: int, reduction_prev: bool):
        super().__init__()
        if c % self.groups:
            raise ConfigError(f"GDAS' fixed reduction cell uses {self.groups} convolution groups and needs a channel "
                              f"count divisible by {self.groups} at the reduction, got {c}; use a network whose "
                              f"channels are a multiple of {self.groups // 2}")
        self.preprocess0, self.preprocess1 = cell_preprocessing(c_prev_prev, c_prev, c, reduction_prev)
        self.convs = nn.ModuleList(self._conv_branch(c) for _ in range(2))
        self.pools = nn.ModuleList(nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1), nn.BatchNorm2d(c)) for _ in range(2))

    @staticmethod
    def _conv_branch(c: int) -> nn.Module:
        return nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, (1, 3), stride=(1, 2), padding=(0, 1), groups=FixedReductionCell.groups, bias=False),
            nn.Conv2d(c, c, (3, 1), stride=(2, 1), padding=(1, 0), groups=FixedReductionCell.groups, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        inputs = (self.preprocess0(s0), self.preprocess1(s1))
        outputs = [conv(x) for conv, x in zip(self.convs, inputs)] + [pool(x) for pool, x in zip(self.pools, inputs)]
        if self.training and drop_prob > 0.0:
            outputs = [drop_path(h, drop_prob) for h in outputs]
        return torch.cat(outputs, dim=1)


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


class EvalNetwork(nn.Module):
    """A genotype's network. ``forward`` gives logits; ``forward_train`` also gives the
    auxiliary logits (None without an auxiliary head). ``drop_path_prob`` is set by the
    trainer epoch by epoch."""

    def __init__(self, genotype: Genotype, channels: int, cells: int, num_classes: int = 10,
                 auxiliary: bool = False):
        super().__init__()
        self.genotype = genotype
        self.drop_path_prob = 0.0
        c_curr = STEM_MULTIPLIER * channels
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
        reductions = reduction_positions(cells)
        self.aux_position = reductions[1]
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = c_prev
        for i in range(cells):
            reduction = i in reductions
            if reduction:
                c_curr *= 2
            if reduction and genotype.reduce is None:
                cell = FixedReductionCell(c_prev_prev, c_prev, c_curr, reduction_prev)
            else:
                edges, concat = (genotype.reduce, genotype.reduce_concat) if reduction else (genotype.normal, genotype.normal_concat)
                cell = Cell(edges, concat, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_prev
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def _run(self, x: torch.Tensor, with_aux: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = s1 = self.stem(x)
        aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if with_aux and i == self.aux_position and self.auxiliary_head is not None:
                aux_logits = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), aux_logits

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self._run(x, with_aux=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, with_aux=False)[0]
