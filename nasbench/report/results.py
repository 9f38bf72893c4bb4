"""The results summary: one row per (protocol, data, method, variant), with the seeds' spread,
a 95% interval, the difference from random architectures of the same space and whether it is
told apart from seed noise, beside the published figures it compares with. The image runs'
(test error) here; the language models' (perplexity) build on :func:`seed_summary` in
``language_model``."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from nasbench.report.common import REFERENCE_METHOD, ROW_KEYS
from nasbench.report.labels import compares_with, variant_setting
from nasbench.report.runs import COST_PREFIX
from nasbench.store.baselines import compared_row

CONFIDENCE = 0.95
"""Of the interval of the mean test error or perplexity (Student's t over the seeds)."""
SIGNIFICANCE = 0.05
"""Welch's t-test level at which a difference from random architectures is told apart from noise."""


def _published(method: str, space: str, data: str, variant: str, figure: str = "test_error") -> dict[str, object]:
    """The published row that a method's runs on ``space`` of ``variant``'s setting are compared
    with (baselines/comparisons.csv: only the setting the figure was obtained under), with its
    data set: its ``figure`` (a column of published_results.csv), and whether it compares with ``data``."""
    row = compared_row(method, space, variant_setting(variant))
    if row is None:
        return {f"published_{figure}": None, "published_data": None, "published_comparable": False,
                "published_params_m": None, "published_search_cost_gpu_days": None, "published_source": None}
    return {
        f"published_{figure}": row[figure],
        "published_data": row["dataset"],
        "published_comparable": compares_with(row["dataset"], data),
        "published_params_m": row["params_m"],
        "published_search_cost_gpu_days": row["search_cost_gpu_days"],
        "published_source": f"{row['method']}, {row['variant']}: {row['source']}",
    }


def mean_interval(errors: pd.Series) -> tuple[float, float]:
    """The ``CONFIDENCE`` interval of the mean of ``errors`` (Student's t); NaN under two seeds."""
    n = errors.count()
    if n < 2:
        return math.nan, math.nan
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * errors.std() / math.sqrt(n)
    return errors.mean() - half, errors.mean() + half


def welch_p(errors: pd.Series, reference: pd.Series) -> float:
    """Welch's two-sided p-value that ``errors`` and ``reference`` have the same mean; NaN when
    either has under two seeds or both have no spread."""
    a, b = errors.dropna().to_numpy(), reference.dropna().to_numpy()
    if len(a) < 2 or len(b) < 2 or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """The image runs: one row per (protocol, data, method, variant), a constrained run its own
    row, by test error (%)."""
    runs = runs.assign(test_error=100.0 * (1.0 - runs["test_acc"]))
    means = [c for c in runs.columns if c.startswith(("latency_ms ", COST_PREFIX))]
    return seed_summary(runs, "test_error", {"val_acc_mean": ("val_acc", "mean")}, {
        "skip_normal": ("skip_normal", "mean"),
        "skip_reduce": ("skip_reduce", "mean"),
        "constraint_metric": ("constraint_metric", "first"),
        "constraint_target": ("constraint_target", "first"),
        "constraint_achieved": ("constraint_achieved", "mean"),
        "constraint_device": ("constraint_device", lambda s: "; ".join(sorted(set(s.dropna())))),
        **{column: (column, "mean") for column in means},
    })


def seed_summary(runs: pd.DataFrame, value: str, selection: dict[str, tuple], extra: dict[str, tuple]) -> pd.DataFrame:
    """What every results table shares, so that accuracy and perplexity are summarised alike: per
    (protocol, data, method, variant) the seeds, ``value``'s mean, spread and 95% interval,
    ``selection`` (the search-validation figure), the costs, ``extra`` (named aggregations), Δ vs
    random (``value`` of ``random-arch``'s runs on the same space, protocol and data) with Welch's
    p-value, and the published figure of the same name (a column of published_results.csv)."""
    grouped = runs.groupby(ROW_KEYS, sort=False)
    table = grouped.agg(
        strategy=("strategy_class", "first"),
        space=("space", "first"),
        label=("label", "first"),
        n=("seed", "nunique"),
        seeds=("seed", lambda s: ",".join(str(v) for v in sorted(s))),
        **{f"{value}_mean": (value, "mean"), f"{value}_std": (value, "std")},
        **selection,
        params_m=("params", lambda s: s.mean() / 1e6),
        flops_m=("flops", lambda s: s.mean() / 1e6),
        search_hours=("search_seconds", lambda s: s.mean() / 3600),
        eval_hours=("eval_seconds", lambda s: s.mean() / 3600),
        devices=("device", lambda s: "; ".join(sorted(set(s)))),
        **extra,
    ).reset_index()
    values = {key: group[value] for key, group in grouped}
    intervals = [mean_interval(values[key]) for key in table[ROW_KEYS].itertuples(index=False, name=None)]
    table[f"{value}_ci_low"] = [low for low, _ in intervals]
    table[f"{value}_ci_high"] = [high for _, high in intervals]
    reference = _references(table, values)
    deltas, p_values = [], []
    for row in table.itertuples():
        key = (row.protocol_hash, row.data, row.space)
        ref = reference.get(key)
        deltas.append(None if ref is None else getattr(row, f"{value}_mean") - ref.mean())
        own = values[tuple(getattr(row, k) for k in ROW_KEYS)]
        p_values.append(math.nan if ref is None or own is ref else welch_p(own, ref))
    table["delta_vs_random"] = deltas
    table["delta_p_value"] = p_values
    table["distinguishable"] = [None if math.isnan(p) else bool(p < SIGNIFICANCE) for p in p_values]
    published = pd.DataFrame([_published(*row, figure=value) for row in
                              zip(table["method"], table["space"], table["data"], table["variant"])])
    return pd.concat([table, published], axis=1)


def _references(table: pd.DataFrame, values: dict[tuple, pd.Series]) -> dict[tuple, pd.Series]:
    """Per (protocol hash, data, space): the values of its unconstrained ``random-arch`` runs
    (another space is a variant of the method, but not of the reference)."""
    rows = table[(table["method"] == REFERENCE_METHOD) & table["label"].eq("")]
    return {(r.protocol_hash, r.data, r.space): values[tuple(getattr(r, k) for k in ROW_KEYS)] for r in rows.itertuples()}
