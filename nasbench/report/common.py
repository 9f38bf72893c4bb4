"""What every report section shares: the keys of a section and a row, and the formatting."""
from __future__ import annotations

import pandas as pd

from nasbench.report.labels import data_set_name

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


def markdown_table(frame: pd.DataFrame) -> str:
    """``frame`` as a Markdown table padded to its widest cells only (tabulate's pipe tables add
    two spaces to every column, which pushes a wide table off the screen)."""
    cells = [[str(c) for c in frame.columns], *([str(v) for v in row] for row in frame.itertuples(index=False))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join(":" + "-" * (w + 1) for w in widths) + "|", *map(line, cells[1:])])


def label(method: str, short_label: str) -> str:
    """A row's name in a figure: its method and its variant's short label."""
    return method if not short_label else f"{method}, {short_label}"


def section_title(protocol: str, protocol_hash: str, data: str) -> str:
    """What a results section is about, alike in every part of the report."""
    return f"`{protocol}` protocol (hash `{protocol_hash}`), {data_set_name(data)}, data `{data}`"
