"""The latency section: every latency-constrained run's target, predicted and measured latency
and accuracy, against the same methods' unconstrained runs, with the Pareto front."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nasbench.hardware.constraint import loss_setting
from nasbench.hardware.table import CostTable, table_reference
from nasbench.report.common import SECTION_KEYS, fmt, section_title
from nasbench.report.latency import latency_column
from nasbench.report.runs import stored_constraint

TRADEOFF_COLUMNS = [*SECTION_KEYS, "method", "variant", "seed", "target_ms", "predicted_ms", "measured_ms",
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
             "device": r["constraint_device"], "setting": _setting(stored_constraint(r["details_json"]))}
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


def _setting(constraint: dict[str, object]) -> str:
    """A constrained run's weight and loss form (its target and table have columns of their own)."""
    return loss_setting(constraint["weight"], constraint["form"], constraint["exponent"])


def _table_reference(constraint: dict[str, object]) -> str | None:
    """The constraint's table as :meth:`CostTable.reference` names it: device and file name."""
    return None if constraint.get("table") is None else table_reference(constraint["device"], Path(constraint["table"]).name)


def pareto_front(points: pd.DataFrame, latency: str) -> pd.DataFrame:
    """The points no other point beats on both latency (lower) and test accuracy (higher)."""
    ordered = points.dropna(subset=[latency]).sort_values([latency, "test_acc"], ascending=[True, False])
    return ordered[ordered["test_acc"] > ordered["test_acc"].cummax().shift(fill_value=-1.0)]


def plot_tradeoff(section: pd.DataFrame, title: str, path: Path) -> None:
    """Test accuracy against latency (measured where a run measured it, else predicted), a
    marker per method and form, the Pareto front as a line."""
    section = section.assign(latency=section["measured_ms"].fillna(section["predicted_ms"]))
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for (method, setting), group in section.groupby(["method", "setting"], sort=False):
        axes.scatter(group["latency"], 100 * group["test_acc"], label=f"{method}, {setting}")
        for row in group.itertuples():
            if pd.notna(row.target_ms):
                axes.annotate(f"{row.target_ms:g} ms", (row.latency, 100 * row.test_acc), fontsize=7,
                              xytext=(3, 3), textcoords="offset points")
    front = pareto_front(section, "latency")
    axes.plot(front["latency"], 100 * front["test_acc"], color="black", linewidth=1, label="Pareto front")
    axes.set_xlabel("latency (ms, measured end to end; predicted where not measured)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def tradeoff_markdown(tradeoff: pd.DataFrame, out_dir: Path) -> tuple[str, list[Path]]:
    if tradeoff.empty:
        return "", []
    lines = ["", "## Latency targets: predicted against measured", "",
             "Every latency-constrained run: the target, the latency the table predicts for the found architecture, "
             "the latency measured end to end on the table's device after the search (a table that misleads a "
             "search shows as a gap), the test accuracy and the search time; unconstrained runs of the same methods "
             "as the no-target point (predicted only). Per run: tradeoff.csv."]
    figures = []
    for section_key, section in tradeoff.groupby(SECTION_KEYS, sort=False):
        figures.append(out_dir / f"tradeoff_{'_'.join(section_key)}.png")
        plot_tradeoff(section, section_title(*section_key).replace("`", ""), figures[-1])
        table = pd.DataFrame({
            "Method": section["method"], "Form, weight": section["setting"],
            "Seed": section["seed"], "Target (ms)": [fmt(v, 2) for v in section["target_ms"]],
            "Predicted (ms)": [fmt(v, 3) for v in section["predicted_ms"]],
            "Measured (ms)": [fmt(v, 3) for v in section["measured_ms"]],
            "Test acc (%)": [fmt(100 * v, 2) for v in section["test_acc"]],
            "Search (s)": [fmt(v, 0) for v in section["search_seconds"]], "Device": section["device"]})
        lines += ["", f"### {section_title(*section_key)}", "", table.to_markdown(index=False, disable_numparse=True),
                  "", f"![accuracy against latency]({figures[-1].name})"]
    return "\n".join(lines) + "\n", figures
