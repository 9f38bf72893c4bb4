"""The front page's cost tables: one overview row per measured table with how well its own
predictor does against the measurements' noise floor, then each table's conditions and all
its validation figures."""
from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

from nasbench.report.cost_tables import THIS_MACHINE
from nasbench.report.site.page import Cell, definition_list, num, number, table, text

VALIDATION_COLUMNS = (("n", "n", 0), ("≤5% (%)", "within_5pct", 1), ("≤10% (%)", "within_10pct", 1),
                      ("MAPE (%)", "mape_pct", 2), ("p95 (%)", "p95_abs_error_pct", 2), ("Bias (%)", "bias_pct", 2),
                      ("Kendall τ", "kendall_tau", 3), ("Spearman ρ", "spearman_rho", 3))
"""A predictor's validation figures: header, column, digits. Shares are shown in %."""
OWN, NOISE = "table", "(repeatability)"
"""The validated predictors the overview shows: the table's own, and the measurements' noise floor."""


def _figure(row: dict[str, Any] | None, key: str, digits: int) -> Cell:
    if row is None:
        return num(None)
    return num(100 * row[key] if key.startswith("within") else row[key], digits)


def _validated(group: pd.DataFrame, predictor: str) -> dict[str, Any] | None:
    if "validated_predictor" not in group:
        return None
    rows = group[group["validated_predictor"] == predictor].to_dict("records")
    return rows[0] if rows else None


def cost_tables_section(cost_tables: pd.DataFrame) -> str:
    if cost_tables.empty:
        return ""
    groups = list(cost_tables.groupby("table", sort=False))
    overview = []
    for i, (path, group) in enumerate(groups):
        first, own, noise = group.iloc[0], _validated(group, OWN), _validated(group, NOISE)
        overview.append([
            Cell(f'<a href="#cost-table-{i}">{escape(str(path).rsplit("/", 1)[-1])}</a>', str(path)),
            Cell(escape(str(first["device_fingerprint"])) + ("" if first["machine"] == THIS_MACHINE else " (elsewhere)"),
                 str(first["device_fingerprint"])), text(first["backend"]),
            num(first["threads"], 0), num(first["batch_size"], 0), text(first["space"]), text(first["protocol"]),
            num(first["entries"], 0), _figure(own, "mape_pct", 2), _figure(own, "within_10pct", 1),
            _figure(own, "kendall_tau", 3), _figure(noise, "mape_pct", 2)])
    parts = ['<section id="cost-tables"><h2>Cost tables</h2>',
             "<p>Each measured table and how well its predictor predicts whole networks it never saw (random "
             "architectures measured end to end under the table's conditions), beside the noise floor: the MAPE "
             "between two independent halves of the same measurements, which no predictor can beat. Each table's "
             "other predictors (part sums, FLOPs and MAC baselines) are in its details below.</p>",
             table("cost-tables-overview", ["Table", "Device", "Backend", "Threads", "Batch", "Space",
                                            "Protocol", "Entries", "MAPE (%)", "≤10% (%)", "Kendall τ",
                                            "Noise floor MAPE (%)"], overview, filtered=False)]
    for i, (path, group) in enumerate(groups):
        first = group.iloc[0]
        parts.append(f'<details class="cost-table" id="cost-table-{i}"><summary><code>{escape(str(path))}</code>'
                     "</summary>")
        parts.append(definition_list([
            ("Measured on", f"{escape(str(first['device']))} (<code>{escape(str(first['device_fingerprint']))}</code>), "
                            f"{escape(str(first['machine']))}"),
            ("Conditions", escape(f"{first['backend']}, {first['threads']} thread(s), batch {first['batch_size']}")),
            ("Space and protocol", f"<code>{escape(str(first['space']))}</code>, <code>{escape(str(first['protocol']))}"
                                   f"</code> ({escape(str(first['network']))})"),
            ("Entries", f"{first['entries']}, built in {number(first['build_seconds'], 0)} s"),
            ("Predictor", escape(str(first["predictor"]))),
        ]))
        if "validated_predictor" in group and group["validated_predictor"].notna().any():
            rows = [[text(r["validated_predictor"]), *(_figure(r, key, digits) for _, key, digits in VALIDATION_COLUMNS)]
                    for r in group.to_dict("records")]
            parts.append(table(f"cost-table-{i}-validation", ["Predictor", *(h for h, _, _ in VALIDATION_COLUMNS)],
                               rows, filtered=False))
        parts.append("</details>")
    return "\n".join(parts) + "</section>"
