"""The site's front page: per results section the comparison table and the test error against
every cost (drawn by the page's script from the runs embedded in it), then the cost tables
with their validation figures."""
from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any, Callable

import pandas as pd

from nasbench.report.common import SECTION_KEYS, section_title
from nasbench.report.drawings import run_label
from nasbench.report.language_model import STAND_IN_NOTE, published_perplexity
from nasbench.report.runs import achieved_label, by_task
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


@dataclass(frozen=True)
class Measure:
    """What a comparison table measures (lower is better), so that one builder serves the image
    runs' test error and the language models' perplexity without mixing them."""

    key: str
    """The summary's columns ``<key>_mean``, ``_std``, ``_ci_low``, ``_ci_high``, ``published_<key>``."""
    header: str
    delta: str
    flops: str
    flops_digits: int
    selection: str | None
    """The summary's search-validation column shown, if any."""
    published_header: str
    published: Callable[[dict], Cell]


ERROR = Measure("test_error", "Test error (%)", "Δ vs random (pp)", "FLOPs (M)", 1, None, "Published error (%)",
                lambda r: num(r["published_test_error"]))
PERPLEXITY = Measure("test_perplexity", "Test perplexity", "Δ vs random (perplexity)", "FLOPs/word (M)", 3,
                     "val_perplexity_mean", "Published perplexity",
                     lambda r: Cell(escape(published_perplexity(r)), r["published_test_perplexity"]))


def comparison_table(table_id: str, section: pd.DataFrame, measure: Measure = ERROR) -> str:
    """The section's summary rows; optional columns appear where the summary has them."""
    latency = latency_columns(section)
    constrained = "constraint_metric" in section and section["constraint_metric"].notna().any()
    key = measure.key
    columns: list[tuple[str | tuple[str, str], Any]] = [
        ("Method", lambda r: Cell(f'<a href="{method_file(r["method"])}">{escape(run_label(r))}</a>', run_label(r))),
        ("Strategy", lambda r: text(r["strategy"])),
        ("Space", lambda r: text(r["space"])),
        (measure.header, lambda r: Cell(f"{number(r[f'{key}_mean'])} ± {number(r[f'{key}_std'])}", r[f"{key}_mean"])),
    ]
    if f"{key}_ci_low" in section:
        columns.append(("95% CI", lambda r: Cell("–" if missing(r[f"{key}_ci_low"]) else
                                                 f"{number(r[f'{key}_ci_low'])} – {number(r[f'{key}_ci_high'])}",
                                                 r[f"{key}_ci_low"])))
    columns += [("n", lambda r: num(r["n"], 0)), (measure.delta, lambda r: num(r["delta_vs_random"]))]
    if "distinguishable" in section:
        columns.append(("Distinguishable", lambda r: text(r["distinguishable"])))
    if measure.selection:
        columns.append(("Val perplexity", lambda r: num(r[measure.selection])))
    columns += [
        ("Params (M)", lambda r: num(r["params_m"], 3)),
        (measure.flops, lambda r: num(r["flops_m"], measure.flops_digits)),
        ("Search cost (h)", lambda r: num(r["search_hours"], 3)),
    ]
    if "skip_normal" in section:
        columns.append(("Skip share (N / R)", lambda r: Cell(f"{number(r['skip_normal'])} / {number(r['skip_reduce'])}",
                                                             r["skip_normal"])))
    columns += [(latency_label(c, latency), lambda r, c=c: num(r[c], 2)) for c in latency]
    if constrained:
        columns.append(("Constraint achieved", lambda r: text(achieved_label(r) and achieved_label(r) + (
            f" on {r['constraint_device']}" if r["constraint_device"] else ""))))
    columns += [(measure.published_header, measure.published),
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


def index_page(runs: pd.DataFrame, summary: pd.DataFrame, cost_tables: pd.DataFrame,
               language: pd.DataFrame | None = None) -> tuple[str, dict[str, Any]]:
    """The front page's body and its data (the charts' points per section of image runs); the
    language models' tables (``language``, their summary) after the image sections, without charts."""
    methods = list(dict.fromkeys(runs["method"])) if not runs.empty else []
    parts = [f"<p>{len(runs)} finished runs of {len(methods)} methods. Every table sorts by a click on its header "
             "and filters by the box above it; every point of a chart shows its run when hovered.</p>"]
    if methods:
        parts.append('<nav class="method-links" aria-label="Methods"><h2>Methods</h2><ul>' + "".join(
            f'<li><a href="{method_file(m)}">{escape(m)}</a></li>' for m in methods) + "</ul></nav>")
    sections = []
    image = by_task(runs)[0]
    for i, (key, section) in enumerate(summary.groupby(SECTION_KEYS, sort=False) if not summary.empty else ()):
        section_runs = image[(image[SECTION_KEYS] == pd.Series(key, index=SECTION_KEYS)).all(axis=1)]
        points, metrics = chart_points(section_runs)
        sections.append({"title": section_title(*key).replace("`", ""), "points": points, "metrics": metrics})
        parts += [f'<section class="results" id="section-{i}"><h2>{html_title(section_title(*key))}</h2>',
                  comparison_table(f"results-{i}", section),
                  "<h3>Test error against cost</h3>",
                  "<p>One point per run (seed); the line is the Pareto front: the runs no other run beats on both "
                  "test error and the cost.</p>",
                  charts(i, metrics), "</section>"]
    parts += language_sections(language if language is not None else pd.DataFrame())
    parts.append(cost_tables_section(cost_tables))
    return "\n".join(parts), {"methods": methods, "sections": sections}


def language_sections(language: pd.DataFrame) -> list[str]:
    """Per protocol and corpus, the language models' table (perplexity; a stand-in corpus' with
    its warning that the published figures beside it are not comparable)."""
    parts = []
    for i, (key, section) in enumerate(language.groupby(SECTION_KEYS, sort=False) if not language.empty else ()):
        warning = (f'<p class="warning">{inline_markdown(STAND_IN_NOTE)}</p>'
                   if section["corpus_stand_in"].any() else "")
        parts += [f'<section class="results language-model" id="language-section-{i}">'
                  f"<h2>Language models: {html_title(section_title(*key))}</h2>", warning,
                  comparison_table(f"language-results-{i}", section, PERPLEXITY), "</section>"]
    return parts


def inline_markdown(text: str) -> str:
    """A note's Markdown bold and code spans as HTML."""
    return re.sub(r"\*\*([^*]*)\*\*", r"<strong>\1</strong>", html_title(text))
