"""A run's resource-constraint options, checked and settled before torch or any method is
imported: from the methods' cards (``constraint_forms`` and ``constraint_settings``, read
from their source) and the cost table's file. Every inconsistency is a one-line error
naming the ``nasbench run`` options; :func:`~nasbench.hardware.constraint.build_constraint`
makes the constraint itself from what is settled here."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from nasbench.errors import NasbenchError
from nasbench.hardware import CONSTRAINT_METRICS, TARGETLESS_FORMS, WEIGHTLESS_FORMS

if TYPE_CHECKING:
    from nasbench.hardware.table import CostTable
    from nasbench.protocol import Protocol

Card = Mapping[str, Any]
"""A method's name, ``constraint_forms`` (form -> (published weight or None, exponent)) and
``constraint_settings`` (name -> weight), as its registry card or its class has them."""


@dataclass(frozen=True)
class ConstraintOptions:
    """What a constrained run's options come to: the cost-model ``metric``, its ``target``
    (None in a targetless form), the ``weight`` (None in a weightless form), the loss ``form``
    and its ``exponent``, the one ``space`` costed, and the cost ``table`` given (None: the
    protocol's counts)."""

    metric: str
    target: float | None
    weight: float | None
    form: str
    exponent: float
    space: str
    table: CostTable | None


def settle_constraint(name: str | None, target: float | None, *, table: Path | None = None,
                      weight: float | None = None, setting: str | None = None, form: str | None = None,
                      methods: Sequence[Card], spaces: Sequence[str], protocol: Protocol,
                      cards: Mapping[str, Card]) -> ConstraintOptions | None:
    """The constraint ``methods`` (searching ``spaces``, one per method) are asked for, or None
    where ``name`` (a :data:`CONSTRAINT_METRICS` key) is None: at most ``target`` in the
    metric's unit, costed by the table at ``table`` (else the protocol's counts), with strength
    ``weight`` or the methods' named ``setting`` (else their published weight) in the loss
    ``form`` (else the first method's default). ``cards`` (every registered method's) say in
    the errors which methods could do what was asked."""
    options = {"target": target, "table": table, "constraint-weight": weight, "snas-setting": setting,
               "constraint-form": form}
    given = [f"--{option}" for option, value in options.items() if value is not None]
    if name is None:
        if given:
            raise NasbenchError(f"{', '.join(given)} only go with --constraint METRIC")
        return None
    if name not in CONSTRAINT_METRICS:
        raise NasbenchError(f"unknown --constraint {name!r}; known: {', '.join(CONSTRAINT_METRICS)}")
    names = ", ".join(card["name"] for card in methods)
    unable = [card["name"] for card in methods if not card["constraint_forms"]]
    if unable:
        raise NasbenchError(f"{', '.join(unable)} cannot search under a resource constraint; methods that can: "
                            f"{_constrainable(cards)}")
    form = form or next(iter(methods[0]["constraint_forms"]))
    wrong = [card["name"] for card in methods if form not in card["constraint_forms"]]
    if wrong:
        raise NasbenchError(f"{', '.join(wrong)} cannot search under the {form} loss form; forms per method: "
                            f"{_constrainable(cards)}")
    if form in TARGETLESS_FORMS:
        if target is not None:
            others = sorted({f for card in methods for f in card["constraint_forms"]} - set(TARGETLESS_FORMS))
            raise NasbenchError(f"the {form} constraint form is a penalty without a budget: drop --target, or give "
                                f"--constraint-form {' or '.join(others)} for a budget")
    elif target is None or not 0 < target < math.inf:
        raise NasbenchError("--constraint needs a positive, finite --target (ms for latency, counts for the others)")
    if form in WEIGHTLESS_FORMS and (weight is not None or setting is not None):
        raise NasbenchError(f"the {form} constraint form rejects every candidate over the --target: it takes no "
                            "--constraint-weight or --snas-setting")
    if weight is not None and setting is not None:
        raise NasbenchError("give at most one of --constraint-weight LAMBDA and --snas-setting NAME")
    settings = _shared_settings(methods)
    if setting is not None:
        if not all(card["constraint_settings"] for card in methods):
            owners = ", ".join(card["name"].upper() for card in cards.values() if card["constraint_settings"])
            raise NasbenchError(f"--snas-setting is {owners}' own; with other methods give --constraint-weight")
        if setting not in settings:
            raise NasbenchError(f"unknown --snas-setting {setting!r}; known: {', '.join(settings)}")
        if form not in TARGETLESS_FORMS:
            raise NasbenchError(f"--snas-setting names a strength of SNAS' per-edge-log penalty, not of the {form} form; "
                                "give --constraint-weight LAMBDA")
    published = {tuple(card["constraint_forms"][form]) for card in methods}
    if len(published) > 1:
        raise NasbenchError(f"{names} publish different {form} settings ({sorted(published)}); run them one at a time")
    default_weight, exponent = published.pop()
    weight = settings[setting] if setting is not None else weight if weight is not None else default_weight
    if form in WEIGHTLESS_FORMS:
        weight = None
    elif weight is None:
        raise NasbenchError(f"--constraint with {names} needs --constraint-weight LAMBDA under the {form} form")
    elif not 0 <= weight < math.inf:
        raise NasbenchError(f"--constraint-weight must be a finite number >= 0, got {weight}")
    searched = sorted(set(spaces))
    if len(searched) > 1:
        raise NasbenchError(f"a constrained run costs one space; {names} search {', '.join(searched)}")
    metric = CONSTRAINT_METRICS[name]
    if table is None:
        if metric == "latency_ms":
            raise NasbenchError("--constraint latency needs --table cost_tables/<device>/<table>.json "
                                "(build one with `nasbench profile`)")
        return ConstraintOptions(metric, target, weight, form, exponent, searched[0], None)
    from nasbench.hardware.table import CostTable

    costs = CostTable.load(table)
    if costs.protocol_hash != protocol.hash or costs.space != searched[0]:
        raise NasbenchError(f"cost table {table} is for the {costs.space} space under protocol {costs.protocol} "
                            f"(hash {costs.protocol_hash}), not the {searched[0]} space under {protocol.name} (hash "
                            f"{protocol.hash}); profile it with `nasbench profile --space {searched[0]} "
                            f"--protocol {protocol.name} ...`")
    return ConstraintOptions(metric, target, weight, form, exponent, searched[0], costs)


def _constrainable(cards: Mapping[str, Card]) -> str:
    """The methods that take a constraint, each with its loss forms."""
    return ", ".join(f"{name} ({'/'.join(card['constraint_forms'])})" for name, card in cards.items()
                     if card["constraint_forms"])


def _shared_settings(methods: Sequence[Card]) -> dict[str, float]:
    """The named constraint weights every one of ``methods`` declares, with one value."""
    first = methods[0]["constraint_settings"]
    names = [name for name in first if all(name in card["constraint_settings"] for card in methods)]
    values = {name: {card["constraint_settings"][name] for card in methods} for name in names}
    return {name: value.pop() for name, value in values.items() if len(value) == 1}
