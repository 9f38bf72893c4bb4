"""The finished runs as the report reads them (one row per run, with its constraint, its
variant's short label and the found cells' skip share) and as ``runs.csv`` writes them, with their provenance."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from nasbench.report.labels import METRIC_WORDS, achieved_words, variant_label
from nasbench.spaces import get_space, space_class
from nasbench.store import iter_finished


def load_runs(store_path: Path) -> pd.DataFrame:
    rows = []
    for row in iter_finished(store_path):
        constraint = stored_constraint(row["details_json"])
        rows.append({**dict(row), **_constraint_columns(constraint), **_skip_columns(row["space"], row["genotype_json"]),
                     "label": variant_label(row["variant"], constraint)})
    return pd.DataFrame(rows)


LANGUAGE_MODEL = "language-model"
"""The task of the recurrent-cell spaces (``SearchSpace.task``): judged by perplexity, never by accuracy."""


def is_language_model(space: str) -> bool:
    return space_class(space).task == LANGUAGE_MODEL


def by_task(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The image runs and the language-model runs, apart: no table, figure or page mixes
    accuracy with perplexity."""
    if runs.empty:
        return runs, runs
    language = runs["space"].map(is_language_model).astype(bool)
    return runs[~language].reset_index(drop=True), runs[language].reset_index(drop=True)


def stored_constraint(details_json: str | None) -> dict[str, object] | None:
    """A run's constraint as the run stored it (metric, target, weight, form, exponent, table,
    device, achieved and, for latency, the measured latency); None for an unconstrained run."""
    return json.loads(details_json or "{}").get("constraint")


COST_PREFIX = "constraint_cost_"
"""Of the columns of a constrained run's exact costs, one per metric its penalty read."""


def _constraint_columns(constraint: dict[str, object] | None) -> dict[str, object]:
    """A constrained run's metric, target (None for a penalty without one), the exact cost its
    architecture achieves in that metric and, in :data:`COST_PREFIX` columns, in every metric its
    penalty read (runs stored before ``costs`` have the one), and the device of the table
    those costs come from."""
    if constraint is None:
        return {"constraint_metric": None, "constraint_target": None, "constraint_achieved": None,
                "constraint_device": None, "constraint_measured": None}
    costs = constraint.get("costs") or {constraint["metric"]: constraint["achieved"]}
    return {"constraint_metric": constraint["metric"], "constraint_target": constraint["target"],
            "constraint_achieved": constraint["achieved"], "constraint_device": constraint["device"],
            "constraint_measured": constraint.get("measured_ms_p50"),
            **{COST_PREFIX + metric: value for metric, value in costs.items()}}


def constraint_costs(row: Mapping[str, Any]) -> dict[str, float]:
    """A run's or summary row's exact costs under its constraint, per metric (none where it has none)."""
    return {metric: row[COST_PREFIX + metric] for metric in METRIC_WORDS
            if not pd.isna(row.get(COST_PREFIX + metric, math.nan))}


def achieved_label(row: Mapping[str, Any]) -> str | None:
    """A run's or summary row's exact costs under its constraint, and its target where it has
    one, in words; None for an unconstrained one."""
    if pd.isna(row["constraint_metric"]):
        return None
    target = None if pd.isna(row["constraint_target"]) else row["constraint_target"]
    return achieved_words(constraint_costs(row), row["constraint_metric"], target)


def _skip_columns(space: str, genotype_json: str) -> dict[str, float]:
    """The found cells' share of skip connections (identities), read from the stored
    architecture so that every method is measured alike; NaN for a cell the method does not
    search (GDAS-FRC's fixed reduction cell) or a space without normal and reduction cells."""
    shares = {}
    if space_class(space).protocol_section is None:  # the cell spaces need no protocol to be read
        cells = get_space(space)
        shares = cells.skip_share(cells.from_dict(json.loads(genotype_json)))
    return {f"skip_{cell}": shares.get(cell, math.nan) for cell in ("normal", "reduce")}


def provenance(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs.csv``: every finished run with its provenance (software versions on one line),
    without its checkpoint and protocol text."""
    return runs.drop(columns=["state_json"]).assign(
        software=lambda df: df["software_json"].map(lambda s: " ".join(f"{k}={v}" for k, v in json.loads(s).items()))
    ).drop(columns=["software_json", "protocol_json"])
