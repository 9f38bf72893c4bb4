"""Short words for what the report's rows and figures are about, so that a table fits a screen:
a run variant's constraint (``latency ≤ 2.5 ms, λ 1``, its full spelling in a legend), a data
set's name and a section's title without hashes."""
from __future__ import annotations

from typing import Any, Mapping

METRIC_WORDS = {"params": ("params", "{:g}M", 1e-6), "flops": ("FLOPs", "{:g}M", 1e-6),
                "mac_elements": ("MAC", "{:g}M elements", 1e-6), "latency_ms": ("latency", "{:g} ms", 1.0),
                "resources": ("params+FLOPs+MAC", "{:g}", 1.0)}
"""Per cost-model metric, in the order costs are listed: its name in words, how a cost reads,
and the scale to that unit (``resources``, SNAS' mean of the three counts, has no cost of its
own: its runs list their three)."""
DEFAULT_FORM = "hinge"
"""The loss form a label leaves unsaid (the default of a constraint with a target)."""
UNCONSTRAINED = "unconstrained"
"""The setting of a run without a constraint."""


def metric_words(metric: str) -> str:
    return METRIC_WORDS.get(metric, (metric,))[0]


def constraint_label(constraint: dict[str, Any] | None) -> str:
    """A stored constraint in a few words: metric, target with its unit (none for a penalty
    without one, such as SNAS' per-edge-log), weight (λ) and, where it is not the default, the
    loss form; empty for an unconstrained run."""
    if constraint is None:
        return ""
    bound = "" if constraint["target"] is None else f" ≤ {cost_words(constraint['metric'], constraint['target'])}"
    return f"{metric_words(constraint['metric'])}{bound}, {loss_words(constraint)}"


def setting_label(constraint: dict[str, Any] | None) -> str:
    """A constraint without its target (metric, weight, form), so that a figure draws a
    sweep of targets as one series; :data:`UNCONSTRAINED` for none."""
    return UNCONSTRAINED if constraint is None else constraint_label({**constraint, "target": None})


def loss_words(constraint: dict[str, Any]) -> str:
    """How a constraint pulls: its weight (λ) and, where it is not the default, its loss form."""
    form = constraint.get("form") or DEFAULT_FORM
    if constraint.get("weight") is None:  # the filter form: no pull, a hard limit
        return f"hard {form}"
    shown = "" if form == DEFAULT_FORM else f", {form}" + (f" β {constraint['exponent']:g}" if form.startswith("mul-log") else "")
    return f"λ {constraint['weight']:g}{shown}"


def cost_words(metric: str, value: float) -> str:
    """A cost of ``metric`` with its unit, to three significant digits (``6.9 ms``, ``300M``)."""
    _, unit, scale = METRIC_WORDS.get(metric, (metric, "{:g}", 1.0))
    return unit.format(float(f"{value * scale:.3g}"))


def achieved_words(costs: Mapping[str, float], metric: str, target: float | None) -> str:
    """The exact costs a constrained run's architecture achieves (``costs``: per metric its
    penalty read), named where there are several, and its target where it has one."""
    if len(costs) == 1:
        words = ", ".join(cost_words(m, v) for m, v in costs.items())
    else:
        words = ", ".join(f"{metric_words(m)} {cost_words(m, v)}" for m, v in costs.items())
    return words if target is None else f"{words} (target {cost_words(metric, target)})"


def variant_setting(variant: str) -> str:
    """What a run variant says beyond its space (tables are per space): its constraint."""
    return ";".join(part for part in variant.split(";") if part and not part.startswith("space="))


def variant_label(variant: str, constraint: dict[str, Any] | None) -> str:
    """A run variant in words: its constraint's label; nothing for another space alone (tables
    are per space, so the space shows in the table's title and its own column)."""
    if constraint is not None:
        return constraint_label(constraint)
    return variant_setting(variant) and variant


STAND_IN_PREFIX = "ptb-stand-in-"
"""Of the identity of a PTB stand-in corpus (nasbench.corpus): trained on part of PTB's
validation split, so its perplexities are not comparable with published ones."""


def data_set_name(data: str) -> str:
    """The data set a stored data identity is, in words: the image data are CIFAR-10 (torchvision's,
    or an .npz of it such as a subset, whose identity is its hash), the corpora PTB (``ptb-<hash>``)
    or its stand-in."""
    if data == "cifar10":
        return "CIFAR-10"
    if data.startswith("npz-"):
        return "CIFAR-10 from an .npz file"
    if is_stand_in(data):
        return "PTB stand-in (trained on part of PTB's validation split)"
    if data.startswith("ptb-"):
        return "PTB"
    return data


def is_stand_in(data: str) -> bool:
    return data.startswith(STAND_IN_PREFIX)


def same_data_set(published_data: str | None, data: str) -> bool:
    """Whether a published figure on ``published_data`` is of the data set of ``data`` (a PTB
    stand-in's test split is PTB's: its figures may sit beside it, marked as not comparable)."""
    return published_data is not None and data_set_name(data).split(" ")[0] == published_data


def compares_with(published_data: str | None, data: str) -> bool:
    """Whether a published figure on ``published_data`` may sit beside a row on ``data`` as its
    peer: only on the same data set (an ImageNet error never sits in a CIFAR-10 column), and
    never beside a stand-in corpus."""
    return same_data_set(published_data, data) and not is_stand_in(data)


def section_words(protocol: str, data: str, space: str | None = None) -> str:
    """A section's title in words (figures): protocol, data set and, where given, space."""
    return f"{protocol} protocol, {data_set_name(data)}" + (f", {space} space" if space else "")
