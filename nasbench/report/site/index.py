"""The site's front page: per results section the comparison table and the test error against
every cost (drawn by the page's script from the runs embedded in it), then the cost tables
with their validation figures."""
from __future__ import annotations

import re
from html import escape
from typing import Any

import pandas as pd

from nasbench.report.common import SECTION_KEYS, section_title
from nasbench.report.drawings import run_label
from nasbench.report.runs import achieved_label
from nasbench.report.site.costs import cost_tables_section
from nasbench.report.site.page import (
    Cell,
    missing,
    num,
    number,
    table,
    text,
)

COST_METRICS = (("params_m", "Params (M)"), ("flops_m", "FLOPs (M, MAC=1)"), ("search_hours", "Search cost (h)"))
"""The costs every run has; each latency column of a measured cost table adds one."""


def html_title(title: str) -> str:
    """A section title's Markdown code spans as HTML."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", escape(title))


def method_file(method: str) -> str:
    return "methods/" + re.sub(r"[^A-Za-z0-9_.-]+", "-", method) + ".html"


def latency_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of latency predicted by a measured cost table that have a value in ``frame``."""
    return [c for c in frame.columns if c.startswith("latency_ms ") and frame[c].notna().any()]


def latency_label(column: str, columns: list[str]) -> tuple[str, str]:
    """A latency column (``latency_ms <space> <device> <backend> t<threads> b<batch>``) in short,
    naming the device only where ``columns`` are of several devices, and in full."""
    parts = column.split(" ")
    if len(parts) != 6:
        return column, column
    _, space, device, backend, threads, batch = parts
    several = len({c.split(" ")[2] for c in columns if len(c.split(" ")) == 6}) > 1
    return (f"Latency (ms), {space}, {backend} {threads} {batch}" + (f", {device}" if several else ""),
            f"Latency (ms) predicted by the {space} cost table measured on {device} ({backend}, "
            f"{threads[1:]} thread(s), batch {batch[1:]})")


def chart_points(section_runs: pd.DataFrame) -> tuple[list[dict], list[dict[str, str]]]:
    """The section's runs as the charts' points, and the metrics the section has values of."""
    latency = latency_columns(section_runs)
    metrics = [{"key": key, "label": name, "title": name} for key, name in COST_METRICS] + \
              [dict(zip(("key", "label", "title"), (c, *latency_label(c, latency)))) for c in latency]
    points = [{"method": run["method"], "label": run_label(run), "space": run["space"], "seed": run["seed"], "test_error": 100 * (1 - run["test_acc"]), "params_m": run["params"] / 1e6,
               "flops_m": run["flops"] / 1e6, "search_hours": run["search_seconds"] / 3600,
               **{c: run[c] for c in latency}}
              for run in section_runs.to_dict("records")]
    return points, metrics


def comparison_table(table_id: str, section: pd.DataFrame) -> str:
    """The section's summary rows; optional columns appear where the summary has them."""
    latency = latency_columns(section)
    constrained = section["constraint_metric"].notna().any()
    columns: list[tuple[str | tuple[str, str], Any]] = [
        ("Method", lambda r: Cell(f'<a href="{method_file(r["method"])}">{escape(run_label(r))}</a>', run_label(r))),
        ("Strategy", lambda r: text(r["strategy"])),
        ("Space", lambda r: text(r["space"])),
        ("Test error (%)", lambda r: Cell(f"{number(r['test_error_mean'])} ± {number(r['test_error_std'])}",
                                          r["test_error_mean"])),
    ]
    if "test_error_ci_low" in section:
        columns.append(("95% CI", lambda r: Cell("–" if missing(r["test_error_ci_low"]) else
                                                 f"{number(r['test_error_ci_low'])} – {number(r['test_error_ci_high'])}",
                                                 r["test_error_ci_low"])))
    columns += [("n", lambda r: num(r["n"], 0)), ("Δ vs random (pp)", lambda r: num(r["delta_vs_random"]))]
    if "distinguishable" in section:
        columns.append(("Distinguishable", lambda r: text(r["distinguishable"])))
    columns += [
        ("Params (M)", lambda r: num(r["params_m"], 3)),
        ("FLOPs (M)", lambda r: num(r["flops_m"], 1)),
        ("Search cost (h)", lambda r: num(r["search_hours"], 3)),
        ("Skip share (N / R)", lambda r: Cell(f"{number(r['skip_normal'])} / {number(r['skip_reduce'])}",
                                              r["skip_normal"])),
        *((latency_label(c, latency), lambda r, c=c: num(r[c], 2)) for c in latency),
    ]
    if constrained:
        columns.append(("Constraint achieved", lambda r: text(achieved_label(r) and achieved_label(r) + (
            f" on {r['constraint_device']}" if r["constraint_device"] else ""))))
    columns += [("Published error (%)", lambda r: num(r["published_test_error"])),
                ("Published params (M)", lambda r: num(r["published_params_m"], 1)),
                ("Published search (GPU-days)", lambda r: num(r["published_search_cost_gpu_days"], 1))]
    if "published_data" in section:
        columns.append(("Published data", lambda r: text(r["published_data"])))
    rows = [[render(row) for _, render in columns] for row in section.to_dict("records")]
    return table(table_id, [header for header, _ in columns], rows)


def charts(section_index: int, metrics: list[dict[str, str]]) -> str:
    """Empty figures the page's script draws into, one per cost."""
    return '<div class="charts">' + "".join(
        f'<figure class="chart" data-section="{section_index}" data-metric="{escape(m["key"])}">'
        f'<figcaption>Test error (%) against {escape(m["title"])}</figcaption><div class="plot"></div>'
        '<div class="tooltip" hidden></div></figure>' for m in metrics) + "</div>"


def index_page(runs: pd.DataFrame, summary: pd.DataFrame, cost_tables: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """The front page's body and its data (the charts' points per section)."""
    methods = list(dict.fromkeys(runs["method"])) if not runs.empty else []
    parts = [f"<p>{len(runs)} finished runs of {len(methods)} methods. Every table sorts by a click on its header "
             "and filters by the box above it; every point of a chart shows its run when hovered.</p>"]
    if methods:
        parts.append('<nav class="method-links" aria-label="Methods"><h2>Methods</h2><ul>' + "".join(
            f'<li><a href="{method_file(m)}">{escape(m)}</a></li>' for m in methods) + "</ul></nav>")
    sections = []
    for i, (key, section) in enumerate(summary.groupby(SECTION_KEYS, sort=False) if not summary.empty else ()):
        section_runs = runs[(runs[SECTION_KEYS] == pd.Series(key, index=SECTION_KEYS)).all(axis=1)]
        points, metrics = chart_points(section_runs)
        sections.append({"title": section_title(*key).replace("`", ""), "points": points, "metrics": metrics})
        parts += [f'<section class="results" id="section-{i}"><h2>{html_title(section_title(*key))}</h2>',
                  comparison_table(f"results-{i}", section),
                  "<h3>Test error against cost</h3>",
                  "<p>One point per run (seed); the line is the Pareto front: the runs no other run beats on both "
                  "test error and the cost.</p>",
                  charts(i, metrics), "</section>"]
    parts.append(cost_tables_section(cost_tables))
    return "\n".join(parts), {"methods": methods, "sections": sections}
