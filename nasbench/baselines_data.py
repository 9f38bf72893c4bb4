"""Published reference numbers shipped in ``baselines/`` (see baselines/README.md)."""
from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from nasbench.errors import NasbenchError


@cache
def published_results() -> pd.DataFrame:
    with resources.files("nasbench.baselines").joinpath("published_results.csv").open() as handle:
        return pd.read_csv(handle)


def published_row(method: str, variant: str) -> pd.Series:
    table = published_results()
    match = table[(table["method"] == method) & (table["variant"] == variant)]
    if len(match) != 1:
        raise NasbenchError(f"baselines/published_results.csv has {len(match)} rows for ({method!r}, {variant!r}), "
                            "expected exactly one")
    return match.iloc[0]
