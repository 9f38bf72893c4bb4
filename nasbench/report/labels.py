"""Short words for what the report's rows and figures are about, so that a table fits a screen:
a run variant's constraint (``latency ≤ 2.5 ms, λ 1``, its full spelling in a legend), a data
set's name and a section's title without hashes."""
from __future__ import annotations

from typing import Any

METRIC_WORDS = {"latency_ms": ("latency", "{:g} ms", 1.0), "flops": ("FLOPs", "{:g}M", 1e-6),
                "params": ("params", "{:g}M", 1e-6), "mac_elements": ("MAC", "{:g}M elements", 1e-6)}
"""Per cost-model metric: its name in words, how a target reads, and the scale to that unit."""
DEFAULT_FORM = "hinge"
"""The loss form a label leaves unsaid (the constraint's default)."""


def constraint_label(constraint: dict[str, Any] | None) -> str:
    """A stored constraint in a few words: metric, target with its unit, weight (λ) and, where
    it is not the default, the loss form; empty for an unconstrained run."""
    if constraint is None:
        return ""
    name = METRIC_WORDS.get(constraint["metric"], (constraint["metric"],))[0]
    return f"{name} ≤ {cost_words(constraint['metric'], constraint['target'])}, {loss_words(constraint)}"


def loss_words(constraint: dict[str, Any]) -> str:
    """How a constraint pulls: its weight (λ) and, where it is not the default, its loss form."""
    form = constraint.get("form") or DEFAULT_FORM
    shown = "" if form == DEFAULT_FORM else f", {form}" + (f" β {constraint['exponent']:g}" if form.startswith("mul-log") else "")
    return f"λ {constraint['weight']:g}{shown}"


def cost_words(metric: str, value: float) -> str:
    """A cost of ``metric`` with its unit, to three significant digits (``6.9 ms``, ``300M``)."""
    _, unit, scale = METRIC_WORDS.get(metric, (metric, "{:g}", 1.0))
    return unit.format(float(f"{value * scale:.3g}"))


def variant_label(variant: str, constraint: dict[str, Any] | None) -> str:
    """A run variant in words: its constraint's label; nothing for another space alone (tables
    are per space, so the space shows in the table's title and its own column)."""
    if constraint is not None:
        return constraint_label(constraint)
    return "" if all(part.startswith("space=") for part in variant.split(";") if part) else variant


def data_set_name(data: str) -> str:
    """The data set a stored data identity is, in words: the image data are CIFAR-10 (torchvision's,
    or an .npz of it such as a subset, whose identity is its hash)."""
    if data == "cifar10":
        return "CIFAR-10"
    if data.startswith("npz-"):
        return "CIFAR-10 from an .npz file"
    return data


def compares_with(published_data: str | None, data: str) -> bool:
    """Whether a published figure on ``published_data`` may sit beside a row on ``data``: only
    on the same data set (an ImageNet error never sits in a CIFAR-10 column)."""
    return published_data is not None and data_set_name(data).split(" ")[0] == published_data


def section_words(protocol: str, data: str, space: str | None = None) -> str:
    """A section's title in words (figures): protocol, data set and, where given, space."""
    return f"{protocol} protocol, {data_set_name(data)}" + (f", {space} space" if space else "")
