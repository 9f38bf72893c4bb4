"""The trade-off section: every constrained run beside the same methods' unconstrained runs,
with the found network's exact costs (params, FLOPs, MAC, predicted and measured latency) and
test error, so that a sweep of a constraint's weight or target reads as one series; and test
error against latency with the Pareto front."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nasbench.hardware.table import CostTable, table_reference
from nasbench.report.common import SECTION_KEYS, fmt, markdown_table, section_title
from nasbench.report.labels import (
    UNCONSTRAINED,
    constraint_label,
    cost_words,
    section_words,
    setting_label,
)
from nasbench.report.latency import counted, latency_column
from nasbench.report.runs import stored_constraint

TRADEOFF_COLUMNS = [*SECTION_KEYS, "space", "method", "variant", "seed", "constraint", "weight", "target", "params",
                    "flops", "mac_elements", "predicted_ms", "measured_ms", "device", "test_acc", "search_seconds"]
"""The columns of tradeoff.csv (``target`` in the unit of the constraint's metric)."""
FIGURE_COLUMNS = ["setting", "target_words"]
"""Beside them, what the figure draws by: a colour per setting (the constraint without its
target), a marker per target in words."""
GROUP_KEYS = [*SECTION_KEYS, "method", "space"]
"""What a constrained run is compared within: its method's runs on its space, protocol and data."""


def tradeoff(runs: pd.DataFrame, tables: list[CostTable]) -> pd.DataFrame:
    """Every constrained run and, as the unconstrained point (λ 0), its method's unconstrained
    runs on the same space, protocol and data, a method's runs by constraint, then target and
    weight: its constraint in words, the found network's exact params and FLOPs (as stored),
    MAC (counted on the protocol's network), the latency a measured cost table predicts (see
    :func:`_predicted`) with that table's device, the latency measured end to end after a
    latency-constrained search, test accuracy and search time; and :data:`FIGURE_COLUMNS`."""
    groups = runs.loc[runs["constraint_metric"].notna(), GROUP_KEYS].drop_duplicates()
    rows = runs.merge(groups, on=GROUP_KEYS)
    if rows.empty:
        return pd.DataFrame(columns=[*TRADEOFF_COLUMNS, *FIGURE_COLUMNS])
    own = _own_tables(rows, tables)
    latency = sorted(c for c in rows.columns if c.startswith("latency_ms "))
    records = []
    for run, mac in zip(rows.to_dict("records"), counted(rows, "mac_elements")):
        constraint = stored_constraint(run["details_json"])
        predicted, device = _predicted(run, [own.get(tuple(run[k] for k in GROUP_KEYS)), *latency])
        records.append({**{k: run[k] for k in (*SECTION_KEYS, "space", "method", "variant", "seed", "params", "flops",
                                                "test_acc", "search_seconds")},
                        "constraint": constraint_label(constraint) or UNCONSTRAINED,
                        "weight": None if constraint is None else constraint["weight"],
                        "target": None if constraint is None else constraint["target"],
                        "mac_elements": mac, "predicted_ms": predicted, "device": device,
                        "measured_ms": run["constraint_measured"], "setting": setting_label(constraint),
                        "target_words": _target_words(constraint), "_order": _order(constraint, run["seed"])})
    ordered = sorted(records, key=lambda r: (r["space"], r["method"], r["_order"]))
    frame = pd.DataFrame(ordered, columns=[*TRADEOFF_COLUMNS, *FIGURE_COLUMNS])
    return frame.astype({"mac_elements": "Int64"})  # a count: written whole, not to the CSV's six digits


def _target_words(constraint: dict | None) -> str | None:
    return None if constraint is None or constraint["target"] is None else cost_words(constraint["metric"],
                                                                                      constraint["target"])


def _order(constraint: dict | None, seed: int) -> tuple:
    """Unconstrained first, then per metric and loss form by target and weight: a sweep in order."""
    if constraint is None:
        return (0, "", "", math.inf, 0.0, seed)
    target = math.inf if constraint["target"] is None else constraint["target"]
    return (1, constraint["metric"], str(constraint.get("form")), target, constraint["weight"] or 0.0, seed)


def _own_tables(rows: pd.DataFrame, tables: list[CostTable]) -> dict[tuple, str]:
    """Per method, space and section: the latency column of its (first) latency constraint's
    table, where the report has that table."""
    own = {}
    for run in rows[rows["constraint_metric"] == "latency_ms"].to_dict("records"):
        constraint = stored_constraint(run["details_json"])
        reference = None if constraint.get("table") is None else table_reference(
            constraint["device"], Path(constraint["table"]).name)
        column = next((latency_column(t) for t in tables if t.measured and t.reference() == reference), None)
        own.setdefault(tuple(run[k] for k in GROUP_KEYS), column)
    return own


def _predicted(run: dict, columns: list[str | None]) -> tuple[float | None, str | None]:
    """A run's predicted latency and the device of the table it comes from: a latency
    constraint's own; else that of its method's latency constraint (``columns[0]``), else the
    first of the report's measured tables (by column name) that predicts it."""
    if run["constraint_metric"] == "latency_ms":
        return run["constraint_achieved"], run["constraint_device"]
    column = next((c for c in columns if c is not None and not pd.isna(run.get(c))), None)
    return (None, None) if column is None else (run[column], column.split(" ")[2])


def pareto_front(points: pd.DataFrame, latency: str) -> pd.DataFrame:
    """The points no other point beats on both latency and test error (lower is better in both)."""
    ordered = points.dropna(subset=[latency]).sort_values([latency, "test_acc"], ascending=[True, False])
    return ordered[ordered["test_acc"] > ordered["test_acc"].cummax().shift(fill_value=-1.0)]


def test_error(accuracy: pd.Series) -> pd.Series:
    """The report's one metric: test error in %."""
    return 100 * (1 - accuracy)


LATENCY_KINDS = (("measured_ms", "measured end to end after the search"), ("predicted_ms", "predicted by the cost table"))
"""The panels' latencies, never mixed on one axis: (column, words)."""
MARKERS = "osD^vPX*<>"
NO_TARGET = "no target"
"""The marker's words for a run without a target (unconstrained, or a penalty without one)."""


def plot_tradeoff(section: pd.DataFrame, title: str, path: Path) -> None:
    """Test error against latency: a row of panels per search space, one panel per kind of
    latency (:data:`LATENCY_KINDS`), each with its own Pareto front; a colour per method and
    setting (a constraint without its target), a marker per target, both legends outside the
    panels (no labels on points, so none overlap)."""
    spaces = list(dict.fromkeys(section["space"]))
    figure = Figure(figsize=(11, 0.9 + 3.6 * len(spaces)), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    panels = figure.subplots(len(spaces), len(LATENCY_KINDS), squeeze=False)
    series = list(dict.fromkeys(zip(section["method"], section["setting"])))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    targets = list(dict.fromkeys(section["target_words"].dropna()))
    marker = {target: MARKERS[i % len(MARKERS)] for i, target in enumerate(targets)}
    for row, space in enumerate(spaces):
        for column, (latency, words) in enumerate(LATENCY_KINDS):
            axes, points = panels[row, column], section[(section["space"] == space) & section[latency].notna()]
            for (method, setting), group in points.groupby(["method", "setting"], sort=False):
                colour = colours[series.index((method, setting)) % len(colours)]
                for target, at in group.groupby(group["target_words"].fillna(NO_TARGET), sort=False):
                    axes.scatter(at[latency], test_error(at["test_acc"]), color=colour, marker=marker.get(target, "x"), s=30)
            front = pareto_front(points, latency)
            axes.plot(front[latency], test_error(front["test_acc"]), color="black", linewidth=1)
            axes.set_title(f"{space} space, latency {words}", fontsize=9, loc="left")
            axes.set_xlabel("latency (ms)")
            axes.set_ylabel("test error (%)")
            axes.grid(alpha=0.3)
            if points.empty:
                axes.text(0.5, 0.5, "no run measured this", transform=axes.transAxes, ha="center", color="0.5")
    handles = [Line2D([], [], color=colours[i % len(colours)], marker="o", linestyle="", label=f"{m}, {s}")
               for i, (m, s) in enumerate(series)]
    handles += [Line2D([], [], color="0.3", marker=marker[t], linestyle="", label=f"target {t}") for t in targets]
    handles += [Line2D([], [], color="0.3", marker="x", linestyle="", label=NO_TARGET),
                Line2D([], [], color="black", linewidth=1, label="Pareto front")]
    figure.legend(handles=handles, loc="outside right center", fontsize=8)
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def tradeoff_markdown(rows: pd.DataFrame, out_dir: Path) -> tuple[str, list[Path]]:
    if rows.empty:
        return "", []
    lines = ["", "## Trade-off: test error against cost, per constraint", "",
             "Every constrained run and, as the unconstrained point, its method's unconstrained runs on the same space; "
             "a method's runs by constraint, then target and weight (λ), so that a sweep reads as a series. The found "
             "network's exact costs: params (millions, auxiliary head excluded), FLOPs (millions, one multiply-add = one "
             "FLOP), MAC (memory accesses, millions of elements, counted on the protocol's network), the latency a "
             "measured cost table predicts (a latency constraint's own table, else that of the method's latency "
             "constraint, else the first of the report's tables of the run's space and protocol; its device in the "
             "last column) and, for a latency constraint, the latency measured end to end on the table's device after "
             "the search (a table that misleads a search shows as a gap); then test error and search time. Per run: "
             "tradeoff.csv."]
    figures = []
    for section_key, section in rows.groupby(SECTION_KEYS, sort=False):
        lines += ["", f"### {section_title(*section_key)}", "", markdown_table(pd.DataFrame({
            "Method": section["method"], "Space": section["space"], "Constraint": section["constraint"],
            "Seed": section["seed"], "Test error (%)": [fmt(v, 2) for v in test_error(section["test_acc"])],
            "Params (M)": [fmt(v / 1e6, 3) for v in section["params"]],
            "FLOPs (M)": [fmt(v / 1e6, 1) for v in section["flops"]],
            "MAC (M)": [fmt(v / 1e6, 2) for v in section["mac_elements"].astype(float)],
            "Predicted (ms)": [fmt(v, 3) for v in section["predicted_ms"]],
            "Measured (ms)": [fmt(v, 3) for v in section["measured_ms"]],
            "Search (s)": [fmt(v, 0) for v in section["search_seconds"]], "Device": section["device"].fillna("–")}))]
        if section[["predicted_ms", "measured_ms"]].notna().any(axis=None):
            figures.append(out_dir / f"tradeoff_{'_'.join(section_key)}.png")
            plot_tradeoff(section, f"Test error against latency: {section_words(section_key[0], section_key[2])}",
                          figures[-1])
            lines += ["", f"![test error against latency]({figures[-1].name})"]
    return "\n".join(lines) + "\n", figures
