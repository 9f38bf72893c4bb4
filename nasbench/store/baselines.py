"""Published reference numbers shipped in ``baselines/`` (see baselines/README.md)."""
from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from nasbench.errors import NasbenchError


def _read(name: str) -> pd.DataFrame:
    with resources.files("nasbench.baselines").joinpath(name).open() as handle:
        return pd.read_csv(handle)


@cache
def published_results() -> pd.DataFrame:
    return _read("published_results.csv")


@cache
def comparisons() -> pd.DataFrame:
    """Which published row (method, variant) a nasbench method's runs on a space, under a
    setting, compare with (``setting`` empty: the method's unconstrained run)."""
    return _read("comparisons.csv").fillna({"setting": ""})


def published_row(method: str, variant: str) -> pd.Series:
    table = published_results()
    match = table[(table["method"] == method) & (table["variant"] == variant)]
    if len(match) != 1:
        raise NasbenchError(f"baselines/published_results.csv has {len(match)} rows for ({method!r}, {variant!r}), "
                            "expected exactly one")
    return match.iloc[0]


def compared_row(nasbench_method: str, space: str, setting: str = "") -> pd.Series | None:
    """The published row that ``nasbench_method``'s runs on ``space`` under ``setting`` (a run
    variant without its space: its constraint; empty for none) compare with: a figure sits only
    beside runs of the setting it was obtained under. None where baselines/comparisons.csv
    names none."""
    table = comparisons()
    match = table[(table["nasbench_method"] == nasbench_method) & (table["space"] == space) & (table["setting"] == setting)]
    if len(match) > 1:
        raise NasbenchError(f"baselines/comparisons.csv has {len(match)} rows for ({nasbench_method!r}, {space!r}, "
                            f"{setting!r}), expected at most one")
    return None if match.empty else published_row(match.iloc[0]["method"], match.iloc[0]["variant"])
