"""The Markdown of the results: per protocol, data and space a main table that fits a screen,
its variants' legend and published sources, a table of search details, and the predicted
latency per device and backend in tables of their own."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from nasbench.report.common import (
    REFERENCE_METHOD,
    SECTION_KEYS,
    fmt,
    markdown_table,
    section_title,
)
from nasbench.report.runs import achieved_label

CONVENTIONS = (
    "Per protocol, data and search space, sorted by test error (a method's variants, such as its constrained runs, "
    "right under it). **Test error**: % on the protocol's test split, mean ± sample standard deviation over seeds (n), "
    "and the 95% interval of the mean (Student's t, clipped to 0–100; none for one seed). **Δ vs random-arch**: mean test error minus "
    f"that of `{REFERENCE_METHOD}` on the same space (architectures drawn at random and final-trained identically; "
    "percentage points, negative is better); **told apart** says whether Welch's t-test over the seeds separates the two at p < 0.05 "
    "(`–` under two seeds on either side, or no `random-arch` runs on that space). **Params**: millions, auxiliary "
    "head excluded. **FLOPs**: millions, fvcore's count, one multiply-add = one FLOP. **Search**: hours of wall time of "
    "the search alone (final training excluded). **Published**: the paper's own error (its data set in brackets; "
    "only beside rows on the same data set and of the setting it was obtained under, such as SNAS' mild constraint, "
    "with its full-size training and hardware) from baselines/published_results.csv, paired by baselines/comparisons.csv. "
    "Latency predicted by the measured cost tables is in its own section."
)
MISSING_REFERENCE = "no `random-arch` runs on this space: `nasbench run --method random-arch --space {space}` adds them"


def ordered(rows: pd.DataFrame, by: str = "test_error_mean") -> pd.DataFrame:
    """By ``by`` (test error, or perplexity: lower is better), a method's rows together: methods
    by their best mean, the unconstrained row first, then its variants by it (no result last)."""
    best = rows.groupby("method")[by].transform("min")
    return rows.assign(_best=best.fillna(float("inf")), _variant=rows["label"].ne(""),
                       _error=rows[by].fillna(float("inf"))
                       ).sort_values(["_best", "method", "_variant", "_error"], kind="stable").drop(
        columns=["_best", "_variant", "_error"])


def row_names(rows: pd.DataFrame) -> list[str]:
    """A row's name: its method, or ``↳ <label>`` right under its method's unconstrained row;
    labels that would read alike in one table are numbered."""
    seen: dict[str, int] = {}
    names = []
    bases = set(rows.loc[rows["label"].eq(""), "method"])
    for method, label in zip(rows["method"], rows["label"]):
        if not label:
            names.append(method)
            continue
        count = seen[method, label] = seen.get((method, label), 0) + 1
        label = label if count == 1 else f"{label} #{count}"
        names.append(f"↳ {label}" if method in bases else f"{method}: {label}")
    return names


def told_apart(row) -> str:
    if row.method == REFERENCE_METHOD and not row.label:
        return "reference"
    if row.distinguishable is None or pd.isna(row.distinguishable):
        return "–"
    return f"{'yes' if row.distinguishable else 'no'} (p {row.delta_p_value:.2g})"


def _published_error(row) -> str:
    if pd.isna(row.published_test_error) or not row.published_comparable:
        return "–"
    return f"{fmt(row.published_test_error)} ({row.published_data})"


def main_table(rows: pd.DataFrame) -> str:
    return markdown_table(pd.DataFrame({
        "Method": row_names(rows),
        "Strategy": rows["strategy"],
        "Space": rows["space"],
        "Test error (%)": [f"{fmt(m)} ± {fmt(s)} ({n})" for m, s, n in
                           zip(rows["test_error_mean"], rows["test_error_std"], rows["n"])],
        "95% CI": ["–" if pd.isna(lo) else f"{max(lo, 0.0):.1f}–{min(hi, 100.0):.1f}"
                         for lo, hi in zip(rows["test_error_ci_low"], rows["test_error_ci_high"])],
        "Δ vs random-arch": [fmt(v) for v in rows["delta_vs_random"]],
        "Told apart": [told_apart(row) for row in rows.itertuples()],
        "Params (M)": [fmt(v, 3) for v in rows["params_m"]],
        "FLOPs (M)": [fmt(v, 1) for v in rows["flops_m"]],
        "Search (h)": [fmt(v, 3) for v in rows["search_hours"]],
        "Published (%)": [_published_error(row) for row in rows.itertuples()],
    }))


def details_table(rows: pd.DataFrame) -> str:
    """What a reader checks second: seeds, selection (search-validation) error, skip share, final training, the
    constraint achieved, the device searched on, and the published size and search cost."""
    return markdown_table(pd.DataFrame({
        "Method": row_names(rows),
        "Seeds": rows["seeds"],
        "Val error (%)": [fmt(100 * (1 - v)) for v in rows["val_acc_mean"]],
        "Skip share (N / R)": [f"{fmt(n)} / {fmt(r)}" for n, r in zip(rows["skip_normal"], rows["skip_reduce"])],
        "Final training (h)": [fmt(v, 3) for v in rows["eval_hours"]],
        "Constraint achieved": [achieved_label(row) or "–" for row in rows.to_dict("records")],
        "Searched on": rows["devices"],
        "Published params (M)": [fmt(v, 1) for v in rows["published_params_m"]],
        "Published search (GPU-days)": [fmt(v, 1) for v in rows["published_search_cost_gpu_days"]],
    }))


def legend(rows: pd.DataFrame) -> list[str]:
    """Each short label in full: the stored variant, and the device of a constraint's table."""
    variants = rows[rows["label"].ne("")]
    if variants.empty:
        return []
    names = dict(zip(zip(rows["method"], rows["variant"]), row_names(rows)))
    lines = ["", "Variants in full:", ""]
    for row in variants.itertuples():
        device = f" (table of `{row.constraint_device}`)" if getattr(row, "constraint_device", None) else ""
        lines.append(f"- {row.method} `{names[row.method, row.variant]}`: `{row.variant}`{device}")
    return lines


def _sources(rows: pd.DataFrame) -> list[str]:
    """The published figures' sources, once per method, and those left out for another data set."""
    return published_sources(rows, rows["published_comparable"].astype(bool),
                             lambda r: f"{fmt(r.published_test_error)}%")


def published_sources(rows: pd.DataFrame, shown: pd.Series, figure: Callable[[Any], str]) -> list[str]:
    """The sources of the published figures ``shown`` beside ``rows``, once per method, and the
    figures left out (published on another data set) in words (``figure`` of a row)."""
    kept = rows["published_source"].notna()
    sources = rows[kept].assign(_shown=shown[kept].to_numpy()).drop_duplicates(["method", "published_source"])
    lines = []
    beside = sources[sources["_shown"]]
    if len(beside):
        lines += ["", "Published figures:", ""] + [f"- {m}: {s}" for m, s in zip(beside["method"], beside["published_source"])]
    other = sources[~sources["_shown"]]
    if len(other):
        lines += ["", "Not compared (published on another data set):", ""] + [
            f"- {r.method}: {figure(r)} on {r.published_data} ({r.published_source})" for r in other.itertuples()]
    return lines


def results_markdown(summary: pd.DataFrame, store_path: Path, n_runs: int) -> str:
    """The report's head and the image runs' tables (``summary``; none where it is empty, as
    for a store of language models only)."""
    lines = ["# nasbench results", "",
             f"Generated by `nasbench report` from the store `{store_path}` ({n_runs} finished runs). "
             "Do not edit by hand: regenerate."]
    if summary.empty:
        return "\n".join(lines) + "\n"
    lines += ["", CONVENTIONS]
    for (protocol, protocol_hash, data), section in summary.groupby(SECTION_KEYS, sort=False):
        lines += ["", f"## {section_title(protocol, protocol_hash, data)}"]
        for space, rows in section.groupby("space", sort=False):
            rows = ordered(rows)
            lines += ["", f"### Space `{space}`", "", main_table(rows)]
            if not (rows["method"].eq(REFERENCE_METHOD) & rows["label"].eq("")).any():
                lines += ["", MISSING_REFERENCE.format(space=space).capitalize() + "."]
            lines += legend(rows) + _sources(rows)
            lines += ["", f"#### Search details, space `{space}`", "", details_table(rows)]
    return "\n".join(lines) + "\n" + latency_markdown(summary)


def latency_markdown(summary: pd.DataFrame) -> str:
    """Per section, space and device: the found networks' latency predicted by that device's
    cost tables, a column per backend, threads and batch size."""
    columns = [c for c in summary.columns if c.startswith("latency_ms ") and summary[c].notna().any()]
    if not columns:
        return ""
    lines = ["", "## Latency predicted by the cost tables", "",
             "The found networks' latency (ms, mean over seeds) predicted by each measured cost table of the run's "
             "space and protocol: the final network without the auxiliary head, one table per device, a column per "
             "backend, threads (t) and batch size (b). Empty where a table lacks a part of the network (a table holds "
             "the parts of 4-node cells, so PNAS' shorter cells of a small budget have none). The tables and their "
             "validation are in the section Cost tables."]
    parsed = {c: c.removeprefix("latency_ms ").split(" ", 2) for c in columns}  # space, device, conditions
    for (protocol, protocol_hash, data), section in summary.groupby(SECTION_KEYS, sort=False):
        for space, rows in section.groupby("space", sort=False):
            rows = ordered(rows)
            for device in sorted({d for c, (s, d, _) in parsed.items() if s == space and rows[c].notna().any()}):
                shown = [c for c, (s, d, _) in parsed.items() if s == space and d == device]
                lines += ["", f"### {section_title(protocol, protocol_hash, data)}, space `{space}`, device `{device}`",
                          "", markdown_table(pd.DataFrame({"Method": row_names(rows),
                                                          **{parsed[c][2]: [fmt(v, 2) for v in rows[c]] for c in shown}}))]
    return "\n".join(lines) + "\n"
