"""Resource constraints: how a cost model's expected cost enters a search's loss.

One :class:`Constraint` serves every family: the gradient methods add or multiply its
differentiable expected cost into their loss, and the exact cost of a found architecture
is recorded with the run. :func:`build_constraint` makes one from a run's plain options.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable, Mapping, Sequence

import torch

from nasbench.errors import NasbenchError
from nasbench.hardware import (
    LOSS_FORMS,
    RESOURCE_METRICS,
    TARGETLESS_FORMS,
    WEIGHTLESS_FORMS,
)
from nasbench.hardware.constraint_options import ConstraintOptions, settle_constraint
from nasbench.hardware.cost_model import CostModel

if TYPE_CHECKING:
    from nasbench.protocol import Protocol
    from nasbench.spaces.base import SearchSpace

LOG_UNIT_SCALE = {"latency_ms": 1000.0}
"""The log form takes latency in microseconds, so that its log is positive for every
network (in milliseconds, a network faster than 1 ms would have a negative log, and a
target of 1 ms a zero denominator); counts are taken as they are."""


def loss_setting(weight: float | None, form: str, exponent: float) -> str:
    """A constraint's weight and loss form as its run variant ends with them (``weight=1``,
    ``weight=0.2,form=mul-log,beta=0.3``; ``form=filter`` for a hard filter, which has no
    weight): what the report labels a constrained run by."""
    if form in WEIGHTLESS_FORMS:
        return f"form={form}"
    shown = "" if form == "hinge" else f",form={form}" + (f",beta={exponent:g}" if form.startswith("mul-log") else "")
    return f"weight={weight:g}{shown}"


@dataclass(frozen=True)
class Constraint:
    """A resource constraint a method may search under (a run parameter, not part of the
    protocol): the cost model's ``metric`` should stay at or below ``target`` (in the
    metric's unit), enforced with strength ``weight`` in the loss ``form`` (or, in the
    ``filter`` form, by rejecting every candidate over the target: no loss, no weight). The
    ``per-edge-log`` form has no target (None); the ``resources`` metric averages the cost
    models of :data:`~nasbench.hardware.RESOURCE_METRICS`, its ``components`` (``cost_model``
    is the first)."""

    metric: str
    target: float | None
    weight: float | None
    """None in the ``filter`` form (and only there)."""
    cost_model: CostModel
    form: str = "hinge"
    exponent: float = 1.0
    """beta of the ``mul-log`` form."""
    components: tuple[CostModel, ...] = ()

    def __post_init__(self) -> None:
        if self.form not in LOSS_FORMS:
            raise NasbenchError(f"unknown constraint loss form {self.form!r}; known: {', '.join(LOSS_FORMS)}")
        if (self.target is None) != (self.form in TARGETLESS_FORMS):
            raise NasbenchError(f"the {self.form} constraint form " + ("takes no --target" if self.target is not None
                                                                      else "needs a --target"))
        if (self.weight is None) != (self.form in WEIGHTLESS_FORMS):
            raise NasbenchError(f"the {self.form} constraint form " + ("needs a weight" if self.weight is None
                                                                      else "takes no --constraint-weight"))
        if self.metric == "resources" and self.form not in TARGETLESS_FORMS:
            raise NasbenchError("--constraint resources (SNAS' mean of params, FLOPs and MAC) has no single budget: "
                                "give --constraint params, flops or mac with a --target, or the per-edge-log form")
        if self.form.startswith("mul-log") and self.target * LOG_UNIT_SCALE.get(self.metric, 1.0) <= 1:
            unit = " us" if self.metric == "latency_ms" else ""
            raise NasbenchError(f"the mul-log constraint needs a target above 1{unit} (its log is the denominator), "
                                f"got {self.target}")

    @property
    def models(self) -> tuple[CostModel, ...]:
        """The cost models the penalty reads: the components of ``resources``, else the one."""
        return self.components or (self.cost_model,)

    def apply(self, loss: torch.Tensor, weights: dict[str, torch.Tensor], log_scale: float | None = None) -> torch.Tensor:
        """``loss`` under the constraint, with ``E[C]`` the expected cost under ``weights``:

        - ``per-edge-log``: ``loss + weight * mean_metrics sum_edges log E[C_edge]``, SNAS'
          resource term (:meth:`CostModel.per_edge_log`; latency in microseconds, counts as
          they are, each edge's expected cost floored at 1 as the official code floors it):
          no target, a pull on every edge at any cost;
        - ``hinge``: ``loss + weight * max(0, E[C] - target) / target`` on the whole
          network's expected cost (zero inside the budget, so a constraint the search already
          meets does not push further; relative to the target, so one ``weight`` means the same
          for milliseconds and for FLOPs). Not SNAS' term: its pull per edge is about an
          edge count smaller at one weight, so SNAS' published lambdas do not carry over;
        - ``add-linear``: ``loss + weight * (E[C] - target) / target`` (ProxylessNAS' additive
          form: it keeps pushing below the target);
        - ``mul-log``: ``loss * weight * (log E[C] / log target) ** exponent`` (ProxylessNAS'
          multiplicative form, FBNet's ``CE * alpha * log(LAT) ** beta`` divided by a constant;
          latency in microseconds, see :data:`LOG_UNIT_SCALE`; ProxylessNAS computes it in
          milliseconds itself, its official unit). Its weight and target are
          constant factors of the whole loss: under Adam they do not move the trade-off, only
          the exponent does;
        - ``mul-log-hinge``: as ``mul-log`` with ``E[C]`` floored at the target, so that the
          latency term pushes only above the target (how a target enters FBNet's loss here:
          below it the loss is the plain cross-entropy times ``weight``).

        ``log_scale`` multiplies the cost inside the log of the ``mul-log`` forms (default:
        :data:`LOG_UNIT_SCALE`, microseconds for latency; 1 keeps the cost model's unit, as
        ProxylessNAS' milliseconds). The ``filter`` form is no loss: a search under it rejects
        candidates over the target (:meth:`CostModel.within`), so applying it is an error."""
        if self.form in WEIGHTLESS_FORMS:
            raise NasbenchError(f"the {self.form} constraint form is a hard filter on candidates (a candidate over the "
                                "target is rejected), not a loss term: a method that adds its constraint to a loss "
                                "cannot search under it")
        if self.form == "per-edge-log":
            terms = [model.per_edge_log(weights, LOG_UNIT_SCALE.get(model.metric, 1.0)) for model in self.models]
            return loss + self.weight * sum(terms) / len(terms)
        expected = self.cost_model.expected(weights)
        if self.form == "hinge":
            return loss + self.weight * torch.relu(expected - self.target) / self.target
        if self.form == "add-linear":
            return loss + self.weight * (expected - self.target) / self.target
        if self.form == "mul-log-hinge":
            expected = torch.clamp(expected, min=self.target)
        scale = LOG_UNIT_SCALE.get(self.metric, 1.0) if log_scale is None else log_scale
        return loss * self.weight * (torch.log(expected * scale) / math.log(self.target * scale)) ** self.exponent

    def variant(self) -> str:
        """What tells the run apart from the unconstrained one (and from other constraints)
        in the store: metric, target, weight and, for latency, the device and conditions
        of the table (counts do not depend on the device); and the content hash of a table
        read from a file, so that a re-measured table is a new run, not the old result."""
        table = self.cost_model.table
        where = f"@{table.reference()}" if self.metric == "latency_ms" else ""
        contents = "" if table.content_hash is None else f"#{table.content_hash}"
        bound = "" if self.target is None else f"<={self.target:g}"
        return f"{self.metric}{bound}{where}{contents},{loss_setting(self.weight, self.form, self.exponent)}"

    def describe(self, arch: Hashable) -> dict[str, Any]:
        """The constraint and the exact cost of ``arch`` under it, for the run's details
        (``achieved`` is the first model's; ``costs`` every metric the penalty read)."""
        table = self.cost_model.table
        costs = {model.metric: model.cost(arch) for model in self.models}
        return {"metric": self.metric, "target": self.target, "weight": self.weight, "form": self.form,
                "exponent": self.exponent,
                "table": None if table.path is None else str(table.path),
                "device": table.device_fingerprint, "achieved": costs[self.cost_model.metric], "costs": costs}


def build_constraint(name: str | None, target: float | None, *, table: Path | None = None, weight: float | None = None,
                     setting: str | None = None, form: str | None = None, methods: Sequence[type] = (),
                     spaces: Sequence[SearchSpace] = (), protocol: Protocol, registry: Mapping[str, type]) -> Constraint | None:
    """The resource constraint a run of the strategy classes ``methods`` (searching ``spaces``,
    one per method, as the protocol lays them out) asks for, or None where ``name`` is None:
    the options as :func:`~nasbench.hardware.constraint_options.settle_constraint` settles
    them (``registry``: every registered strategy class, by name, for its errors), made by
    :func:`constraint_for`."""
    settled = settle_constraint(name, target, table=table, weight=weight, setting=setting, form=form,
                                methods=[method_card(cls) for cls in methods], spaces=[s.name for s in spaces],
                                protocol=protocol, cards={n: method_card(cls) for n, cls in registry.items()})
    return None if settled is None else constraint_for(settled, spaces[0], protocol)


def constraint_for(settled: ConstraintOptions, space: SearchSpace, protocol: Protocol) -> Constraint:
    """The constraint ``settled`` options ask for on ``space`` (the one they settled on, as
    ``protocol`` lays it out): costed by their table, else the protocol's counts."""
    from nasbench.hardware.profiler import counts_table

    costs = settled.table if settled.table is not None else counts_table(space, protocol)
    models = tuple(CostModel(costs, space, metric) for metric in
                   (RESOURCE_METRICS if settled.metric == "resources" else (settled.metric,)))
    return Constraint(settled.metric, settled.target, settled.weight, models[0], settled.form, settled.exponent,
                      models if settled.metric == "resources" else ())


def method_card(cls: type) -> dict[str, Any]:
    """What :func:`~nasbench.hardware.constraint_options.settle_constraint` reads of a strategy class."""
    return {"name": cls.name, "constraint_forms": cls.constraint_forms, "constraint_settings": cls.constraint_settings}
