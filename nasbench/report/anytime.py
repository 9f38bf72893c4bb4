"""Anytime performance of the black-box methods: the best search-validation accuracy after
each trained candidate, per seed (anytime.csv) and as one figure per results section."""
from __future__ import annotations

from contextlib import closing
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasbench.report.common import ROW_KEYS, SECTION_KEYS, label, section_title
from nasbench.report.labels import section_words
from nasbench.store import Store


def load_trials(store_path: Path, run_ids: pd.Series) -> pd.DataFrame:
    """The stored trials of the given runs, in the order they were trained."""
    with closing(Store(store_path, readonly=True)) as store:
        rows = [{"run_id": run_id, "index": t.index, "val_acc": t.val_acc, "seconds": t.seconds}
                for run_id in run_ids for t in store.trials(run_id)]
    return pd.DataFrame(rows, columns=["run_id", "index", "val_acc", "seconds"]).astype(
        {"run_id": int, "index": int, "val_acc": float, "seconds": float})  # numeric even when empty or all failed


def anytime_trajectories(runs: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Per run with trials, after each trained candidate: the best search-validation accuracy so
    far and the cumulative candidate-training seconds. A failed candidate (no accuracy) counts
    as trained and as time spent but improves nothing; before the first scored one the best is NaN."""
    keys = runs[[*ROW_KEYS, "space", "label", "seed", "id"]].rename(columns={"id": "run_id"})
    trajectories = keys.merge(trials, on="run_id").sort_values(["run_id", "index"], ignore_index=True)
    by_run = trajectories.groupby("run_id")
    trajectories["candidates"] = by_run.cumcount() + 1
    trajectories["best_val_acc"] = by_run["val_acc"].cummax().groupby(trajectories["run_id"]).ffill()
    trajectories["cumulative_seconds"] = by_run["seconds"].cumsum()
    return trajectories[[*ROW_KEYS, "space", "label", "seed", "run_id", "candidates", "val_acc", "best_val_acc", "cumulative_seconds"]]


def mean_over_seeds(trajectories: pd.DataFrame, x: str) -> pd.DataFrame:
    """Per (protocol, data, method, variant), the seeds' best-so-far against ``x`` (``candidates``
    or ``cumulative_seconds``): each seed's step function is read at every x any seed reached (a
    seed whose search has ended keeps its final best), from the first x at which every seed has
    a scored candidate; then mean, min and max across seeds."""
    curves = []
    for key, group in trajectories.groupby(ROW_KEYS, sort=False):
        steps = group.groupby([x, "seed"])["best_val_acc"].max().unstack("seed").sort_index().ffill()
        steps = steps[steps.notna().all(axis=1)]
        curves.append(pd.DataFrame({**dict(zip(ROW_KEYS, key)), "space": group["space"].iloc[0],
                                    "label": group["label"].iloc[0], x: steps.index, "mean": steps.mean(axis=1).to_numpy(),
                                    "min": steps.min(axis=1).to_numpy(), "max": steps.max(axis=1).to_numpy(),
                                    "seeds": steps.shape[1]}))
    return pd.concat(curves, ignore_index=True)


ANYTIME_AXES = (("candidates", "trained candidates", 1.0),
                ("cumulative_seconds", "cumulative candidate-training time (h)", 1 / 3600))
"""The figure's panels: (trajectory column, axis label, scale from the column to the axis)."""


def anytime_figure_name(protocol: str, protocol_hash: str, data: str) -> str:
    return f"anytime_{protocol}_{protocol_hash}_{data}.png"


PANEL_HEIGHT, WIDTH = 1.9, 11.0
"""Inches per method's row of panels, and the figure's width."""


def plot_anytime(section: pd.DataFrame, title: str, path: Path) -> None:
    """One results section's trajectories as small multiples: a row per method (and variant), a
    column per :data:`ANYTIME_AXES`; in each panel the method's mean over seeds (steps, a marker
    where a candidate ends) with its min–max band across seeds, over the other methods' means in
    grey, so that no band hides another and the legend covers nothing. Saved through Agg without
    the Software tag, so the bytes depend on the data and the matplotlib version only."""
    curves = {x: mean_over_seeds(section, x) for x, _, _ in ANYTIME_AXES}
    rows = list(curves["candidates"].groupby(["method", "variant"], sort=False).groups)
    figure = Figure(figsize=(WIDTH, 0.8 + PANEL_HEIGHT * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title)
    panels = figure.subplots(len(rows), len(ANYTIME_AXES), sharex="col", sharey=True, squeeze=False)
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for column, (x, axis_label, scale) in enumerate(ANYTIME_AXES):
        by_row = dict(iter(curves[x].groupby(["method", "variant"], sort=False)))
        for index, key in enumerate(rows):
            axes = panels[index, column]
            for other, curve in by_row.items():
                if other != key:
                    axes.plot(curve[x] * scale, 100 * (1 - curve["mean"]), drawstyle="steps-post", color="0.8",
                              linewidth=1)
            curve = by_row[key]
            xs, colour = curve[x] * scale, colours[index % len(colours)]
            axes.fill_between(xs, 100 * (1 - curve["max"]), 100 * (1 - curve["min"]), step="post", alpha=0.25,
                              color=colour)
            axes.plot(xs, 100 * (1 - curve["mean"]), drawstyle="steps-post", marker="o", markersize=3, color=colour)
            axes.set_title(f"{label(key[0], curve['label'].iloc[0])}, {curve['space'].iloc[0]} space "
                           f"(n={curve['seeds'].iloc[0]})", fontsize=9, loc="left")
            axes.grid(alpha=0.3)
        panels[-1, column].set_xlabel(axis_label)
    panels[0, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.supylabel("lowest search-validation error so far (%)")
    figure.savefig(path, format="png", dpi=100, metadata={"Software": None})


def write_anytime_figures(trajectories: pd.DataFrame, out_dir: Path) -> dict[tuple[str, str, str], Path]:
    """One figure per results section that has trajectories, keyed by the section."""
    figures = {}
    for section_key, section in trajectories.groupby(SECTION_KEYS, sort=False):
        figures[section_key] = out_dir / anytime_figure_name(*section_key)
        plot_anytime(section, f"Lowest search-validation error so far: {section_words(section_key[0], section_key[2])}",
                     figures[section_key])
    return figures


def anytime_markdown(figures: dict[tuple[str, str, str], Path]) -> str:
    if not figures:
        return ""
    lines = ["", "## Anytime performance", "",
             "Methods that train candidates (black-box search): the lowest search-validation error (the best candidate) found so far "
             "against the number of trained candidates and against the cumulative time spent training them (the "
             "search's wall time less its own overhead). Line: mean over seeds; band: min–max across seeds. A "
             "failed candidate counts as trained but improves nothing; a seed whose search has ended keeps its final "
             "best. Per seed and candidate: anytime.csv."]
    for section_key, path in figures.items():
        lines += ["", f"### {section_title(*section_key)}", "", f"![anytime performance, {section_key[0]}]({path.name})"]
    return "\n".join(lines) + "\n"
