"""``nasbench report``: every section read from the store and the cost tables, and written out."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from nasbench.report.anytime import (
    anytime_markdown,
    anytime_trajectories,
    load_trials,
    write_anytime_figures,
)
from nasbench.report.cost_tables import cost_table_rows, cost_tables_markdown
from nasbench.report.drawings import write_drawings
from nasbench.report.histories import controller_history, supernet_history
from nasbench.report.language_model import (
    LANGUAGE_CSV,
    language_model_markdown,
    summarise_language_model,
)
from nasbench.report.latency import load_tables, with_device_costs
from nasbench.report.rankings import load_rankings, rankings_markdown
from nasbench.report.results import summarise
from nasbench.report.runs import by_task, load_runs, provenance
from nasbench.report.site import write_site
from nasbench.report.tables import results_markdown
from nasbench.report.tradeoff import TRADEOFF_COLUMNS, tradeoff, tradeoff_markdown

CSV_FLOATS = "%.6g"


def generate(store_path: Path, out_dir: Path, tables_dir: Path | None = None) -> list[Path]:
    """Write the report of the store at ``store_path`` (and of the cost tables under
    ``tables_dir``) into ``out_dir``; the paths written, results.md first. The image runs and the
    language models are summarised apart (accuracy and perplexity never share a table, figure
    or chart); runs.csv, the drawings and the method pages hold both."""
    cost_tables = load_tables(tables_dir)
    every = with_device_costs(load_runs(store_path), cost_tables)
    runs, language = by_task(every)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.md", out_dir / "results.csv", out_dir / "runs.csv"]
    tables = cost_table_rows(cost_tables)
    tables_md = cost_tables_markdown(tables, tables_dir) if not tables.empty else ""
    if not tables.empty:
        paths.append(out_dir / "cost_tables.csv")
        tables.to_csv(paths[-1], index=False, float_format=CSV_FLOATS)
    rankings = load_rankings(store_path)
    rankings_md = rankings_markdown(rankings) if not rankings.empty else ""
    if not rankings.empty:
        paths.append(out_dir / "rankings.csv")
        rankings.to_csv(paths[-1], index=False, float_format=CSV_FLOATS)
    if every.empty:
        paths[0].write_text(f"# nasbench results\n\nThe store `{store_path}` holds no finished runs yet.\n"
                            + rankings_md + tables_md)
        pd.DataFrame().to_csv(paths[1], index=False)
        pd.DataFrame().to_csv(paths[2], index=False)
        return paths
    summary = summarise(runs) if len(runs) else pd.DataFrame()
    language_summary = summarise_language_model(language) if len(language) else pd.DataFrame()
    if len(language):
        paths.append(out_dir / LANGUAGE_CSV)
        language_summary.to_csv(paths[-1], index=False, float_format=CSV_FLOATS)
    trajectories = anytime_trajectories(runs, load_trials(store_path, runs["id"]))
    figures = write_anytime_figures(trajectories, out_dir)
    traded = tradeoff(runs, cost_tables)
    tradeoff_md, tradeoff_figures = tradeoff_markdown(traded, out_dir)
    paths[0].write_text(results_markdown(summary, store_path, len(every)) + language_model_markdown(language_summary)
                        + tradeoff_md + anytime_markdown(figures) + rankings_md + tables_md)
    summary.to_csv(paths[1], index=False, float_format=CSV_FLOATS)
    provenance(every).to_csv(paths[2], index=False, float_format=CSV_FLOATS)
    paths.append(out_dir / "anytime.csv")
    trajectories.to_csv(paths[-1], index=False, float_format=CSV_FLOATS)
    paths += figures.values()
    if not traded.empty:
        paths.append(out_dir / "tradeoff.csv")
        traded[TRADEOFF_COLUMNS].to_csv(paths[-1], index=False, float_format=CSV_FLOATS)
        paths += tradeoff_figures
    histories = {"anytime": trajectories, "supernet": supernet_history(runs), "controller": controller_history(every)}
    for name in ("supernet", "controller"):
        paths.append(out_dir / f"{name}_history.csv")
        histories[name].to_csv(paths[-1], index=False, float_format=CSV_FLOATS)
    drawings, drawings_md = write_drawings(out_dir, every)
    paths[0].write_text(paths[0].read_text() + drawings_md)
    return paths + drawings + write_site(out_dir / "site", every, summary, tables, histories, language_summary)
