"""SNAS (Xie, Zheng, Liu & Lin, "SNAS: Stochastic Neural Architecture Search", ICLR 2019).

Each edge's one-hot choice of operation is relaxed to a Gumbel-softmax (concrete) sample
``Z = softmax((alpha + G) / t)``, G standard Gumbel noise, whose temperature t is annealed
over the search. Optimisation is single-level: one loss on the search-train batch, under
one sample, trains the weights (SGD) and the architecture parameters (Adam) together.
The search network drops paths: every mixed edge's output, in training, with the official
command's constant probability 0.3 (the masks from the search's generator).

Under a resource :class:`~nasbench.hardware.constraint.Constraint` the loss gains, by
default, the paper's resource term (Sect. 2.4, the official code's ``--method
reparametrization --log_penalty``): lambda times the sum over the cell's edges of the log
of each edge's expected cost under the sample ``Z``, averaged over the cells of a type;
``--constraint resources`` averages it over parameters, FLOPs and MAC as the code's default
``--separation all`` does. No target: a Lagrangian pull on every edge. The expected cost
counts the edges and operations DARTS' derivation keeps (two inputs per node, never
``none``; :class:`~nasbench.hardware.cost_model.CostModel`), not the code's 14 edges with a
free ``none``, because our derived network is DARTS' 8-edge cell, not the code's
"edge_all" one. The ``hinge`` form (a budget on the whole network's expected cost, for
latency targets) is ours, not the paper's.

Derivation reads the deterministic distribution softmax(alpha): per node the two
incoming edges whose strongest non-``none`` operation is most probable, each with that
operation (:func:`~nasbench.spaces.cell.supernet.derive_genotype`, DARTS' rule: the cell
space's genotypes have two inputs per node; the official code's "edge_all" children, which
keep every edge whose most probable operation is not ``none``, do not fit it).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasbench.spaces.cell.supernet import DropPath
from nasbench.strategies.darts import DARTS_ARCHITECTURE, DARTS_WEIGHTS
from nasbench.strategies.supernet_search import Batch, SupernetSearch

# Official code, github.com/SNAS-Series/SNAS-Series SNAS/train_search.py and utils.py: the
# weights' recipe is DARTS' (lr 0.025 cosine to 0.001, momentum 0.9, weight decay 3e-4,
# clipping at 5); the architecture's Adam is its distributed setting (lr 3e-4, betas
# (0.5, 0.999), weight decay 1e-3), the paper naming Adam; architecture gradients are
# clipped at norm 10. The temperature falls linearly from --temp 1 to --temp_min 0.03
# over the search (Temp_Scheduler.decay_whole_process; epoch e of E uses the value at
# (e + 1) / E, so the last epoch searches at the minimum).
SNAS_WEIGHTS = DARTS_WEIGHTS
SNAS_ARCHITECTURE = DARTS_ARCHITECTURE
ARCH_GRAD_CLIP = 10.0
TEMPERATURE_START = 1.0
TEMPERATURE_MIN = 0.03
SEARCH_DROP_PATH = 0.3
"""The official README's 8-cell CIFAR-10 search command: ``--drop_path_prob 3e-1`` (its
20-cell search uses 0.2), constant over the search (train_search.py)."""
PER_EDGE_LOG_LAMBDA = 1e-2
"""The official code's default lambda for its reparametrization estimator with the log
penalty (train_search.py: ``default_resource_lambda``)."""
CONSTRAINT_SETTINGS = {"mild": PER_EDGE_LOG_LAMBDA}
"""The resource constraint strengths (lambda) the paper names and the official code gives.
``mild`` is the code's default for its expected-cost ("reparametrization") estimator with
the log penalty (``train_search.py``), the value its README's 8-cell CIFAR-10 search, whose
released model is the "mild constraint" one, gave until June 2020 (since then 1.5e-3,
the value of its 20-cell search). The official code and README name no lambda for the
moderate and aggressive settings, so they are not offered."""


def gumbel_noise(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel samples, ``-log(-log U)``, shaped like ``like``, from ``generator``."""
    uniform = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    return -torch.log(-torch.log(uniform))


def gumbel_softmax(alpha: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """One Gumbel-softmax (concrete) sample per row, ``softmax((alpha + G) / t)``,
    differentiable in alpha; its noise from ``generator``."""
    return ((alpha + gumbel_noise(alpha, generator)) / temperature).softmax(dim=-1)


def linear_temperature(start: float, end: float, progress: float) -> float:
    """Linear from ``start`` (progress 0) to ``end`` (progress 1, exactly)."""
    return end + (start - end) * (1 - progress)


class Snas(SupernetSearch):
    """SNAS: Gumbel-softmax samples of the architecture, single-level training, an
    optional resource constraint on the samples' expected cost."""

    name = "snas"
    strategy_class = "GO"
    summary = "SNAS: Gumbel-softmax sampled supernet, single-level, optional resource constraint"
    constraint_forms = {"per-edge-log": (PER_EDGE_LOG_LAMBDA, 1.0), "hinge": (None, 1.0)}
    constraint_settings = CONSTRAINT_SETTINGS
    weight_recipe = SNAS_WEIGHTS
    arch_recipe = SNAS_ARCHITECTURE

    def __init__(self, context):
        super().__init__(context)
        self.supernet.drop = DropPath(SEARCH_DROP_PATH, self.generator)

    def temperature(self) -> float:
        """Epoch e of E searches at the value for progress (e + 1) / E, the last at the minimum."""
        return linear_temperature(TEMPERATURE_START, TEMPERATURE_MIN, (self.epochs_done + 1) / self.budget())

    def search_weights(self) -> dict[str, torch.Tensor]:
        """One Gumbel-softmax sample per edge, differentiable in alpha."""
        t = self.temperature()
        return {group: gumbel_softmax(alpha, t, self.generator) for group, alpha in self.supernet.alphas.items()}

    def objective(self, batch: Batch, weights: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss both parameter sets descend, its cross-entropy part)."""
        loss = self.loss(batch, weights)
        return self.constrained(loss, weights), loss

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One sample, one backward pass, both optimisers step; the validation batch only
        measures the sample's loss (single-level: it trains nothing)."""
        weights = self.search_weights()
        objective, train_loss = self.objective(train, weights)
        self.weight_optimizer.zero_grad(set_to_none=True)
        self.arch_optimizer.zero_grad(set_to_none=True)
        objective.backward()
        self.weight_recipe.clip(self.supernet.weight_parameters())
        nn.utils.clip_grad_norm_(self.supernet.arch_parameters(), ARCH_GRAD_CLIP)
        self.weight_optimizer.step()
        self.arch_optimizer.step()
        with torch.no_grad():
            val_loss = self.loss(val, {group: w.detach() for group, w in weights.items()})
        return val_loss, train_loss.detach()

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        return {**super()._record(lr, train_loss, val_loss), "temperature": self.temperature()}
