"""The latency section: every latency-constrained run's target, predicted and measured latency
and test error, against the same methods' unconstrained runs, with the Pareto front."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nasbench.hardware.table import CostTable, table_reference
from nasbench.report.common import SECTION_KEYS, fmt, markdown_table, section_title
from nasbench.report.labels import loss_words, section_words
from nasbench.report.latency import latency_column
from nasbench.report.runs import stored_constraint

TRADEOFF_COLUMNS = [*SECTION_KEYS, "space", "method", "variant", "seed", "target_ms", "predicted_ms", "measured_ms",
                    "test_acc", "search_seconds", "device"]
"""The columns of tradeoff.csv."""
NO_TARGET = "no target"
"""The setting of an unconstrained run."""


def latency_tradeoff(runs: pd.DataFrame, tables: list[CostTable]) -> pd.DataFrame:
    """Every latency-constrained run (target, latency its table predicts for the found
    architecture, latency measured end to end on the table's device, test accuracy, search
    time) and, as the no-target point, the unconstrained runs of the same methods with the
    same table's prediction (no measurement, and none where ``tables`` lacks that table).
    Beside :data:`TRADEOFF_COLUMNS`, ``setting``: the constraint's weight and loss form."""
    constrained = runs[runs["constraint_metric"] == "latency_ms"]
    rows = [{**{k: r[k] for k in TRADEOFF_COLUMNS if k in r}, "target_ms": r["constraint_target"],
             "predicted_ms": r["constraint_achieved"], "measured_ms": r["constraint_measured"],
             "device": r["constraint_device"], "setting": loss_words(stored_constraint(r["details_json"]))}
            for r in constrained.to_dict("records")]
    for r in constrained.drop_duplicates([*SECTION_KEYS, "method"]).to_dict("records"):
        reference = _table_reference(stored_constraint(r["details_json"]))
        column = next((latency_column(t) for t in tables if t.measured and t.reference() == reference), None)
        free = runs[(runs["method"] == r["method"]) & (runs["variant"] == "") & (runs["protocol_hash"] == r["protocol_hash"])
                    & (runs["data"] == r["data"])]
        rows += [{**{k: f[k] for k in TRADEOFF_COLUMNS if k in f}, "target_ms": None, "measured_ms": None,
                  "predicted_ms": f.get(column), "device": r["constraint_device"], "setting": NO_TARGET}
                 for f in free.to_dict("records")]
    return pd.DataFrame(rows, columns=[*TRADEOFF_COLUMNS, "setting"])


def _table_reference(constraint: dict[str, object]) -> str | None:
    """The constraint's table as :meth:`CostTable.reference` names it: device and file name."""
    return None if constraint.get("table") is None else table_reference(constraint["device"], Path(constraint["table"]).name)


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


def plot_tradeoff(section: pd.DataFrame, title: str, path: Path) -> None:
    """Test error against latency: a row of panels per search space, one panel per kind of
    latency (:data:`LATENCY_KINDS`), each with its own Pareto front; a colour per method and
    loss setting, a marker per target, both legends outside the panels (no labels on points,
    so none overlap)."""
    spaces = list(dict.fromkeys(section["space"]))
    figure = Figure(figsize=(11, 0.9 + 3.6 * len(spaces)), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    panels = figure.subplots(len(spaces), len(LATENCY_KINDS), squeeze=False)
    series = list(dict.fromkeys(zip(section["method"], section["setting"])))
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    targets = sorted(section["target_ms"].dropna().unique())
    marker = {target: MARKERS[i % len(MARKERS)] for i, target in enumerate(targets)}
    for row, space in enumerate(spaces):
        for column, (latency, words) in enumerate(LATENCY_KINDS):
            axes, points = panels[row, column], section[(section["space"] == space) & section[latency].notna()]
            for (method, setting), group in points.groupby(["method", "setting"], sort=False):
                colour = colours[series.index((method, setting)) % len(colours)]
                for target, at in group.groupby(group["target_ms"].fillna(-1.0), sort=False):
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
    handles += [Line2D([], [], color="0.3", marker=marker[t], linestyle="", label=f"target {t:g} ms") for t in targets]
    handles += [Line2D([], [], color="0.3", marker="x", linestyle="", label=NO_TARGET),
                Line2D([], [], color="black", linewidth=1, label="Pareto front")]
    figure.legend(handles=handles, loc="outside right center", fontsize=8)
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def tradeoff_markdown(tradeoff: pd.DataFrame, out_dir: Path) -> tuple[str, list[Path]]:
    if tradeoff.empty:
        return "", []
    lines = ["", "## Latency targets: predicted against measured", "",
             "Every latency-constrained run: the target, the latency the table predicts for the found architecture, "
             "the latency measured end to end on the table's device after the search (a table that misleads a "
             "search shows as a gap), the test error and the search time; unconstrained runs of the same methods "
             "as the no-target point (predicted only). Per run: tradeoff.csv."]
    figures = []
    for section_key, section in tradeoff.groupby(SECTION_KEYS, sort=False):
        figures.append(out_dir / f"tradeoff_{'_'.join(section_key)}.png")
        plot_tradeoff(section, f"Test error against latency: {section_words(section_key[0], section_key[2])}", figures[-1])
        table = markdown_table(pd.DataFrame({
            "Method": section["method"], "Weight, form": section["setting"],
            "Seed": section["seed"], "Target (ms)": [fmt(v, 2) for v in section["target_ms"]],
            "Predicted (ms)": [fmt(v, 3) for v in section["predicted_ms"]],
            "Measured (ms)": [fmt(v, 3) for v in section["measured_ms"]],
            "Test error (%)": [fmt(v, 2) for v in test_error(section["test_acc"])],
            "Search (s)": [fmt(v, 0) for v in section["search_seconds"]], "Device": section["device"]}))
        lines += ["", f"### {section_title(*section_key)}", "", table,
                  "", f"![test error against latency]({figures[-1].name})"]
    return "\n".join(lines) + "\n", figures
