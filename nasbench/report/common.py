"""What every report section shares: the keys of a section and a row, and the formatting."""
from __future__ import annotations

import pandas as pd

REFERENCE_METHOD = "random-arch"
SECTION_KEYS = ["protocol", "protocol_hash", "data"]
"""What one results table (and one anytime figure) is about."""
ROW_KEYS = [*SECTION_KEYS, "method", "variant"]
"""What one row of a results table is about: a constrained run is its own row."""


def fmt(value: object, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def label(method: str, variant: str) -> str:
    return method if not variant else f"{method} [{variant}]"


def section_title(protocol: str, protocol_hash: str, data: str) -> str:
    return f"Protocol `{protocol}` (hash `{protocol_hash}`), data `{data}`"
